package respserver

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/elcache/elcache/internal/resp"
	cachev1 "github.com/elcache/elcache/proto/cache/v1"
)

// redisVersion is the Redis version the listener speaks as, for clients
// that check it: the string commands of Redis 7.2.
const redisVersion = "7.2.0"

func cmdPing(_ context.Context, _ *conn, args [][]byte) reply {
	switch len(args) {
	case 1:
		return simpleReply("PONG")
	case 2:
		return bulkReply(args[1])
	}
	return errorReply("ERR wrong number of arguments for 'ping' command")
}

func cmdEcho(_ context.Context, _ *conn, args [][]byte) reply { return bulkReply(args[1]) }

func cmdSelect(_ context.Context, _ *conn, args [][]byte) reply {
	n, err := strconv.Atoi(string(args[1]))
	if err != nil {
		return errorReply(errNotInteger)
	}
	if n != 0 {
		return errorReply("ERR DB index is out of range (elcache has one keyspace, database 0)")
	}
	return okReply
}

func cmdQuit(_ context.Context, c *conn, _ [][]byte) reply {
	c.quit = true
	return okReply
}

func cmdReset(_ context.Context, c *conn, _ [][]byte) reply {
	c.reset(c.host())
	return simpleReply("RESET")
}

func cmdTime(context.Context, *conn, [][]byte) reply {
	now := time.Now()
	return funcReply(func(w *resp.Writer) {
		w.Array(2)
		w.BulkString(strconv.FormatInt(now.Unix(), 10))
		w.BulkString(strconv.FormatInt(int64(now.Nanosecond()/1000), 10))
	})
}

// authenticate logs the connection in with a token: AUTH secret, or AUTH
// name secret (the token's name). Without tokens, the node is Redis's
// default user without a password: AUTH default (or HELLO AUTH default)
// with any password passes and changes nothing, another name is a wrong
// pair, and AUTH with a password alone is refused, as Redis answers.
func (c *conn) authenticate(name, secret string) reply {
	g := c.s.cfg.Guard
	if g == nil || !g.Required() {
		switch name {
		case "":
			return errorReply("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?")
		case "default":
			return okReply
		}
		return errorReply(errWrongPass)
	}
	if name == "default" {
		name = ""
	}
	caller, err := g.Authenticate(name, secret)
	if err != nil {
		return errorReply(errWrongPass)
	}
	c.mu.Lock()
	c.caller = caller
	c.mu.Unlock()
	c.authed = true
	return okReply
}

// errWrongPass is Redis's answer to credentials it does not know.
const errWrongPass = "WRONGPASS invalid username-password pair or user is disabled."

func cmdAuth(_ context.Context, c *conn, args [][]byte) reply {
	switch len(args) {
	case 2:
		return c.authenticate("", string(args[1]))
	case 3:
		return c.authenticate(string(args[1]), string(args[2]))
	}
	return errorReply(errSyntax)
}

// cmdHello is HELLO [protover [AUTH name secret] [SETNAME name]].
func cmdHello(_ context.Context, c *conn, args [][]byte) reply {
	proto := c.w.Protocol()
	if len(args) > 1 {
		v, err := strconv.Atoi(string(args[1]))
		if err != nil {
			return errorReply("ERR Protocol version is not an integer or out of range")
		}
		if v != 2 && v != 3 {
			return errorReply("NOPROTO unsupported protocol version")
		}
		proto = v
	}
	var name *string
	for i := 2; i < len(args); i++ {
		switch strings.ToLower(string(args[i])) {
		case "auth":
			if i+2 >= len(args) {
				return errorReply(errSyntax)
			}
			if r := c.authenticate(string(args[i+1]), string(args[i+2])); r.kind == kindError {
				return r
			}
			i += 2
		case "setname":
			if i+1 >= len(args) {
				return errorReply(errSyntax)
			}
			n := string(args[i+1])
			if r := checkClientName(n); r.kind == kindError {
				return r
			}
			name = &n
			i++
		default:
			return errorf("ERR Syntax error in HELLO option '%s'", args[i])
		}
	}
	if !c.authed {
		return errorReply("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time")
	}
	if name != nil {
		c.setName(*name)
	}
	c.setProtocol(proto)
	id := c.id
	return funcReply(func(w *resp.Writer) {
		w.Map(7)
		w.BulkString("server")
		w.BulkString("redis")
		w.BulkString("version")
		w.BulkString(redisVersion)
		w.BulkString("proto")
		w.Int(int64(proto))
		w.BulkString("id")
		w.Int(id)
		w.BulkString("mode")
		w.BulkString("standalone")
		w.BulkString("role")
		w.BulkString("master")
		w.BulkString("modules")
		w.Array(0)
	})
}

func checkClientName(n string) reply {
	for i := 0; i < len(n); i++ {
		if n[i] < '!' || n[i] > '~' {
			return errorReply("ERR Client names cannot contain spaces, newlines or special characters.")
		}
	}
	return reply{}
}

// cmdClient is CLIENT SETNAME, GETNAME, ID, INFO, SETINFO, LIST, and a
// few that change nothing here (NO-EVICT, NO-TOUCH, REPLY ON).
func cmdClient(_ context.Context, c *conn, args [][]byte) reply {
	sub := strings.ToLower(string(args[1]))
	switch {
	case sub == "setname" && len(args) == 3:
		if r := checkClientName(string(args[2])); r.kind == kindError {
			return r
		}
		c.setName(string(args[2]))
		return okReply
	case sub == "getname" && len(args) == 2:
		if c.name == "" {
			return nullReply()
		}
		return bulkReply([]byte(c.name))
	case sub == "id" && len(args) == 2:
		return intReply(c.id)
	case sub == "info" && len(args) == 2:
		return verbatim(c.info() + "\n")
	case sub == "list":
		var b strings.Builder
		c.s.mu.Lock()
		for o := range c.s.conns {
			b.WriteString(o.info())
			b.WriteByte('\n')
		}
		c.s.mu.Unlock()
		return verbatim(b.String())
	case sub == "setinfo" && len(args) == 4:
		if strings.EqualFold(string(args[2]), "lib-name") {
			c.mu.Lock()
			c.lib = string(args[3])
			c.mu.Unlock()
		}
		return okReply
	case (sub == "no-evict" || sub == "no-touch") && len(args) == 3, sub == "reply" && len(args) == 3 && strings.EqualFold(string(args[2]), "on"):
		return okReply
	}
	return errorf("ERR unknown subcommand or wrong number of arguments for '%s'. Try CLIENT HELP.", args[1])
}

// info is the connection's line of CLIENT INFO and CLIENT LIST.
func (c *conn) info() string {
	c.mu.Lock()
	last, name, user, lib, proto := c.lastCmd, c.name, c.caller.Name, c.lib, c.proto
	level := levelNames[c.level]
	c.mu.Unlock()
	now := time.Now()
	return fmt.Sprintf("id=%d addr=%s laddr=%s fd=0 name=%s age=%d idle=0 flags=N db=0 sub=0 psub=0 ssub=0 multi=-1 qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=0 tot-mem=0 events=r cmd=%s user=%s redir=-1 resp=%d lib-name=%s lib-ver= elcache-consistency=%s",
		c.id, c.addr, c.nc.LocalAddr(), name, int(now.Sub(c.created).Seconds()), orDash(last), user, proto, lib, level)
}

func orDash(s string) string {
	if s == "" {
		return "NULL"
	}
	return s
}

// verbatim is a verbatim string in RESP3, a bulk string in RESP2.
func verbatim(s string) reply {
	return funcReply(func(w *resp.Writer) { w.Verbatim("txt", s) })
}

// cmdCommand is COMMAND, COMMAND COUNT, COMMAND INFO name..., COMMAND
// LIST and COMMAND DOCS (empty docs: enough for redis-cli).
func cmdCommand(_ context.Context, c *conn, args [][]byte) reply {
	names := make([]string, 0, len(c.s.table))
	for name := range c.s.table {
		names = append(names, name)
	}
	sort.Strings(names)
	if len(args) == 1 {
		return funcReply(func(w *resp.Writer) {
			w.Array(len(names))
			for _, n := range names {
				writeCommandInfo(w, c.s.table[n])
			}
		})
	}
	switch strings.ToLower(string(args[1])) {
	case "count":
		return intReply(int64(len(names)))
	case "list":
		return funcReply(func(w *resp.Writer) {
			w.Array(len(names))
			for _, n := range names {
				w.BulkString(n)
			}
		})
	case "info":
		return funcReply(func(w *resp.Writer) {
			w.Array(len(args) - 2)
			for _, a := range args[2:] {
				if cmd := c.s.lookup(a); cmd != nil {
					writeCommandInfo(w, cmd)
				} else {
					w.NullArray()
				}
			}
		})
	case "docs":
		return funcReply(func(w *resp.Writer) { w.Map(0) })
	}
	return errorf("ERR unknown subcommand or wrong number of arguments for '%s'. Try COMMAND HELP.", args[1])
}

// writeCommandInfo writes a command's COMMAND entry: name, arity, flags,
// first key, last key, step.
func writeCommandInfo(w *resp.Writer, c *command) {
	var flags []string
	if c.flags&flagWrite != 0 {
		flags = append(flags, "write")
	} else {
		flags = append(flags, "readonly")
	}
	if c.flags&flagAdmin != 0 {
		flags = append(flags, "admin")
	}
	if c.flags&flagNoAuth != 0 {
		flags = append(flags, "no_auth")
	}
	if c.flags&flagFast != 0 {
		flags = append(flags, "fast")
	}
	w.Array(6)
	w.BulkString(c.name)
	w.Int(int64(c.arity))
	w.Set(len(flags))
	for _, f := range flags {
		w.Simple(f)
	}
	w.Int(int64(c.firstKey))
	w.Int(int64(c.lastKey))
	w.Int(int64(c.step))
}

func cmdDBSize(ctx context.Context, c *conn, _ [][]byte) reply {
	st, err := c.s.cfg.Cache.Stats(ctx, &cachev1.StatsRequest{})
	if err != nil {
		return errReply(err)
	}
	return intReply(int64(st.Keys))
}

// levelNames are the ELCACHE.CONSISTENCY names of the read levels.
var levelNames = map[cachev1.Consistency]string{
	cachev1.Consistency_CONSISTENCY_LINEARIZABLE: "linearizable",
	cachev1.Consistency_CONSISTENCY_LEASE:        "lease",
	cachev1.Consistency_CONSISTENCY_BOUNDED:      "bounded",
	cachev1.Consistency_CONSISTENCY_SESSION:      "session",
	cachev1.Consistency_CONSISTENCY_EVENTUAL:     "eventual",
}

// modeNames are the ELCACHE.WRITEMODE names of the write modes.
var modeNames = map[cachev1.WriteMode]string{
	cachev1.WriteMode_WRITE_MODE_UNSPECIFIED:   "default",
	cachev1.WriteMode_WRITE_MODE_CACHE_ONLY:    "none",
	cachev1.WriteMode_WRITE_MODE_WRITE_THROUGH: "through",
	cachev1.WriteMode_WRITE_MODE_WRITE_BACK:    "back",
	cachev1.WriteMode_WRITE_MODE_WRITE_AROUND:  "around",
}

// ParseLevel parses an ELCACHE.CONSISTENCY level name.
func ParseLevel(s string) (cachev1.Consistency, error) {
	for l, n := range levelNames {
		if strings.EqualFold(s, n) {
			return l, nil
		}
	}
	return 0, fmt.Errorf("respserver: unknown read level %q: want linearizable, lease, bounded, session or eventual", s)
}

// ModeName is the ELCACHE.WRITEMODE name of a write mode ("default" for
// UNSPECIFIED).
func ModeName(m cachev1.WriteMode) string { return modeNames[m] }

// ParseMode parses an ELCACHE.WRITEMODE mode name.
func ParseMode(s string) (cachev1.WriteMode, error) {
	for m, n := range modeNames {
		if strings.EqualFold(s, n) {
			return m, nil
		}
	}
	return 0, fmt.Errorf("respserver: unknown write mode %q: want none, through, back, around or default", s)
}

// cmdConsistency is ELCACHE.CONSISTENCY [level [max-staleness]]: without
// arguments it answers the connection's level.
func cmdConsistency(_ context.Context, c *conn, args [][]byte) reply {
	if len(args) == 1 {
		c.mu.Lock()
		level, d := c.level, c.staleness
		c.mu.Unlock()
		if level == cachev1.Consistency_CONSISTENCY_BOUNDED {
			return bulkReply([]byte("bounded " + d.String()))
		}
		return bulkReply([]byte(levelNames[level]))
	}
	level, err := ParseLevel(string(args[1]))
	if err != nil {
		return errorf("ERR %s", strings.TrimPrefix(err.Error(), "respserver: "))
	}
	var d time.Duration
	if level == cachev1.Consistency_CONSISTENCY_BOUNDED {
		if len(args) != 3 {
			return errorReply("ERR bounded needs a maximum staleness, e.g. ELCACHE.CONSISTENCY bounded 100ms")
		}
		if d, err = time.ParseDuration(string(args[2])); err != nil || d <= 0 {
			return errorf("ERR invalid staleness %q: want a positive duration such as 100ms", args[2])
		}
	} else if len(args) != 2 {
		return errorReply(errSyntax)
	}
	c.mu.Lock()
	c.level, c.staleness, c.ropts = level, d, nil
	c.mu.Unlock()
	return okReply
}

// cmdWriteMode is ELCACHE.WRITEMODE [none|through|back|around|default].
func cmdWriteMode(_ context.Context, c *conn, args [][]byte) reply {
	if len(args) == 1 {
		c.mu.Lock()
		m := c.mode
		c.mu.Unlock()
		return bulkReply([]byte(modeNames[m]))
	}
	if len(args) != 2 {
		return errorReply(errSyntax)
	}
	m, err := ParseMode(string(args[1]))
	if err != nil {
		return errorf("ERR %s", strings.TrimPrefix(err.Error(), "respserver: "))
	}
	c.mu.Lock()
	c.mode = m
	c.mu.Unlock()
	return okReply
}

// cmdMeta is ELCACHE.META: the proof of the connection's last read.
func cmdMeta(_ context.Context, c *conn, _ [][]byte) reply {
	c.mu.Lock()
	m := c.lastMeta
	c.mu.Unlock()
	if m == nil {
		return nullReply()
	}
	return funcReply(func(w *resp.Writer) {
		w.Map(8)
		w.BulkString("partition")
		w.Int(int64(m.Partition))
		w.BulkString("served_by")
		w.BulkString(m.ServedBy)
		w.BulkString("role")
		w.BulkString(strings.ToLower(strings.TrimPrefix(m.Role.String(), "ROLE_")))
		w.BulkString("consistency")
		w.BulkString(levelNames[m.Consistency])
		w.BulkString("applied_index")
		w.Int(int64(m.AppliedIndex))
		w.BulkString("leader_commit_index")
		w.Int(int64(m.LeaderCommitIndex))
		w.BulkString("staleness_ms")
		w.Double(float64(m.Staleness.AsDuration()) / float64(time.Millisecond))
		w.BulkString("stale")
		w.Bool(m.Stale)
	})
}

// cmdInfo is INFO [section ...]: server, clients, memory, stats,
// replication, keyspace (default and "all": every one).
func cmdInfo(ctx context.Context, c *conn, args [][]byte) reply {
	want := map[string]bool{}
	for _, a := range args[1:] {
		want[strings.ToLower(string(a))] = true
	}
	all := len(want) == 0 || want["all"] || want["everything"] || want["default"]
	show := func(s string) bool { return all || want[s] }
	st, err := c.s.cfg.Cache.Stats(ctx, &cachev1.StatsRequest{})
	if err != nil {
		return errReply(err)
	}
	var b strings.Builder
	section := func(name string, kv ...any) {
		if !show(strings.ToLower(name)) {
			return
		}
		if b.Len() > 0 {
			b.WriteString("\r\n")
		}
		fmt.Fprintf(&b, "# %s\r\n", name)
		for i := 0; i+1 < len(kv); i += 2 {
			fmt.Fprintf(&b, "%s:%v\r\n", kv[i], kv[i+1])
		}
	}
	s := c.s
	up := time.Since(s.started)
	section("Server", "redis_version", redisVersion, "redis_mode", "standalone", "elcache_version", s.cfg.Version,
		"elcache_node", s.cfg.NodeName, "os", runtime.GOOS+" "+runtime.GOARCH, "arch_bits", 64, "process_id", os.Getpid(),
		"tcp_port", localPort(c), "uptime_in_seconds", int(up.Seconds()), "uptime_in_days", int(up.Hours()/24))
	section("Clients", "connected_clients", s.clientCount(), "maxclients", s.cfg.MaxConns,
		"rejected_connections", s.rejected.Load())
	var ms runtime.MemStats
	if show("memory") {
		runtime.ReadMemStats(&ms)
	}
	section("Memory", "used_memory", ms.HeapAlloc, "used_memory_human", humanBytes(ms.HeapAlloc),
		"used_memory_dataset", st.BytesUsed, "maxmemory", st.CapacityBytes, "maxmemory_human", humanBytes(st.CapacityBytes),
		"maxmemory_policy", "allkeys-lru")
	commands, in, out := s.totals()
	section("Stats", "total_connections_received", s.accepted.Load(), "total_commands_processed", commands,
		"total_net_input_bytes", in, "total_net_output_bytes", out,
		"keyspace_hits", st.Hits, "keyspace_misses", st.Misses, "expired_keys", st.Expirations, "evicted_keys", st.Evictions,
		"elcache_forwarded", st.Forwarded, "elcache_dirty_keys", st.DirtyKeys)
	leaders := 0
	for _, p := range st.Partitions {
		if p.Role == cachev1.Role_ROLE_LEADER {
			leaders++
		}
	}
	role := "master"
	if leaders == 0 {
		role = "slave"
	}
	section("Replication", "role", role, "elcache_partitions", st.PartitionCount, "elcache_replicas_here", len(st.Partitions),
		"elcache_leaders_here", leaders, "connected_slaves", 0)
	section("Keyspace", "db0", fmt.Sprintf("keys=%d,expires=0,avg_ttl=0", st.Keys))
	if b.Len() == 0 && len(want) > 0 {
		return verbatim("")
	}
	return verbatim(b.String())
}

func localPort(c *conn) string {
	a := c.nc.LocalAddr().String()
	if i := strings.LastIndexByte(a, ':'); i >= 0 {
		return a[i+1:]
	}
	return a
}

func humanBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%dB", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.2f%c", float64(n)/float64(div), "KMGTPE"[exp])
}

package respserver

import (
	"context"
	"math/rand/v2"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	cachev1 "github.com/elcache/elcache/proto/cache/v1"
)

// command is one entry of the command table.
type command struct {
	name string
	// arity counts the name too: n means exactly n arguments, -n at least n.
	arity int
	flags cmdFlags
	// parallel: a single-key command (its key is args[1]) that may run
	// concurrently with the other commands of a pipelined batch.
	parallel bool
	// The key positions, for COMMAND: first, last (-1: the last
	// argument) and step; 0 when the command takes no key.
	firstKey, lastKey, step int
	run                     func(ctx context.Context, c *conn, args [][]byte) reply
}

type cmdFlags uint8

const (
	flagWrite  cmdFlags = 1 << iota // needs the write role
	flagAdmin                       // needs the admin role
	flagNoAuth                      // allowed before AUTH
	flagRead                        // reads keys
	flagFast                        // constant time
)

func (c *command) arityOK(n int) bool {
	if c.arity >= 0 {
		return n == c.arity
	}
	return n >= -c.arity
}

// lookup finds a command by its name in any case; nil if unknown.
func (s *Server) lookup(name []byte) *command {
	var buf [32]byte
	if len(name) > len(buf) {
		return nil
	}
	for i, ch := range name {
		if 'A' <= ch && ch <= 'Z' {
			ch += 'a' - 'A'
		}
		buf[i] = ch
	}
	return s.table[string(buf[:len(name)])]
}

// buildTable returns the command table.
func buildTable() map[string]*command {
	t := map[string]*command{}
	add := func(name string, arity int, flags cmdFlags, keys [3]int, run func(context.Context, *conn, [][]byte) reply) *command {
		c := &command{name: name, arity: arity, flags: flags, firstKey: keys[0], lastKey: keys[1], step: keys[2], run: run}
		t[name] = c
		return c
	}
	none := [3]int{}
	one := [3]int{1, 1, 1}
	all := [3]int{1, -1, 1}
	pairs := [3]int{1, -1, 2}
	single := func(name string, arity int, flags cmdFlags, run func(context.Context, *conn, [][]byte) reply) {
		add(name, arity, flags, one, run).parallel = true
	}
	const w, r, f = flagWrite, flagRead, flagFast

	// Connection and server.
	add("ping", -1, f, none, cmdPing)
	add("echo", 2, f, none, cmdEcho)
	add("hello", -1, flagNoAuth|f, none, cmdHello)
	add("auth", -2, flagNoAuth|f, none, cmdAuth)
	add("select", 2, f, none, cmdSelect)
	add("quit", -1, flagNoAuth|f, none, cmdQuit)
	add("reset", 1, flagNoAuth|f, none, cmdReset)
	add("client", -2, 0, none, cmdClient)
	add("command", -1, 0, none, cmdCommand)
	add("info", -1, 0, none, cmdInfo)
	add("dbsize", 1, r, none, cmdDBSize)
	add("time", 1, f, none, cmdTime)
	add("elcache.consistency", -1, f, none, cmdConsistency)
	add("elcache.writemode", -1, f, none, cmdWriteMode)
	add("elcache.meta", 1, f, none, cmdMeta)

	// Strings.
	single("get", 2, r|f, cmdGet)
	single("set", -3, w, cmdSet)
	single("setnx", 3, w|f, cmdSetNX)
	single("setex", 4, w, cmdSetEX)
	single("psetex", 4, w, cmdPSetEX)
	single("getset", 3, w|f, cmdGetSet)
	single("getdel", 2, w|f, cmdGetDel)
	single("getex", -2, w|f, cmdGetEx)
	add("mget", -2, r|f, all, cmdMGet)
	add("mset", -3, w, pairs, cmdMSet)
	add("msetnx", -3, w, pairs, cmdMSetNX)
	single("incr", 2, w|f, cmdIncr)
	single("decr", 2, w|f, cmdDecr)
	single("incrby", 3, w|f, cmdIncrBy)
	single("decrby", 3, w|f, cmdDecrBy)
	single("incrbyfloat", 3, w|f, cmdIncrByFloat)
	single("append", 3, w|f, cmdAppend)
	single("strlen", 2, r|f, cmdStrlen)
	single("getrange", 4, r, cmdGetRange)
	single("setrange", 4, w, cmdSetRange)

	// Keys.
	add("del", -2, w, all, cmdDel)
	add("unlink", -2, w|f, all, cmdDel)
	add("exists", -2, r|f, all, cmdExists)
	single("type", 2, r|f, cmdType)
	single("expire", -3, w|f, cmdExpire)
	single("pexpire", -3, w|f, cmdExpire)
	single("expireat", -3, w|f, cmdExpire)
	single("pexpireat", -3, w|f, cmdExpire)
	single("ttl", 2, r|f, cmdTTL)
	single("pttl", 2, r|f, cmdTTL)
	single("persist", 2, w|f, cmdPersist)
	add("scan", -2, r, none, cmdScan)
	add("keys", 2, r, none, cmdKeys)
	add("flushdb", -1, w|flagAdmin, none, cmdFlush)
	add("flushall", -1, w|flagAdmin, none, cmdFlush)
	return t
}

// The connection's options for reads and writes.

// readOptions are the options of the connection's next read. Outside
// SESSION they stay the same until the level changes and are built once
// (the node does not change a request's options).
func (c *conn) readOptions() *cachev1.ReadOptions {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ropts != nil {
		return c.ropts
	}
	o := &cachev1.ReadOptions{Consistency: c.level}
	switch c.level {
	case cachev1.Consistency_CONSISTENCY_BOUNDED:
		o.MaxStaleness = durationpb.New(c.staleness)
		c.ropts = o
	case cachev1.Consistency_CONSISTENCY_SESSION:
		o.SessionTokens = make([]*cachev1.SessionToken, 0, len(c.tokens))
		for _, t := range c.tokens {
			o.SessionTokens = append(o.SessionTokens, t)
		}
	default:
		c.ropts = o
	}
	return o
}

func (c *conn) writeOptions(ttl time.Duration) *cachev1.WriteOptions {
	c.mu.Lock()
	o := &cachev1.WriteOptions{Mode: c.mode}
	c.mu.Unlock()
	if ttl > 0 {
		o.Ttl = durationpb.New(ttl)
	}
	return o
}

// learnRead keeps a read's proof (ELCACHE.META) and, for a SESSION read,
// its session token: what the connection read at another level is not
// part of its session (writes always are).
func (c *conn) learnRead(m *cachev1.ReadMeta) {
	if m == nil {
		return
	}
	c.mu.Lock()
	c.lastMeta = m
	if m.Consistency == cachev1.Consistency_CONSISTENCY_SESSION {
		c.learnTokenLocked(m.SessionToken)
	}
	c.mu.Unlock()
}

// learnWrite keeps a write's session token.
func (c *conn) learnWrite(m *cachev1.WriteMeta) {
	if m == nil || m.SessionToken == nil {
		return
	}
	c.mu.Lock()
	c.learnTokenLocked(m.SessionToken)
	c.mu.Unlock()
}

// learnTokenLocked keeps the newest token of each partition: a later
// index, or any index of a newer log (epoch).
func (c *conn) learnTokenLocked(t *cachev1.SessionToken) {
	if t == nil {
		return
	}
	old := c.tokens[t.Partition]
	if old != nil && old.Epoch == t.Epoch && old.Index >= t.Index {
		return
	}
	if c.tokens == nil {
		c.tokens = map[uint32]*cachev1.SessionToken{}
	}
	c.tokens[t.Partition] = t
}

// call runs f, again after a pause while it fails in a way that lets it
// run again, until ctx ends. safe says f may run twice: a read, a write
// whose second run changes nothing the first did not (SET, DEL), or a
// Mutate carrying an idempotency key. A failover can leave such a call's
// outcome unknown (the leader it reached died mid-commit); running it
// again is then correct, because whatever the first run committed sits
// before the second in the partition's log. Other calls are run again
// only when the answer proves they did not run (not leader).
func call[T any](ctx context.Context, safe bool, f func(context.Context) (T, error)) (T, error) {
	pause := 5 * time.Millisecond
	for {
		out, err := f(ctx)
		if err == nil || !retryable(err, safe) {
			return out, err
		}
		t := time.NewTimer(pause/2 + rand.N(pause))
		select {
		case <-ctx.Done():
			t.Stop()
			return out, err
		case <-t.C:
		}
		pause = min(2*pause, 250*time.Millisecond)
	}
}

// retryable reports whether a failed call may be made again (safe: as
// for call).
func retryable(err error, safe bool) bool {
	st := status.Convert(err)
	switch st.Code() {
	case codes.Unavailable:
		if safe {
			return true
		}
		for _, d := range st.Details() {
			if _, ok := d.(*cachev1.LeaderHint); ok {
				return true
			}
		}
		return strings.Contains(st.Message(), "not the partition leader") || strings.Contains(st.Message(), "node is not the leader")
	case codes.DeadlineExceeded:
		// The node's own deadline for a forward, not the command's (call
		// stops when ctx ends).
		return safe
	case codes.Aborted:
		return true
	case codes.ResourceExhausted:
		// A full write-back backlog; not a rate limit, which the listener
		// checks itself.
		return !strings.HasPrefix(st.Message(), cachev1.RateLimitPrefix)
	}
	return false
}

// errReply is the Redis error reply for a failed call.
func errReply(err error) reply {
	st := status.Convert(err)
	msg := st.Message()
	for _, p := range []string{"request: invalid argument: ", "node: ", "request: "} {
		msg = strings.TrimPrefix(msg, p)
	}
	switch st.Code() {
	case codes.Unavailable, codes.DeadlineExceeded, codes.Aborted:
		// Redis clients run a command again on TRYAGAIN by themselves:
		// say it only when the answer proves the command did not run.
		if retryable(err, false) {
			return errorf("TRYAGAIN %s", msg)
		}
		return errorf("ERR unavailable, the command may or may not have been applied: %s", msg)
	case codes.PermissionDenied:
		return errorf("NOPERM %s", msg)
	case codes.Unauthenticated:
		return errorf("NOAUTH %s", msg)
	case codes.ResourceExhausted:
		return errorf("BUSY %s", msg)
	}
	return errorf("ERR %s", msg)
}

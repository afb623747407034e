package node_test

import (
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// respCommands are the commands the listener answers.
var respCommands = []string{
	"append", "auth", "client", "command", "dbsize", "decr", "decrby", "del", "echo",
	"elcache.consistency", "elcache.meta", "elcache.writemode", "exists", "expire", "expireat",
	"flushall", "flushdb", "get", "getdel", "getex", "getrange", "getset", "hello", "incr",
	"incrby", "incrbyfloat", "info", "keys", "mget", "mset", "msetnx", "persist", "pexpire",
	"pexpireat", "ping", "psetex", "pttl", "quit", "reset", "scan", "select", "set", "setex",
	"setnx", "setrange", "strlen", "time", "ttl", "type", "unlink",
}

// respServer runs the connection and server commands through node 2's
// listener.
func respServer(t *testing.T, e respEnv) {
	rdb := e.client(t, 2)
	t.Run("PING_ECHO_SELECT", func(t *testing.T) {
		runScript(t, rdb, []step{
			{cmd: args("PING"), want: "PONG"},
			{cmd: args("PING", "hello world"), want: "hello world"},
			{cmd: args("PING", "a", "b"), err: "ERR wrong number of arguments for 'ping' command"},
			{cmd: args("ECHO", "hi\r\nthere"), want: "hi\r\nthere"},
			{cmd: args("ECHO"), err: "ERR wrong number of arguments for 'echo' command"},
			{cmd: args("SELECT", 0), want: "OK"},
			{cmd: args("SELECT", 1), err: "ERR DB index is out of range*"},
			{cmd: args("SELECT", "x"), err: "ERR value is not an integer or out of range"},
			{cmd: args("TIME", "x"), err: "ERR wrong number of arguments for 'time' command"},
		})
	})
	t.Run("errors", func(t *testing.T) {
		runScript(t, rdb, []step{
			{cmd: args("GET"), err: "ERR wrong number of arguments for 'get' command"},
			{cmd: args("GET", "a", "b"), err: "ERR wrong number of arguments for 'get' command"},
			{cmd: args("SET", "a"), err: "ERR wrong number of arguments for 'set' command"},
			{cmd: args("incr"), err: "ERR wrong number of arguments for 'incr' command"},
			{cmd: args("NOSUCH"), err: "ERR unknown command 'NOSUCH', with args beginning with: "},
			{cmd: args("NoSuch", "a", "b c"), err: "ERR unknown command 'NoSuch', with args beginning with: 'a' 'b c' "},
			{cmd: args("LPUSH", "list", "a"), err: "ERR unknown command 'LPUSH', with args beginning with: 'list' 'a' "},
			{cmd: args("HSET", "h", "f", "v"), err: "ERR unknown command 'HSET', with args beginning with: 'h' 'f' 'v' "},
			{cmd: args("MULTI"), err: "ERR unknown command 'MULTI', with args beginning with: "},
		})
	})
	t.Run("HELLO", func(t *testing.T) {
		ctx, cn := respCtx(t), e.conn(t, 2)
		id, err := cn.ClientID(ctx).Result()
		if err != nil {
			t.Fatal(err)
		}
		hello, err := cn.Hello(ctx, e.proto, "", "", "").Result()
		want := map[string]any{"server": "redis", "version": "7.2.0", "proto": int64(e.proto), "id": id,
			"mode": "standalone", "role": "master", "modules": []any{}}
		if err != nil || !reflect.DeepEqual(hello, want) {
			t.Fatalf("HELLO %d = %#v, %v; want %#v", e.proto, hello, err, want)
		}
		runScript(t, cn, []step{
			{cmd: args("HELLO", 4), err: "NOPROTO unsupported protocol version"},
			{cmd: args("HELLO", "x"), err: "ERR Protocol version is not an integer or out of range"},
			{cmd: args("HELLO", e.proto, "BOGUS"), err: "ERR Syntax error in HELLO option 'BOGUS'"},
			{cmd: args("HELLO", e.proto, "SETNAME", "bad name"), err: "ERR Client names cannot contain spaces, newlines or special characters."},
			{cmd: args("CLIENT", "GETNAME"), want: nil},
			{cmd: args("HELLO", e.proto, "SETNAME", "hello-name"), want: helloReply(e.proto)},
			{cmd: args("CLIENT", "GETNAME"), want: "hello-name"},
			// No tokens: the default user has no password, so that AUTH with
			// a user name passes, and AUTH with a password alone is refused,
			// as in Redis.
			{cmd: args("AUTH", "secret-of-nobody"), err: "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?"},
			{cmd: args("AUTH", "default", "anything"), want: "OK"},
			{cmd: args("AUTH", "someone", "anything"), err: "WRONGPASS invalid username-password pair or user is disabled."},
			{cmd: args("HELLO", e.proto, "AUTH", "default", "anything"), want: helloReply(e.proto)},
			{cmd: args("GET", e.key(t, "k")), want: nil},
		})
	})
	t.Run("CLIENT", func(t *testing.T) {
		ctx, cn := respCtx(t), e.conn(t, 2)
		runScript(t, cn, []step{
			{cmd: args("CLIENT", "GETNAME"), want: nil},
			{cmd: args("CLIENT", "SETNAME", "worker-1"), want: "OK"},
			{cmd: args("CLIENT", "GETNAME"), want: "worker-1"},
			{cmd: args("CLIENT", "SETNAME", "two words"), err: "ERR Client names cannot contain spaces, newlines or special characters."},
			{cmd: args("CLIENT", "GETNAME"), want: "worker-1"},
			{cmd: args("CLIENT", "BOGUS"), err: "ERR unknown subcommand*"},
			{cmd: args("CLIENT", "GETNAME", "x"), err: "ERR unknown subcommand*"},
			{cmd: args("CLIENT"), err: "ERR wrong number of arguments for 'client' command"},
		})
		id, err := cn.ClientID(ctx).Result()
		if err != nil || id <= 0 {
			t.Fatalf("CLIENT ID = %d, %v", id, err)
		}
		other, err := e.conn(t, 2).ClientID(ctx).Result()
		if err != nil || other == id {
			t.Fatalf("CLIENT ID of another connection = %d, %v; want an id other than %d", other, err, id)
		}
		info, err := cn.ClientInfo(ctx).Result()
		if err != nil {
			t.Fatal(err)
		}
		if info.ID != id || info.Name != "worker-1" || info.Resp != e.proto || info.DB != 0 || info.LibName == "" {
			t.Fatalf("CLIENT INFO = %+v; want id %d, name worker-1, resp %d, db 0 and go-redis's lib-name", info, id, e.proto)
		}
	})
	// CLIENT LIST reads every connection's name, user and protocol while
	// their own goroutines change them (under -race: without a data race).
	t.Run("CLIENT_LIST", func(t *testing.T) {
		ctx, a, b := respCtx(t), e.conn(t, 2), e.conn(t, 2)
		id, err := a.ClientID(ctx).Result()
		if err != nil {
			t.Fatal(err)
		}
		const renames = 50
		done := make(chan error, 1)
		go func() {
			for i := range renames {
				for _, cmd := range [][]any{{"CLIENT", "SETNAME", fmt.Sprintf("a-%d", i)}, {"HELLO", e.proto}, {"AUTH", "default", "x"},
					{"CLIENT", "SETINFO", "lib-name", fmt.Sprintf("lib-%d", i)}} {
					if err := a.Do(ctx, cmd...).Err(); err != nil {
						done <- fmt.Errorf("%v: %w", cmd, err)
						return
					}
				}
			}
			done <- nil
		}()
		for range renames {
			if list, err := b.ClientList(ctx).Result(); err != nil || !strings.Contains(list, fmt.Sprintf("id=%d ", id)) {
				t.Fatalf("CLIENT LIST = %q, %v; want a line of connection %d", list, err, id)
			}
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		list, err := b.ClientList(ctx).Result()
		want := fmt.Sprintf("id=%d .* name=a-%d .* resp=%d lib-name=lib-%d ", id, renames-1, e.proto, renames-1)
		if err != nil || !regexp.MustCompile(want).MatchString(list) {
			t.Fatalf("CLIENT LIST = %q, %v; want a line matching %q", list, err, want)
		}
	})
	t.Run("COMMAND", func(t *testing.T) {
		ctx := respCtx(t)
		cmds, err := rdb.Command(ctx).Result()
		if err != nil {
			t.Fatal(err)
		}
		names := slices.Sorted(func(yield func(string) bool) {
			for n := range cmds {
				if !yield(n) {
					return
				}
			}
		})
		if !slices.Equal(names, respCommands) {
			t.Errorf("COMMAND names\n%q\nwant\n%q", names, respCommands)
		}
		tests := []struct {
			name              string
			arity             int8
			flag              string
			first, last, step int8
		}{
			{"get", 2, "readonly", 1, 1, 1},
			{"set", -3, "write", 1, 1, 1},
			{"mset", -3, "write", 1, -1, 2},
			{"mget", -2, "readonly", 1, -1, 1},
			{"del", -2, "write", 1, -1, 1},
			{"flushdb", -1, "admin", 0, 0, 0},
			{"ping", -1, "fast", 0, 0, 0},
			{"hello", -1, "no_auth", 0, 0, 0},
		}
		for _, tc := range tests {
			c := cmds[tc.name]
			if c == nil || c.Arity != tc.arity || !slices.Contains(c.Flags, tc.flag) || c.FirstKeyPos != tc.first || c.LastKeyPos != tc.last || c.StepCount != tc.step {
				t.Errorf("COMMAND %s = %+v; want arity %d, flag %s, keys %d %d %d", tc.name, c, tc.arity, tc.flag, tc.first, tc.last, tc.step)
			}
		}
		var emptyMap any = map[any]any{}
		if e.proto == 2 {
			emptyMap = []any{}
		}
		runScript(t, rdb, []step{
			{cmd: args("COMMAND", "COUNT"), want: len(respCommands)},
			{cmd: args("COMMAND", "LIST"), want: check(func(got any) error {
				if l, ok := got.([]any); !ok || len(l) != len(respCommands) || !slices.Contains(l, any("incrbyfloat")) {
					return fmt.Errorf("want the %d names", len(respCommands))
				}
				return nil
			})},
			{cmd: args("COMMAND", "INFO", "get", "nosuch"), want: check(func(got any) error {
				if l, ok := got.([]any); !ok || len(l) != 2 || l[1] != nil || fmt.Sprint(l[0]) == "" {
					return fmt.Errorf("want get's entry and a null")
				}
				return nil
			})},
			{cmd: args("COMMAND", "DOCS"), want: emptyMap},
			{cmd: args("COMMAND", "BOGUS"), err: "ERR unknown subcommand*"},
		})
	})
	t.Run("INFO_TIME", func(t *testing.T) {
		ctx := respCtx(t)
		info, err := rdb.Info(ctx).Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range []string{"# Server\r\n", "# Clients\r\n", "# Memory\r\n", "# Stats\r\n", "# Replication\r\n", "# Keyspace\r\n",
			"redis_version:7.2.0\r\n", "redis_mode:standalone\r\n", "elcache_node:n2\r\n", "elcache_partitions:8\r\n", "db0:keys="} {
			if !strings.Contains(info, s) {
				t.Errorf("INFO has no %q:\n%s", s, info)
			}
		}
		tests := []struct {
			sections []string
			has      []string
			hasNot   []string
		}{
			{[]string{"server"}, []string{"# Server", "tcp_port:"}, []string{"# Clients", "# Keyspace"}},
			{[]string{"clients"}, []string{"# Clients", "connected_clients:"}, []string{"# Server"}},
			{[]string{"stats", "replication"}, []string{"# Stats", "total_commands_processed:", "# Replication", "role:"}, []string{"# Server", "# Keyspace"}},
			{[]string{"keyspace"}, []string{"# Keyspace", "db0:keys="}, []string{"# Server"}},
			{[]string{"everything"}, []string{"# Server", "# Keyspace"}, nil},
		}
		for _, tc := range tests {
			t.Run(strings.Join(tc.sections, "_"), func(t *testing.T) {
				got, err := rdb.Info(ctx, tc.sections...).Result()
				if err != nil {
					t.Fatal(err)
				}
				for _, s := range tc.has {
					if !strings.Contains(got, s) {
						t.Errorf("INFO %s has no %q:\n%s", tc.sections, s, got)
					}
				}
				for _, s := range tc.hasNot {
					if strings.Contains(got, s) {
						t.Errorf("INFO %s has %q:\n%s", tc.sections, s, got)
					}
				}
			})
		}
		before := time.Now().Truncate(time.Second)
		now, err := rdb.Time(ctx).Result()
		if err != nil || now.Before(before) || now.After(time.Now()) {
			t.Fatalf("TIME = %v, %v; want between %v and now", now, err, before)
		}
	})
}

// helloReply checks a reply is HELLO's, in protocol proto.
func helloReply(proto int) check {
	return func(got any) error {
		m, err := replyMap(got)
		if err != nil || m["server"] != "redis" || m["proto"] != int64(proto) {
			return fmt.Errorf("want HELLO's map, with proto %d", proto)
		}
		return nil
	}
}

// replyMap returns a map reply as a map of string keys: RESP3's map, or
// RESP2's flat array of keys and values.
func replyMap(got any) (map[string]any, error) {
	out := map[string]any{}
	switch r := got.(type) {
	case map[any]any:
		for k, v := range r {
			out[fmt.Sprint(k)] = v
		}
	case []any:
		if len(r)%2 != 0 {
			return nil, fmt.Errorf("an array of %d elements is no map", len(r))
		}
		for i := 0; i < len(r); i += 2 {
			out[fmt.Sprint(r[i])] = r[i+1]
		}
	default:
		return nil, fmt.Errorf("%T is no map", got)
	}
	return out, nil
}

// respElcache runs the ELCACHE.* commands on one connection of node 0.
func respElcache(t *testing.T, e respEnv) {
	ctx, cn := respCtx(t), e.conn(t, 0)
	k := e.key(t, "k")
	runScript(t, cn, []step{
		{cmd: args("ELCACHE.META"), want: nil},
		{cmd: args("ELCACHE.CONSISTENCY"), want: "linearizable"},
		{cmd: args("ELCACHE.WRITEMODE"), want: "default"},
	})
	idempotent(t, "SET", func() error { return cn.Set(ctx, k, "v", 0).Err() })
	levels := []struct {
		set  []any
		name string // ELCACHE.CONSISTENCY's answer, and META's consistency
	}{
		{args("ELCACHE.CONSISTENCY", "lease"), "lease"},
		{args("ELCACHE.CONSISTENCY", "BOUNDED", "250ms"), "bounded"},
		{args("ELCACHE.CONSISTENCY", "session"), "session"},
		{args("ELCACHE.CONSISTENCY", "eventual"), "eventual"},
		{args("ELCACHE.CONSISTENCY", "linearizable"), "linearizable"},
	}
	// RESP2 has no booleans and no doubles: an integer and a bulk string.
	var notStale any = false
	if e.proto == 2 {
		notStale = int64(0)
	}
	for _, l := range levels {
		t.Run(l.name, func(t *testing.T) {
			answer := l.name
			if l.name == "bounded" {
				answer = "bounded 250ms"
			}
			runScript(t, cn, []step{
				{cmd: l.set, want: "OK"},
				{cmd: args("ELCACHE.CONSISTENCY"), want: answer},
			})
			// A level short of linearizable may read a follower that has not
			// applied the SET yet, but not for long.
			waitFor(t, 10*time.Second, "GET "+k+" = v at "+l.name, func() bool {
				v, err := cn.Get(ctx, k).Result()
				return err == nil && v == "v"
			})
			meta := readMeta(t, cn)
			if meta["consistency"] != l.name || meta["partition"] == nil || meta["stale"] != notStale ||
				!slices.Contains([]any{"n0", "n1", "n2"}, meta["served_by"]) || !slices.Contains([]any{"leader", "follower"}, meta["role"]) {
				t.Fatalf("ELCACHE.META after a GET at %s = %v", l.name, meta)
			}
			if idx, ok := meta["applied_index"].(int64); !ok || idx <= 0 {
				t.Fatalf("ELCACHE.META applied_index = %#v, want a positive integer", meta["applied_index"])
			}
			if _, ok := meta["staleness_ms"].(float64); !ok && e.proto == 3 {
				t.Fatalf("ELCACHE.META staleness_ms = %#v, want a double", meta["staleness_ms"])
			}
		})
	}
	e.runScripts(t, cn, func(key func(string) string) []step {
		return []step{
			{cmd: args("ELCACHE.CONSISTENCY", "bounded"), err: "ERR bounded needs a maximum staleness, e.g. ELCACHE.CONSISTENCY bounded 100ms"},
			{cmd: args("ELCACHE.CONSISTENCY", "bounded", "soon"), err: `ERR invalid staleness "soon": want a positive duration such as 100ms`},
			{cmd: args("ELCACHE.CONSISTENCY", "bounded", "-1s"), err: `ERR invalid staleness "-1s": want a positive duration such as 100ms`},
			{cmd: args("ELCACHE.CONSISTENCY", "strong"), err: `ERR unknown read level "strong": want linearizable, lease, bounded, session or eventual`},
			{cmd: args("ELCACHE.CONSISTENCY", "session", "1s"), err: "ERR syntax error"},
			{cmd: args("ELCACHE.CONSISTENCY"), want: "linearizable"},
			{cmd: args("ELCACHE.WRITEMODE", "none"), want: "OK"},
			{cmd: args("ELCACHE.WRITEMODE"), want: "none"},
			{cmd: args("INCR", key("n")), want: 1},
			{cmd: args("ELCACHE.WRITEMODE", "sideways"), err: `ERR unknown write mode "sideways": want none, through, back, around or default`},
			{cmd: args("ELCACHE.WRITEMODE", "none", "x"), err: "ERR syntax error"},
			// The node refuses a mode that needs a database on a cluster that has
			// none, at the first write.
			{cmd: args("ELCACHE.WRITEMODE", "through"), want: "OK"},
			{cmd: args("SET", k, "w"), err: "ERR options.mode WRITE_MODE_WRITE_THROUGH needs a backing database, and this cluster has none (start it with --backend)"},
			{cmd: args("INCR", key("n")), err: "ERR options.mode WRITE_MODE_WRITE_THROUGH needs a backing database*"},
			{cmd: args("ELCACHE.WRITEMODE", "back"), want: "OK"},
			{cmd: args("SET", k, "w"), err: "ERR options.mode WRITE_MODE_WRITE_BACK needs a backing database*"},
			{cmd: args("ELCACHE.WRITEMODE", "default"), want: "OK"},
			{cmd: args("INCR", key("n")), want: 2},
			{cmd: args("GET", k), want: "v"},
		}
	})
}

// readMeta returns ELCACHE.META's answer as a map, from RESP3's map or
// RESP2's flat array.
func readMeta(t *testing.T, cn doer) map[string]any {
	t.Helper()
	got, err := cn.Do(respCtx(t), "ELCACHE.META").Result()
	if err != nil {
		t.Fatalf("ELCACHE.META: %v", err)
	}
	out, err := replyMap(got)
	if err != nil || len(out) != 8 {
		t.Fatalf("ELCACHE.META = %#v (%v), want a map of 8 fields", got, err)
	}
	return out
}

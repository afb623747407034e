package node_test

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// respKeys runs the key commands (DEL, EXISTS, TYPE, the expiry commands)
// and MSETNX through node 1's listener.
func respKeys(t *testing.T, e respEnv) {
	rdb := e.client(t, 1)
	e.runCases(t, rdb, []scriptCase{
		{"DEL UNLINK EXISTS TYPE", func(k func(string) string) []step {
			return []step{
				{cmd: args("MSET", k("a"), "1", k("b"), "2", k("c"), "3"), want: "OK"},
				{cmd: args("EXISTS", k("a")), want: 1},
				{cmd: args("EXISTS", k("a"), k("a"), k("absent"), k("b")), want: 3},
				{cmd: args("TYPE", k("a")), want: "string"},
				{cmd: args("TYPE", k("absent")), want: "none"},
				{cmd: args("DEL", k("a"), k("b"), k("absent")), want: 2},
				{cmd: args("EXISTS", k("a"), k("b")), want: 0},
				{cmd: args("UNLINK", k("c"), k("c")), want: 1},
				{cmd: args("DEL", k("c")), want: 0},
				{cmd: args("GET", k("c")), want: nil},
				{cmd: args("DEL"), err: "ERR wrong number of arguments for 'del' command"},
			}
		}},
		{"TTL PERSIST", func(k func(string) string) []step {
			return []step{
				{cmd: args("TTL", k("absent")), want: -2},
				{cmd: args("PTTL", k("absent")), want: -2},
				{cmd: args("SET", k("e"), "v"), want: "OK"},
				{cmd: args("TTL", k("e")), want: -1},
				{cmd: args("PTTL", k("e")), want: -1},
				{cmd: args("PERSIST", k("e")), want: 0},
				{cmd: args("PERSIST", k("absent")), want: 0},
				{cmd: args("EXPIRE", k("e"), 100), want: 1},
				{cmd: args("PERSIST", k("e")), want: 1},
				{cmd: args("TTL", k("e")), want: -1},
			}
		}},
		{"EXPIRE conditions", func(k func(string) string) []step {
			return []step{
				{cmd: args("SET", k("e"), "v"), want: "OK"},
				{cmd: args("EXPIRE", k("absent"), 100), want: 0},
				{cmd: args("EXPIRE", k("e"), 100, "XX"), want: 0},
				{cmd: args("EXPIRE", k("e"), 100, "GT"), want: 0},
				{cmd: args("EXPIRE", k("e"), 100, "XX", "LT"), want: 0},
				{cmd: args("TTL", k("e")), want: -1},
				{cmd: args("EXPIRE", k("e"), 100, "NX"), want: 1},
				{cmd: args("TTL", k("e")), want: between(90, 100)},
				{cmd: args("EXPIRE", k("e"), 200, "NX"), want: 0},
				{cmd: args("EXPIRE", k("e"), 200, "XX"), want: 1},
				{cmd: args("TTL", k("e")), want: between(190, 200)},
				{cmd: args("EXPIRE", k("e"), 100, "GT"), want: 0},
				{cmd: args("EXPIRE", k("e"), 300, "GT"), want: 1},
				{cmd: args("TTL", k("e")), want: between(290, 300)},
				{cmd: args("EXPIRE", k("e"), 400, "LT"), want: 0},
				{cmd: args("EXPIRE", k("e"), 50, "lt"), want: 1},
				{cmd: args("TTL", k("e")), want: between(40, 50)},
				{cmd: args("EXPIRE", k("e"), 40, "XX", "LT"), want: 1},
				{cmd: args("EXPIRE", k("e"), 45, "XX", "LT"), want: 0},
				{cmd: args("TTL", k("e")), want: between(30, 40)},
				{cmd: args("PERSIST", k("e")), want: 1},
				{cmd: args("EXPIRE", k("e"), 100, "LT"), want: 1},
				{cmd: args("TTL", k("e")), want: between(90, 100)},
				{cmd: args("EXPIRE", k("e"), 100, "NX", "XX"), err: "ERR NX and XX, GT or LT options at the same time are not compatible"},
				{cmd: args("EXPIRE", k("e"), 100, "GT", "LT"), err: "ERR GT and LT options at the same time are not compatible"},
				{cmd: args("EXPIRE", k("e"), 100, "FOO"), err: "ERR Unsupported option FOO"},
				{cmd: args("EXPIRE", k("e"), "abc"), err: "ERR value is not an integer or out of range"},
				{cmd: args("EXPIRE", k("e")), err: "ERR wrong number of arguments for 'expire' command"},
			}
		}},
		{"PEXPIRE EXPIREAT PEXPIREAT", func(k func(string) string) []step {
			return []step{
				{cmd: args("SET", k("e"), "v"), want: "OK"},
				{cmd: args("PEXPIRE", k("e"), 100000), want: 1},
				{cmd: args("PTTL", k("e")), want: between(90000, 100000)},
				{cmd: args("PEXPIRE", k("e"), 200000, "LT"), want: 0},
				{cmd: args("PEXPIRE", k("e"), 200000, "GT"), want: 1},
				{cmd: args("TTL", k("e")), want: between(190, 200)},
				{cmd: args("EXPIREAT", k("e"), unixIn(300*time.Second)), want: 1},
				{cmd: args("TTL", k("e")), want: between(290, 300)},
				{cmd: args("EXPIREAT", k("e"), unixIn(400*time.Second), "NX"), want: 0},
				{cmd: args("PEXPIREAT", k("e"), unixMsIn(400*time.Second)), want: 1},
				{cmd: args("TTL", k("e")), want: between(390, 400)},
				{cmd: args("PEXPIREAT", k("absent"), unixMsIn(400*time.Second)), want: 0},
				// An expiry in the past deletes the key, as in Redis.
				{cmd: args("EXPIREAT", k("e"), unixIn(-time.Hour)), want: 1},
				{cmd: args("EXISTS", k("e")), want: 0},
				{cmd: args("SET", k("n"), "v"), want: "OK"},
				{cmd: args("EXPIRE", k("n"), -1), want: 1},
				{cmd: args("GET", k("n")), want: nil},
			}
		}},
	})
	t.Run("PX_expires", func(t *testing.T) {
		ctx, k := respCtx(t), e.key(t, "short")
		if err := rdb.Set(ctx, k, "v", 150*time.Millisecond).Err(); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 10*time.Second, k+" expired", func() bool {
			n, err := rdb.Exists(ctx, k).Result()
			return err == nil && n == 0
		})
		if v, err := rdb.Get(ctx, k).Result(); err != redis.Nil {
			t.Fatalf("GET of an expired key = %q, %v; want a null reply", v, err)
		}
	})
	t.Run("MSETNX", func(t *testing.T) {
		e.runScripts(t, rdb, func(k func(string) string) []step {
			same, other := samePartition(t, e.c, k("m"), 4)
			a, b, c, d := same[0], same[1], same[2], same[3]
			return []step{
				{cmd: args("MSETNX", a, "1", b, "2"), want: 1},
				{cmd: args("MGET", a, b), want: []any{"1", "2"}},
				// One key exists: none is set.
				{cmd: args("MSETNX", c, "3", a, "4"), want: 0},
				{cmd: args("MGET", a, c), want: []any{"1", nil}},
				{cmd: args("MSETNX", d, "x", d, "y"), want: 1},
				{cmd: args("GET", d), want: "y"},
				{cmd: args("MSETNX", c, "1", other, "2"), err: "ERR MSETNX is atomic only for keys of one partition*"},
				{cmd: args("MGET", c, other), want: []any{nil, nil}},
				{cmd: args("MSETNX", c), err: "ERR wrong number of arguments for 'msetnx' command"},
				{cmd: args("MSETNX", c, "1", d), err: "ERR wrong number of arguments for 'msetnx' command"},
			}
		})
	})
}

// respKeyspace runs the whole-keyspace commands (FLUSHDB, FLUSHALL,
// DBSIZE, INFO keyspace, SCAN, KEYS) on a keyspace it empties first.
func respKeyspace(t *testing.T, e respEnv) {
	ctx := respCtx(t)
	clients := []*redis.Client{e.client(t, 0), e.client(t, 1), e.client(t, 2)}
	// dbsize waits until every node holds n keys: DBSIZE counts a node's
	// keys, which its followers apply a little after the leader.
	dbsize := func(n int64) {
		t.Helper()
		for i, rdb := range clients {
			var got int64
			var err error
			waitFor(t, 20*time.Second, fmt.Sprintf("DBSIZE of n%d is %d", i, n), func() bool {
				got, err = rdb.DBSize(ctx).Result()
				return err == nil && got == n
			})
			info, err := rdb.Info(ctx, "keyspace").Result()
			if want := fmt.Sprintf("db0:keys=%d,", n); err != nil || !strings.Contains(info, want) {
				t.Fatalf("INFO keyspace of n%d = %q, %v; want %q", i, info, err, want)
			}
		}
	}
	idempotent(t, "FLUSHDB", func() error { return clients[0].FlushDB(ctx).Err() })
	dbsize(0)

	const n = 300
	want := map[string]bool{}
	var kv []any
	for i := range n {
		k := fmt.Sprintf("scan:%03d", i)
		want[k] = true
		kv = append(kv, k, i)
	}
	for i := range 20 {
		kv = append(kv, fmt.Sprintf("other:%d", i), i)
	}
	idempotent(t, "MSET", func() error { return clients[1].MSet(ctx, kv...).Err() })
	dbsize(n + 20)

	scan := func(t *testing.T, rdb *redis.Client, match string, count int64) map[string]int {
		t.Helper()
		seen := map[string]int{}
		it := rdb.Scan(ctx, 0, match, count).Iterator()
		for it.Next(ctx) {
			seen[it.Val()]++
		}
		if err := it.Err(); err != nil {
			t.Fatalf("SCAN MATCH %s COUNT %d: %v", match, count, err)
		}
		return seen
	}
	t.Run("SCAN", func(t *testing.T) {
		for i, rdb := range clients {
			seen := scan(t, rdb, "", 17)
			for k := range want {
				if seen[k] == 0 {
					t.Errorf("SCAN through n%d never returned %s", i, k)
				}
			}
			if len(seen) != n+20 {
				t.Errorf("SCAN through n%d returned %d keys, want %d", i, len(seen), n+20)
			}
		}
	})
	t.Run("SCAN_MATCH", func(t *testing.T) {
		tests := []struct {
			match string
			want  func(k string) bool
		}{
			{"scan:1*", func(k string) bool { return strings.HasPrefix(k, "scan:1") }},
			{"*:?5", func(k string) bool { return k == "other:15" }},
			{"scan:[0-1]0[05]", func(k string) bool {
				return strings.HasPrefix(k, "scan:") && (k[5] == '0' || k[5] == '1') && k[6] == '0' && (k[7] == '0' || k[7] == '5')
			}},
			{"nothing*", func(string) bool { return false }},
		}
		for _, tc := range tests {
			t.Run(tc.match, func(t *testing.T) {
				seen := scan(t, clients[2], tc.match, 50)
				for k := range seen {
					if !tc.want(k) {
						t.Errorf("SCAN MATCH %s returned %s", tc.match, k)
					}
				}
				keys, err := clients[2].Keys(ctx, tc.match).Result()
				if err != nil {
					t.Fatal(err)
				}
				for k := range want {
					if tc.want(k) && seen[k] == 0 {
						t.Errorf("SCAN MATCH %s never returned %s", tc.match, k)
					}
				}
				got := slices.Sorted(func(yield func(string) bool) {
					for k := range seen {
						if !yield(k) {
							return
						}
					}
				})
				slices.Sort(keys)
				if !slices.Equal(keys, got) {
					t.Errorf("KEYS %s = %q, SCAN returned %q", tc.match, keys, got)
				}
			})
		}
	})
	runScript(t, clients[0], []step{
		{cmd: args("SCAN", "abc"), err: "ERR invalid cursor"},
		{cmd: args("SCAN", "12345"), err: "ERR invalid cursor*"},
		{cmd: args("SCAN", 0, "COUNT", 0), err: "ERR syntax error"},
		{cmd: args("SCAN", 0, "COUNT", "x"), err: "ERR value is not an integer or out of range"},
		{cmd: args("SCAN", 0, "MATCH"), err: "ERR syntax error"},
		{cmd: args("SCAN", 0, "COUNT", 1000, "TYPE", "hash"), want: check(func(got any) error {
			if r, ok := got.([]any); !ok || len(r) != 2 || !reflect.DeepEqual(r[1], []any{}) {
				return fmt.Errorf("want no key of type hash")
			}
			return nil
		})},
		{cmd: args("KEYS", "other:1?"), want: check(func(got any) error {
			if r, ok := got.([]any); !ok || len(r) != 10 {
				return fmt.Errorf("want the 10 keys other:10 to other:19")
			}
			return nil
		})},
		{cmd: args("FLUSHDB", "BOGUS"), err: "ERR syntax error"},
	})
	idempotent(t, "FLUSHALL ASYNC", func() error { return clients[0].Do(ctx, "FLUSHALL", "ASYNC").Err() })
	dbsize(0)
	idempotent(t, "SET", func() error { return clients[2].Set(ctx, "after-flush", "v", 0).Err() })
	dbsize(1)
	idempotent(t, "FLUSHDB SYNC", func() error { return clients[2].Do(ctx, "FLUSHDB", "SYNC").Err() })
	dbsize(0)
}

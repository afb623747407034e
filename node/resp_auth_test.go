package node_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/elcache/elcache/node"
	"github.com/elcache/elcache/node/nodetest"
)

// TestRESPAuth: with tokens, a connection must AUTH (or HELLO AUTH) with
// one, and its commands are held to the token's role.
func TestRESPAuth(t *testing.T) {
	c := startRESPCluster(t, func(_ int, cfg *node.Config) { cfg.Tokens = testTokens })
	reader, writer, operator := testTokens[0], testTokens[1], testTokens[2]
	for _, proto := range []int{2, 3} {
		e := respEnv{c: c, proto: proto}
		t.Run(map[int]string{2: "RESP2", 3: "RESP3"}[proto], func(t *testing.T) {
			k := e.key(t, "k")
			t.Run("anonymous", func(t *testing.T) {
				runScript(t, e.conn(t, 0), []step{
					{cmd: args("GET", k), err: "NOAUTH Authentication required."},
					{cmd: args("PING"), err: "NOAUTH Authentication required."},
					{cmd: args("CLIENT", "SETNAME", "x"), err: "NOAUTH Authentication required."},
					{cmd: args("HELLO", proto), err: "NOAUTH HELLO must be called with the client already authenticated*"},
					{cmd: args("AUTH", "not-a-token-of-this-cluster"), err: "WRONGPASS invalid username-password pair or user is disabled."},
					// The token's secret under another token's name.
					{cmd: args("AUTH", writer.Name, reader.Secret), err: "WRONGPASS invalid username-password pair or user is disabled."},
					{cmd: args("GET", k), err: "NOAUTH Authentication required."},
					{cmd: args("AUTH", "a", "b", "c"), err: "ERR syntax error"},
				})
			})
			t.Run("roles", func(t *testing.T) {
				cn := e.conn(t, 1)
				runScript(t, cn, []step{
					{cmd: args("AUTH", reader.Secret), want: "OK"},
					{cmd: args("PING"), want: "PONG"},
					{cmd: args("GET", k), want: nil},
					{cmd: args("SET", k, "v"), err: "NOPERM this user has no permissions to run the 'set' command*"},
					{cmd: args("INCR", k), err: "NOPERM this user has no permissions to run the 'incr' command*"},
					{cmd: args("DEL", k), err: "NOPERM this user has no permissions to run the 'del' command*"},
					{cmd: args("AUTH", writer.Name, writer.Secret), want: "OK"},
					{cmd: args("SET", k, "v"), want: "OK"},
					{cmd: args("INCR", k+"/n"), want: 1},
					{cmd: args("FLUSHDB"), err: "NOPERM this user has no permissions to run the 'flushdb' command*"},
					{cmd: args("FLUSHALL"), err: "NOPERM this user has no permissions to run the 'flushall' command*"},
					{cmd: args("HELLO", proto, "AUTH", operator.Name, operator.Secret), want: helloReply(proto)},
					{cmd: args("FLUSHDB"), want: "OK"},
					{cmd: args("GET", k), want: nil},
					// RESET logs the connection out.
					{cmd: args("RESET"), want: "RESET"},
					{cmd: args("GET", k), err: "NOAUTH Authentication required."},
				})
			})
			// go-redis sends the credentials in HELLO; a write through one
			// node is read through the others, forwarded with the nodes'
			// own token.
			t.Run("go-redis", func(t *testing.T) {
				ctx := respCtx(t)
				w := e.client(t, 0, func(o *redis.Options) { o.Username, o.Password = writer.Name, writer.Secret })
				if err := w.Set(ctx, k, "by writer", 0).Err(); err != nil {
					t.Fatalf("SET as %s: %v", writer.Name, err)
				}
				if n, err := w.Incr(ctx, k+"/n").Result(); err != nil || n < 1 {
					t.Fatalf("INCR as %s = %d, %v", writer.Name, n, err)
				}
				for i := 1; i < 3; i++ {
					r := e.client(t, i, func(o *redis.Options) { o.Password = reader.Secret })
					if got, err := r.Get(ctx, k).Result(); err != nil || got != "by writer" {
						t.Fatalf("GET through n%d as %s = %q, %v", i, reader.Name, got, err)
					}
					if err := r.Set(ctx, k, "x", 0).Err(); err == nil || !strings.HasPrefix(err.Error(), "NOPERM ") {
						t.Fatalf("SET through n%d as %s: %v, want NOPERM", i, reader.Name, err)
					}
				}
				bad := e.client(t, 2, func(o *redis.Options) { o.Password = "not-a-token-of-this-cluster" })
				if err := bad.Ping(ctx).Err(); err == nil {
					t.Fatal("PING with a wrong password passed")
				}
			})
		})
	}
}

// TestRESPWriteModeBackend: with a backing database the default write
// mode is WRITE_THROUGH, where the read-modify-write commands are
// refused; ELCACHE.WRITEMODE back or none lets them run.
func TestRESPWriteModeBackend(t *testing.T) {
	n := nodetest.Start(t, func(c *node.Config) {
		c.RESP.Addr = "127.0.0.1:0"
		c.Backend = "sqlite://" + filepath.Join(t.TempDir(), "backing.db")
		c.Backing.CreateTable = true
	})
	for _, proto := range []int{2, 3} {
		cn := newRedis(t, n.RESPAddr(), proto, func(o *redis.Options) { o.PoolSize = 1 }).Conn()
		t.Cleanup(func() { cn.Close() })
		k := map[int]string{2: "p2/", 3: "p3/"}[proto]
		runScript(t, cn, []step{
			{cmd: args("ELCACHE.WRITEMODE"), want: "default"},
			{cmd: args("SET", k+"s", "v"), want: "OK"},
			{cmd: args("GET", k+"s"), want: "v"},
			{cmd: args("INCR", k+"n"), err: "ERR Mutate supports options.mode CACHE_ONLY and WRITE_BACK, not WRITE_MODE_WRITE_THROUGH*"},
			{cmd: args("SET", k+"s", "w", "NX"), err: "ERR Mutate supports options.mode CACHE_ONLY and WRITE_BACK*"},
			{cmd: args("ELCACHE.WRITEMODE", "through"), want: "OK"},
			{cmd: args("APPEND", k+"s", "x"), err: "ERR Mutate supports options.mode CACHE_ONLY and WRITE_BACK*"},
			{cmd: args("ELCACHE.WRITEMODE", "back"), want: "OK"},
			{cmd: args("INCR", k+"n"), want: 1},
			{cmd: args("APPEND", k+"s", "x"), want: 2},
			{cmd: args("SET", k+"s", "w", "XX", "GET"), want: "vx"},
			{cmd: args("ELCACHE.WRITEMODE", "none"), want: "OK"},
			{cmd: args("INCR", k+"n"), want: 2},
			{cmd: args("ELCACHE.WRITEMODE", "around"), want: "OK"},
			{cmd: args("SET", k+"s", "around"), want: "OK"},
			{cmd: args("ELCACHE.WRITEMODE", "default"), want: "OK"},
			{cmd: args("GET", k+"s"), want: "around"},
			// At EVENTUAL a GET of a key the cache does not hold still
			// loads it from the database (GET's local fast path gives
			// the miss to the full one).
			{cmd: args("ELCACHE.CONSISTENCY", "eventual"), want: "OK"},
			{cmd: args("ELCACHE.WRITEMODE", "around"), want: "OK"},
			{cmd: args("SET", k+"e", "from the database"), want: "OK"},
			{cmd: args("GET", k+"e"), want: "from the database"},
			{cmd: args("GET", k+"none"), want: nil},
		})
	}
}

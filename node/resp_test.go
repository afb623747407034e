package node_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/elcache/elcache/node"
	"github.com/elcache/elcache/node/nodetest"
	"github.com/elcache/elcache/ring"
)

// The tests of the Redis-protocol listener (internal/respserver) talk to a
// real three-node cluster with the go-redis client and, for what go-redis
// hides (reply types, protocol errors, inline commands), a raw TCP
// connection. One cluster serves every subtest of TestRESP: clusters are
// slow to start.

// respMaxValue is the value limit of the RESP test clusters: small, so
// that the limit tests send little.
const respMaxValue = 4096

// startRESPCluster starts three nodes, each with the Redis listener on
// 127.0.0.1:0.
func startRESPCluster(t *testing.T, opts ...func(i int, c *node.Config)) *nodetest.Cluster {
	t.Helper()
	return nodetest.StartCluster(t, 3, append([]func(int, *node.Config){func(_ int, c *node.Config) {
		c.RESP.Addr = "127.0.0.1:0"
		c.Limits.MaxValueBytes = respMaxValue
		// The atomicity tests load the cluster, on a machine the race
		// detector slows down: leaders must not lose their lease under it.
		c.Raft.HeartbeatTimeout = 2 * time.Second
		c.Raft.ElectionTimeout = 2 * time.Second
		c.Raft.LeaderLeaseTimeout = time.Second
	}}, opts...)...)
}

// newRedis returns a go-redis client of addr speaking protocol proto (2
// or 3), closed when the test ends. opts change its options.
func newRedis(t testing.TB, addr string, proto int, opts ...func(*redis.Options)) *redis.Client {
	t.Helper()
	o := &redis.Options{Addr: addr, Protocol: proto, ReadTimeout: 2 * time.Minute, WriteTimeout: 2 * time.Minute, MaxRetries: -1}
	for _, f := range opts {
		f(o)
	}
	rdb := redis.NewClient(o)
	t.Cleanup(func() {
		if err := rdb.Close(); err != nil {
			t.Errorf("close go-redis client of %s: %v", addr, err)
		}
	})
	return rdb
}

// TestRESP runs the listener's commands through go-redis, in RESP2 and in
// RESP3, on one cluster.
func TestRESP(t *testing.T) {
	c := startRESPCluster(t)
	for _, proto := range []int{2, 3} {
		e := respEnv{c: c, proto: proto}
		t.Run(fmt.Sprintf("RESP%d", proto), func(t *testing.T) {
			for _, sub := range []struct {
				name string
				run  func(*testing.T, respEnv)
			}{
				{"strings", respStrings},
				{"keys", respKeys},
				{"server", respServer},
				{"elcache", respElcache},
				{"pipeline", respPipeline},
				{"crossnode", respCrossNode},
				{"session", respSession},
				{"limits", respLimits},
			} {
				t.Run(sub.name, func(t *testing.T) { sub.run(t, e) })
			}
		})
	}
	// Once: the protocol changes nothing to atomicity, and it is slow.
	t.Run("atomic", func(t *testing.T) { respAtomic(t, respEnv{c: c, proto: 3}) })
	t.Run("wire", func(t *testing.T) { respWire(t, c) })
	// Last: it empties the keyspace.
	t.Run("keyspace", func(t *testing.T) { respKeyspace(t, respEnv{c: c, proto: 3}) })
}

// respEnv is what the subtests of one protocol share: the cluster and the
// protocol.
type respEnv struct {
	c     *nodetest.Cluster
	proto int
}

// client returns a new go-redis client of node i's listener.
func (e respEnv) client(t testing.TB, i int, opts ...func(*redis.Options)) *redis.Client {
	t.Helper()
	return newRedis(t, e.c.Nodes[i].RESPAddr(), e.proto, opts...)
}

// conn returns one connection of node i's listener, for commands whose
// state is the connection's.
func (e respEnv) conn(t testing.TB, i int) *redis.Conn {
	t.Helper()
	cn := e.client(t, i, func(o *redis.Options) { o.PoolSize = 1 }).Conn()
	t.Cleanup(func() { cn.Close() })
	return cn
}

// key returns a key named name of test t (whose name says the protocol),
// so that subtests do not share keys.
func (e respEnv) key(t testing.TB, name string) string {
	return t.Name()[strings.IndexByte(t.Name(), '/')+1:] + "/" + name
}

// respCtx is the context of a test's commands.
func respCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// step is one command of a script and the reply it must get.
type step struct {
	cmd []any
	// want is the reply as go-redis returns it from Do: string (simple
	// and bulk strings), int64 (an int works too), float64, bool, []any,
	// map[any]any, nil for a null reply, or a check on the reply.
	want any
	// err is the error reply: the exact text, or its start when it ends
	// in "*". Empty: the command must succeed.
	err string
}

// check is a step's test of a reply it cannot know exactly.
type check func(got any) error

// between checks an integer reply is in [lo, hi].
func between(lo, hi int64) check {
	return func(got any) error {
		n, ok := got.(int64)
		if !ok || n < lo || n > hi {
			return fmt.Errorf("want an integer in [%d, %d]", lo, hi)
		}
		return nil
	}
}

// unixIn and unixMsIn are the Unix time d from now, in seconds and in
// milliseconds, as EXAT, PXAT, EXPIREAT and PEXPIREAT take it.
func unixIn(d time.Duration) string   { return strconv.FormatInt(time.Now().Add(d).Unix(), 10) }
func unixMsIn(d time.Duration) string { return strconv.FormatInt(time.Now().Add(d).UnixMilli(), 10) }

// scriptCase is a named script, made on the keys of its own that k names.
type scriptCase struct {
	name  string
	steps func(k func(string) string) []step
}

// runCases runs each case as a subtest (runScripts).
func (e respEnv) runCases(t *testing.T, rdb doer, cases []scriptCase) {
	for _, tc := range cases {
		t.Run(strings.ReplaceAll(tc.name, " ", "_"), func(t *testing.T) { e.runScripts(t, rdb, tc.steps) })
	}
}

// args makes a step's command.
func args(a ...any) []any { return a }

// doer sends any command: a go-redis client or connection.
type doer interface {
	Do(ctx context.Context, args ...any) *redis.Cmd
}

// runScript runs steps in order on rdb and fails at the first wrong reply.
func runScript(t *testing.T, rdb doer, steps []step) {
	t.Helper()
	if err := playScript(t, rdb, steps); err != nil {
		t.Fatal(err)
	}
}

// playScript runs steps in order on rdb and fails at the first wrong
// reply, but for an unexpected TRYAGAIN, which it returns.
func playScript(t *testing.T, rdb doer, steps []step) error {
	t.Helper()
	ctx := respCtx(t)
	for _, s := range steps {
		got, err := rdb.Do(ctx, s.cmd...).Result()
		if isTryAgain(err) && !strings.HasPrefix(s.err, "TRYAGAIN") {
			return fmt.Errorf("%v: %w", fmtCmd(s.cmd), err)
		}
		if err := matchReply(got, err, s.want, s.err); err != nil {
			t.Fatalf("%v: %v", fmtCmd(s.cmd), err)
		}
	}
	return nil
}

// isTryAgain reports whether err is Redis's TRYAGAIN error reply.
func isTryAgain(err error) bool {
	return err != nil && strings.HasPrefix(err.Error(), "TRYAGAIN ")
}

// retryTryAgain runs attempt until it returns nil, three times at most.
// attempt returns an error only for a TRYAGAIN answer: a partition was
// electing its leader, and a write answered so may or may not have run.
// Each attempt gets its number, to start over on keys of its own.
func retryTryAgain(t *testing.T, attempt func(n int) error) {
	t.Helper()
	for n := 0; ; n++ {
		err := attempt(n)
		if err == nil {
			return
		}
		if n == 2 {
			t.Fatalf("TRYAGAIN in %d attempts; the last: %v", n+1, err)
		}
		t.Logf("attempt %d: %v; again on new keys", n, err)
	}
}

// idempotent runs a command that may run twice, again while it is
// answered TRYAGAIN; it fails the test on any other error.
func idempotent(t *testing.T, what string, command func() error) {
	t.Helper()
	retryTryAgain(t, func(int) error {
		err := command()
		if err != nil && !isTryAgain(err) {
			t.Fatalf("%s: %v", what, err)
		}
		return err
	})
}

// runScripts runs the script that steps makes with keys of its own
// (test.key), again on other keys if a command is answered TRYAGAIN.
func (e respEnv) runScripts(t *testing.T, rdb doer, steps func(k func(string) string) []step) {
	t.Helper()
	retryTryAgain(t, func(n int) error {
		return playScript(t, rdb, steps(func(name string) string {
			if n > 0 {
				name = fmt.Sprintf("%s#%d", name, n)
			}
			return e.key(t, name)
		}))
	})
}

// matchReply compares a reply of go-redis's Do with want and wantErr (see
// step).
func matchReply(got any, err error, want any, wantErr string) error {
	if errors.Is(err, redis.Nil) {
		got, err = nil, nil
	}
	var rerr redis.Error
	switch {
	case err != nil && !errors.As(err, &rerr):
		return fmt.Errorf("failed: %w", err)
	case err != nil && wantErr == "":
		return fmt.Errorf("got the error %q, want %#v", err, want)
	case err == nil && wantErr != "":
		return fmt.Errorf("got %#v, want the error %q", got, wantErr)
	case err != nil:
		if p, ok := strings.CutSuffix(wantErr, "*"); ok && strings.HasPrefix(err.Error(), p) || err.Error() == wantErr {
			return nil
		}
		return fmt.Errorf("got the error %q, want %q", err, wantErr)
	}
	switch w := want.(type) {
	case check:
		if err := w(got); err != nil {
			return fmt.Errorf("got %#v: %w", got, err)
		}
		return nil
	case int:
		want = int64(w)
	}
	if !reflect.DeepEqual(got, want) {
		return fmt.Errorf("got %#v (%T), want %#v (%T)", got, got, want, want)
	}
	return nil
}

func fmtCmd(cmd []any) string {
	var b strings.Builder
	for i, a := range cmd {
		if i > 0 {
			b.WriteByte(' ')
		}
		s := fmt.Sprint(a)
		if len(s) > 40 {
			s = s[:40] + "..."
		}
		b.WriteString(s)
	}
	return b.String()
}

// partitioner is the key-to-partition function of cluster c.
func partitioner(t testing.TB, c *nodetest.Cluster) ring.Partitioner {
	t.Helper()
	pr, err := ring.NewPartitioner(c.Configs[0].Partitions)
	if err != nil {
		t.Fatal(err)
	}
	return pr
}

// samePartition returns n keys starting with prefix that share one
// partition of c, and one key of another partition.
func samePartition(t testing.TB, c *nodetest.Cluster, prefix string, n int) (same []string, other string) {
	t.Helper()
	pr := partitioner(t, c)
	var part uint32
	for i := 0; len(same) < n || other == ""; i++ {
		k := fmt.Sprintf("%s%d", prefix, i)
		p := pr.Partition([]byte(k))
		switch {
		case len(same) == 0:
			same, part = append(same, k), p
		case p == part && len(same) < n:
			same = append(same, k)
		case p != part && other == "":
			other = k
		}
	}
	return same, other
}

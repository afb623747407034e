package client_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/elcache/elcache/client"
	"github.com/elcache/elcache/node"
	"github.com/elcache/elcache/node/nodetest"
	cachev1 "github.com/elcache/elcache/proto/cache/v1"
	"github.com/elcache/elcache/storage/sqlstore"
	"github.com/elcache/elcache/storage/sqlstore/pgtest"
)

// clusterClient starts a cluster of size nodes and a client that knows
// only seeds of them (all when none are named).
func clusterClient(t *testing.T, size int, edit func(*client.Config), opts ...func(int, *node.Config)) (*nodetest.Cluster, *client.Client) {
	t.Helper()
	c := nodetest.StartCluster(t, size, opts...)
	c.WaitConverged(30 * time.Second)
	cfg := client.DefaultConfig()
	cfg.Seeds = nil
	for _, n := range c.Nodes {
		cfg.Seeds = append(cfg.Seeds, n.Addr())
	}
	return c, startClient(t, cfg, edit)
}

// startClient starts a client with cfg, edited by edit if set, and closes it
// at the end of the test.
func startClient(t *testing.T, cfg client.Config, edit func(*client.Config)) *client.Client {
	t.Helper()
	if edit != nil {
		edit(&cfg)
	}
	cl, err := client.New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	return cl
}

// forwarded sums the nodes' forwarded-request counters.
func forwarded(t *testing.T, c *nodetest.Cluster) uint64 {
	t.Helper()
	var sum uint64
	for _, i := range c.Running() {
		cc, err := grpc.NewClient(c.Nodes[i].Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		st, err := cachev1.NewCacheClient(cc).Stats(t.Context(), &cachev1.StatsRequest{})
		cc.Close()
		if err != nil {
			t.Fatal(err)
		}
		sum += st.Forwarded
	}
	return sum
}

// TestClientRoutesDirectly: knowing only one seed, the client learns the
// map and sends writes and leader reads straight to each partition's
// leader, and replica reads to a replica: no node forwards anything. Both
// the pipelined and the unary path.
func TestClientRoutesDirectly(t *testing.T) {
	for _, unary := range []bool{false, true} {
		t.Run(fmt.Sprintf("unary=%v", unary), func(t *testing.T) {
			c, cl := clusterClient(t, 3, func(cfg *client.Config) {
				cfg.Seeds = cfg.Seeds[2:]
				cfg.Unary = unary
			})
			ctx := t.Context()
			before := forwarded(t, c)
			for i := range 100 {
				k := []byte(fmt.Sprintf("route-%d", i))
				w, err := cl.Put(ctx, k, k)
				if err != nil {
					t.Fatal(err)
				}
				for _, level := range []cachev1.Consistency{cachev1.Consistency_CONSISTENCY_LINEARIZABLE, cachev1.Consistency_CONSISTENCY_LEASE} {
					e, err := cl.Get(ctx, k, client.WithConsistency(level))
					if err != nil || e.Version != w.Version {
						t.Fatalf("%v read of %s after a put at %d: %+v, %v", level, k, w.Version, e, err)
					}
					if e.Meta.Role != cachev1.Role_ROLE_LEADER {
						t.Fatalf("%v read of %s served by a %v", level, k, e.Meta.Role)
					}
				}
				if _, err := cl.Get(ctx, k, client.WithConsistency(cachev1.Consistency_CONSISTENCY_EVENTUAL)); err != nil && !errors.Is(err, client.ErrNotFound) {
					t.Fatal(err)
				}
			}
			if got := forwarded(t, c) - before; got != 0 {
				t.Fatalf("nodes forwarded %d requests of a client that knows the map, want 0", got)
			}
		})
	}
}

// TestClientDurability: a write goes at the durability of WithDurability,
// else of Config.DefaultDurability, else of the nodes (SYNC here), and
// WriteMeta.Durability reports it; REPLICATED writes read back
// LINEARIZABLE. Pipelined and unary.
func TestClientDurability(t *testing.T) {
	c, pipelined := clusterClient(t, 3, nil)
	cfg := client.DefaultConfig()
	cfg.Seeds = []string{c.Nodes[1].Addr()}
	cfg.Unary = true
	cfg.DefaultDurability = client.DurabilityReplicated
	unary, err := client.New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unary.Close() })
	tests := []struct {
		name string
		cl   *client.Client
		opts []client.WriteOption
		want client.Durability
	}{
		{"pipelined, node default", pipelined, nil, client.DurabilitySync},
		{"pipelined, replicated", pipelined, []client.WriteOption{client.WithDurability(client.DurabilityReplicated)}, client.DurabilityReplicated},
		{"pipelined, sync", pipelined, []client.WriteOption{client.WithDurability(client.DurabilitySync)}, client.DurabilitySync},
		{"unary, config default", unary, nil, client.DurabilityReplicated},
		{"unary, option over config", unary, []client.WriteOption{client.WithDurability(client.DurabilitySync)}, client.DurabilitySync},
		{"unary, option back to the node's", unary, []client.WriteOption{client.WithDurability(client.DurabilityDefault)}, client.DurabilitySync},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.Context()
			for i := range 10 {
				k := []byte(fmt.Sprintf("%s-%d", tt.name, i))
				w, err := tt.cl.Put(ctx, k, k, tt.opts...)
				if err != nil {
					t.Fatal(err)
				}
				if w.Meta.Durability != tt.want {
					t.Fatalf("put %s: WriteMeta.Durability = %v, want %v", k, w.Meta.Durability, tt.want)
				}
				e, err := tt.cl.Get(ctx, k, client.WithConsistency(cachev1.Consistency_CONSISTENCY_LINEARIZABLE))
				if err != nil || e.Version != w.Version || string(e.Value) != string(k) {
					t.Fatalf("LINEARIZABLE read of %s after a put at %d: %+v, %v", k, w.Version, e, err)
				}
			}
			entries := []client.KeyValue{{Key: []byte(tt.name + "-a"), Value: []byte("a")}, {Key: []byte(tt.name + "-b"), Value: []byte("b")}}
			rs, err := tt.cl.MultiPut(ctx, entries, tt.opts...)
			if err != nil {
				t.Fatal(err)
			}
			for i, r := range rs {
				if r.Meta.Durability != tt.want {
					t.Fatalf("multi-put entry %d: WriteMeta.Durability = %v, want %v", i, r.Meta.Durability, tt.want)
				}
			}
		})
	}
	if _, err := pipelined.Put(t.Context(), []byte("k"), []byte("v"), client.WithDurability(7)); !errors.Is(err, client.ErrInvalidArgument) {
		t.Fatalf("put with durability 7: %v, want ErrInvalidArgument", err)
	}
}

// TestClientSessions: with SESSION reads the client passes each
// partition's newest token by itself, so reads that replicas serve still
// see the client's own writes, across many partitions.
func TestClientSessions(t *testing.T) {
	_, cl := clusterClient(t, 3, func(cfg *client.Config) {
		cfg.DefaultConsistency = cachev1.Consistency_CONSISTENCY_SESSION
	})
	ctx := t.Context()
	followers := 0
	for i := range 200 {
		k := []byte(fmt.Sprintf("session-%d", i%40))
		w, err := cl.Put(ctx, k, []byte(fmt.Sprint(i)))
		if err != nil {
			t.Fatal(err)
		}
		e, err := cl.Get(ctx, k)
		if err != nil || e.Version < w.Version || string(e.Value) != fmt.Sprint(i) {
			t.Fatalf("session read of %s after a put at %d: %+v, %v", k, w.Version, e, err)
		}
		if e.Meta.Role == cachev1.Role_ROLE_FOLLOWER {
			followers++
		}
	}
	t.Logf("%d of 200 session reads were served by followers", followers)
}

// TestClientMulti: MultiGet and MultiPut split by partition, in order.
func TestClientMulti(t *testing.T) {
	_, cl := clusterClient(t, 3, nil)
	ctx := t.Context()
	var kvs []client.KeyValue
	var keys [][]byte
	for i := range 100 {
		k := []byte(fmt.Sprintf("multi-%d", i))
		kvs = append(kvs, client.KeyValue{Key: k, Value: []byte(fmt.Sprint(i))})
		keys = append(keys, k)
	}
	keys = append(keys, []byte("multi-missing"))
	ws, err := cl.MultiPut(ctx, kvs)
	if err != nil || len(ws) != 100 {
		t.Fatalf("MultiPut: %d results, %v", len(ws), err)
	}
	partitions := map[uint32]bool{}
	for _, w := range ws {
		partitions[w.Meta.Partition] = true
	}
	rs, err := cl.MultiGet(ctx, keys)
	if err != nil || len(rs) != 101 {
		t.Fatalf("MultiGet: %d results, %v", len(rs), err)
	}
	for i, r := range rs[:100] {
		if !r.Found || string(r.Entry.Value) != fmt.Sprint(i) || r.Entry.Version != ws[i].Version {
			t.Fatalf("MultiGet result %d = %+v, want %d at %d", i, r, i, ws[i].Version)
		}
	}
	if rs[100].Found {
		t.Fatalf("MultiGet found the missing key: %+v", rs[100])
	}
	t.Logf("100 entries over %d partitions", len(partitions))
}

// TestClientUnderLeaderKills: callers write and read while the node that
// leads the most partitions is killed and restarted, again and again, and
// one node is cut off for a while. With a generous deadline, no call
// fails: every error was one a retry could hide. Every put is applied
// once: its value is at the version it was acknowledged with, and a
// retried put never shows up at a second version (checked from the
// answers and by reading every key back).
func TestClientUnderLeaderKills(t *testing.T) {
	c, cl := clusterClient(t, 3, nil)
	ctx, stop := context.WithCancel(t.Context())
	defer stop()

	const writers, readers = 6, 4
	load := startWriters(ctx, cl, "kill", writers)
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	for r := range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(r), 7))
			for ctx.Err() == nil {
				k := fmt.Sprintf("kill-%d-%d", rng.IntN(writers), rng.IntN(10))
				cctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				_, err := cl.Get(cctx, []byte(k), client.WithConsistency(cachev1.Consistency_CONSISTENCY_LINEARIZABLE))
				cancel()
				if err != nil && !errors.Is(err, client.ErrNotFound) {
					mu.Lock()
					errs = append(errs, fmt.Errorf("get %s: %w", k, err))
					mu.Unlock()
				}
			}
		}()
	}

	for round := range 3 {
		t.Logf("round %d: killed and restarted n%d", round, killRound(t, c, 700*time.Millisecond))
	}
	cut := leaderMost(t, c)
	c.Partition(cut)
	time.Sleep(2 * time.Second) // load while the old leader is cut off
	c.Heal()
	c.WaitConverged(30 * time.Second)
	time.Sleep(500 * time.Millisecond)
	stop()
	wg.Wait()
	acks, werrs := load.wait()

	for _, err := range append(errs, werrs...) {
		t.Error(err)
	}
	if len(acks) < 100 {
		t.Fatalf("only %d puts acknowledged", len(acks))
	}
	// Each acknowledged value is at one version: a put applied twice would
	// have been acknowledged at a version its retry did not get.
	seen := make(map[string]uint64)
	last := make(map[string]writeAck)
	for _, a := range acks {
		if v, ok := seen[a.value]; ok && v != a.version {
			t.Errorf("value %s acknowledged at versions %d and %d", a.value, v, a.version)
		}
		seen[a.value] = a.version
		if a.version > last[a.key].version {
			last[a.key] = a
		}
	}
	// The newest acknowledged put of each key is what the cluster holds,
	// unless a later put of that key was in flight when the load stopped.
	for k, a := range last {
		e, err := cl.Get(t.Context(), []byte(k), client.WithConsistency(cachev1.Consistency_CONSISTENCY_LINEARIZABLE))
		if err != nil {
			t.Fatalf("final read of %s: %v", k, err)
		}
		if e.Version < a.version {
			t.Errorf("%s is at version %d, below its acknowledged %d (%s)", k, e.Version, a.version, a.value)
		}
	}
	t.Logf("%d puts acknowledged, %d errors, through 3 leader kills and a partition; client counters %+v", len(acks), len(errs)+len(werrs), cl.Counters())
}

// writeAck is a put the cluster acknowledged.
type writeAck struct {
	key, value string
	version    uint64
}

// writeLoad is callers putting unique values, each call with a 20s
// deadline, until ctx ends.
type writeLoad struct {
	wg   sync.WaitGroup
	mu   sync.Mutex
	acks []writeAck
	errs []error
}

// startWriters starts n writers; writer w puts "w-i" under key
// prefix-w-(i mod 10).
func startWriters(ctx context.Context, cl *client.Client, prefix string, n int) *writeLoad {
	l := &writeLoad{}
	for w := range n {
		l.wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				k, v := fmt.Sprintf("%s-%d-%d", prefix, w, i%10), fmt.Sprintf("%d-%d", w, i)
				cctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				res, err := cl.Put(cctx, []byte(k), []byte(v))
				cancel()
				l.mu.Lock()
				if err != nil {
					l.errs = append(l.errs, fmt.Errorf("put %s=%s: %w", k, v, err))
				} else {
					l.acks = append(l.acks, writeAck{k, v, res.Version})
				}
				l.mu.Unlock()
			}
		})
	}
	return l
}

// wait waits for the writers (after their ctx ended) and returns what
// they saw.
func (l *writeLoad) wait() ([]writeAck, []error) {
	l.wg.Wait()
	return l.acks, l.errs
}

// killRound lets the load run for before, kills the node that leads the
// most partitions, lets the load run 1.5s without it, restarts it and
// waits for the cluster to converge. It returns the victim's index.
func killRound(t *testing.T, c *nodetest.Cluster, before time.Duration) int {
	t.Helper()
	time.Sleep(before) // load before the fault
	victim := leaderMost(t, c)
	c.Kill(victim)
	time.Sleep(1500 * time.Millisecond) // load while the node is down
	c.Restart(victim)
	c.WaitConverged(30 * time.Second)
	return victim
}

// leaderMost returns the index of the running node that leads the most
// partitions.
func leaderMost(t *testing.T, c *nodetest.Cluster) int {
	t.Helper()
	cc, err := grpc.NewClient(c.Nodes[c.Running()[0]].Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	topo, err := cachev1.NewCacheClient(cc).Topology(t.Context(), &cachev1.TopologyRequest{})
	if err != nil {
		t.Fatal(err)
	}
	count := make(map[string]int)
	for _, p := range topo.Partitions {
		count[p.Leader]++
	}
	best, bestN := c.Running()[0], -1
	for id, k := range count {
		if i := c.Index(id); i >= 0 && k > bestN {
			best, bestN = i, k
		}
	}
	return best
}

// TestClientWriteThroughOnce: write-through puts under leader kills reach
// the database once each: an audit trigger in PostgreSQL records every
// row version written, and each acknowledged value is there exactly once,
// at the version it was acknowledged with, although the client retried
// puts whose first attempt died with a node.
func TestClientWriteThroughOnce(t *testing.T) {
	pg := pgtest.Start(t)
	s, err := sqlstore.Open(t.Context(), pg.URL(), sqlstore.Options{CreateTable: true})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	db, err := sql.Open("pgx", pg.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range []string{
		`CREATE TABLE audit (seq bigserial PRIMARY KEY, key bytea NOT NULL, version bigint NOT NULL, value bytea)`,
		`CREATE FUNCTION audit_row() RETURNS trigger AS $$ BEGIN
			INSERT INTO audit (key, version, value) VALUES (NEW.key, NEW.version, NEW.value); RETURN NEW; END $$ LANGUAGE plpgsql`,
		`CREATE TRIGGER audit_rows AFTER INSERT OR UPDATE ON elcache_entries FOR EACH ROW EXECUTE FUNCTION audit_row()`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	c, cl := clusterClient(t, 3, func(cfg *client.Config) {
		cfg.DefaultWriteMode = cachev1.WriteMode_WRITE_MODE_WRITE_THROUGH
	}, func(_ int, cfg *node.Config) { cfg.Backend = pg.URL() })

	ctx, stop := context.WithCancel(t.Context())
	defer stop()
	load := startWriters(ctx, cl, "wt", 6)
	for range 2 {
		killRound(t, c, time.Second)
	}
	time.Sleep(500 * time.Millisecond)
	stop()
	acks, errs := load.wait()
	for _, err := range errs {
		t.Error(err)
	}
	acked := make(map[string]uint64) // value -> version
	for _, a := range acks {
		acked[a.value] = a.version
	}

	rows, err := db.Query(`SELECT version, value FROM audit ORDER BY seq`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	written := make(map[string][]uint64)
	for rows.Next() {
		var version int64
		var value []byte
		if err := rows.Scan(&version, &value); err != nil {
			t.Fatal(err)
		}
		written[string(value)] = append(written[string(value)], uint64(version))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	for v, versions := range written {
		if len(versions) != 1 {
			t.Errorf("value %s reached the database %d times, at versions %v", v, len(versions), versions)
		}
	}
	for v, version := range acked {
		if got := written[v]; len(got) != 1 || got[0] != version {
			t.Errorf("acknowledged value %s (version %d): the database saw versions %v", v, version, got)
		}
	}
	n := cl.Counters()
	t.Logf("%d write-through puts acknowledged, %d row versions written, through 2 leader kills; client counters %+v", len(acked), len(written), n)
	if n.Retries == 0 {
		t.Error("the client retried nothing: the kills did not test retries")
	}
}

// TestClientHedgesSlowReplica: the replica the client prefers starts to
// answer reads only after 2s.
// EVENTUAL reads through the client still answer fast: the slow replica
// is raced by another after HedgeAfter, and once found slow it is no
// longer asked first.
//
// HedgeAfter is 100ms, far below the slow replica's 2s and far above a
// healthy read: at 20ms, a loaded CI machine (make test runs packages in
// parallel under -race) stalled healthy reads past it and hedged 38 of 60.
func TestClientHedgesSlowReplica(t *testing.T) {
	c, cl := clusterClient(t, 3, func(cfg *client.Config) { cfg.HedgeAfter = 100 * time.Millisecond })
	ctx := t.Context()
	var keys [][]byte
	for i := range 20 {
		k := []byte(fmt.Sprintf("hedge-%d", i))
		if _, err := cl.Put(ctx, k, k); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	eventual := client.WithConsistency(cachev1.Consistency_CONSISTENCY_EVENTUAL)
	for _, k := range keys {
		for { // until every replica has applied the puts
			if _, err := cl.Get(ctx, k, eventual); err == nil {
				break
			}
			time.Sleep(time.Millisecond)
		}
	}
	// Slow down the replica the client now prefers.
	e, err := cl.Get(ctx, keys[0], eventual)
	if err != nil {
		t.Fatal(err)
	}
	slow := e.Meta.ServedBy
	var i int
	if _, err := fmt.Sscanf(slow, "n%d", &i); err != nil {
		t.Fatalf("served by %q: %v", slow, err)
	}
	c.Hooks[i].SetReadDelay(2 * time.Second)
	for round := range 3 {
		for _, k := range keys {
			start := time.Now()
			e, err := cl.Get(ctx, k, eventual)
			if took := time.Since(start); err != nil || took > time.Second {
				t.Fatalf("round %d: eventual read of %s with a slow replica: %v after %v", round, k, err, took)
			}
			if e.Meta.ServedBy == slow {
				t.Fatalf("round %d: %s was served by the slow replica", round, k)
			}
		}
	}
	hedges := cl.Counters().Hedges
	if hedges == 0 {
		t.Fatal("no read was hedged, though one replica is slow")
	}
	for _, k := range keys {
		if _, err := cl.Get(ctx, k, eventual); err != nil {
			t.Fatal(err)
		}
	}
	// One read in 100 tries the second nearest replica, to notice a
	// recovery: at most one more hedge in these 20 reads.
	if more := cl.Counters().Hedges - hedges; more > 1 {
		t.Errorf("%d more reads of 20 were hedged after the slow replica was found", more)
	}
	t.Logf("%d of %d reads hedged", hedges, 3*len(keys))
}

// TestClientToken: the client sends its token; the node's answers map to
// ErrUnauthenticated and ErrPermissionDenied.
func TestClientToken(t *testing.T) {
	tokens := []node.Token{
		{Name: "reader", Role: node.RoleRead, Secret: "reader-secret-0123456789"},
		{Name: "writer", Role: node.RoleWrite, Secret: "writer-secret-0123456789"},
		{Name: "nodes", Role: node.RolePeer, Secret: "peer-secret-0123456789abc"},
	}
	n := nodetest.Start(t, func(c *node.Config) { c.Tokens = tokens })
	connect := func(token string) *client.Client {
		cfg := client.DefaultConfig()
		cfg.Seeds = []string{n.Addr()}
		cfg.Token, cfg.AllowPlaintextToken = token, true
		cfg.MaxAttempts = 1
		c, err := client.New(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	ctx := context.Background()
	if _, err := connect(tokens[1].Secret).Put(ctx, []byte("k"), []byte("v")); err != nil {
		t.Fatalf("put with a write token: %v", err)
	}
	reader := connect(tokens[0].Secret)
	if e, err := reader.Get(ctx, []byte("k")); err != nil || string(e.Value) != "v" {
		t.Errorf("get with a read token: %v, %v", e, err)
	}
	if _, err := reader.Put(ctx, []byte("k"), []byte("w")); !errors.Is(err, client.ErrPermissionDenied) {
		t.Errorf("put with a read token: %v, want ErrPermissionDenied", err)
	}
	cfg := client.DefaultConfig()
	cfg.Seeds = []string{n.Addr()}
	cfg.Token, cfg.AllowPlaintextToken = "wrong-token-0123456789", true
	if c, err := client.New(ctx, cfg); err == nil {
		defer c.Close()
		_, err = c.Get(ctx, []byte("k"))
		if !errors.Is(err, client.ErrUnauthenticated) {
			t.Errorf("get with an unknown token: %v, want ErrUnauthenticated", err)
		}
	} else if !errors.Is(err, client.ErrUnauthenticated) && !strings.Contains(err.Error(), "Unauthenticated") {
		t.Errorf("connect with an unknown token: %v", err)
	}
	cfg.AllowPlaintextToken = false
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "Token needs TLS") {
		t.Errorf("token over plaintext without AllowPlaintextToken: %v", err)
	}
}

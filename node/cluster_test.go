package node_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/elcache/elcache/node"
	"github.com/elcache/elcache/node/nodetest"
	cachev1 "github.com/elcache/elcache/proto/cache/v1"
	"github.com/elcache/elcache/ring"
)

// TestClusterForms: three nodes form a cluster; any node accepts any
// request and forwards it to the partition's leader; every partition has
// three replicas holding the data.
func TestClusterForms(t *testing.T) {
	c := nodetest.StartCluster(t, 3)
	clients := make([]cachev1.CacheClient, 3)
	for i, n := range c.Nodes {
		clients[i] = dial(t, n.Addr())
	}
	const keys = 100
	for i := 0; i < keys; i++ {
		k := fmt.Sprintf("key-%d", i)
		if _, err := clients[i%3].Put(opCtx(t), &cachev1.PutRequest{Key: []byte(k), Value: []byte(k)}); err != nil {
			t.Fatalf("put %s via n%d: %v", k, i%3, err)
		}
	}
	for i := 0; i < keys; i++ {
		k := fmt.Sprintf("key-%d", i)
		for j, cl := range clients {
			got, err := cl.Get(opCtx(t), &cachev1.GetRequest{Key: []byte(k)})
			if err != nil {
				t.Fatalf("get %s via n%d: %v", k, j, err)
			}
			if !got.Found || string(got.Entry.Value) != k {
				t.Fatalf("get %s via n%d = %v", k, j, got)
			}
			if got.Meta.Leader.GetNodeId() == "" {
				t.Fatalf("get %s via n%d: no leader hint in %v", k, j, got.Meta)
			}
		}
	}
	// Every node has every partition (3 nodes, 3 replicas) and, once the
	// followers applied, every key.
	waitFor(t, 10*time.Second, "every replica holds every key", func() bool {
		for _, cl := range clients {
			st, err := cl.Stats(opCtx(t), &cachev1.StatsRequest{})
			if err != nil || st.Keys != keys || len(st.Partitions) != 8 {
				return false
			}
		}
		return true
	})
	// Batches span partitions led by different nodes: each part is
	// forwarded to its leader and the answers come back in order.
	mp := &cachev1.MultiPutRequest{}
	mg := &cachev1.MultiGetRequest{}
	for i := 0; i < 50; i++ {
		k := []byte(fmt.Sprintf("batch-%d", i))
		mp.Entries = append(mp.Entries, &cachev1.KeyValue{Key: k, Value: k})
		mg.Keys = append(mg.Keys, k)
	}
	if _, err := clients[1].MultiPut(opCtx(t), mp); err != nil {
		t.Fatal(err)
	}
	got, err := clients[2].MultiGet(opCtx(t), mg)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range got.Results {
		if !r.Found || string(r.Entry.Value) != string(mg.Keys[i]) {
			t.Fatalf("MultiGet result %d = %v, want %s", i, r, mg.Keys[i])
		}
	}
	scanned := 0
	for cursor := []byte(nil); ; {
		page, err := clients[0].Scan(opCtx(t), &cachev1.ScanRequest{Cursor: cursor, PageSize: 7, KeysOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		scanned += len(page.Entries)
		if cursor = page.NextCursor; len(cursor) == 0 {
			break
		}
	}
	if scanned != keys+50 {
		t.Fatalf("Scan through n0 saw %d keys, want %d", scanned, keys+50)
	}
	topo, err := clients[1].Topology(opCtx(t), &cachev1.TopologyRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(topo.Partitions) != 8 || len(topo.Nodes) != 3 || topo.MapVersion == 0 {
		t.Fatalf("topology = %v", topo)
	}
	for _, p := range topo.Partitions {
		if len(p.Replicas) != 3 || p.Leader == "" {
			t.Fatalf("partition route %v", p)
		}
	}
}

// opCtx returns a context for one request.
func opCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestClusterFormsWithOneBootstrapper: only one node is told how many to
// expect; the others only join. The cluster forms whichever node has the
// lowest id.
func TestClusterFormsWithOneBootstrapper(t *testing.T) {
	for _, boot := range []int{1, 2} {
		c := nodetest.StartCluster(t, 3, func(i int, cfg *node.Config) {
			if i == boot {
				return
			}
			cfg.BootstrapExpect = 0
			if i == 0 {
				// Join-only (the others join it): a seed nobody answers.
				cfg.Join = []string{"127.0.0.1:1"}
			}
		})
		if _, err := dial(t, c.Nodes[2].Addr()).Put(opCtx(t), &cachev1.PutRequest{Key: []byte("k"), Value: []byte("v")}); err != nil {
			t.Fatal(err)
		}
	}
}

func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting until %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// clusterClient sends requests to the running nodes of a cluster, moving
// to the next node when one fails, as a simple client would.
type clusterClient struct {
	t *testing.T
	c *nodetest.Cluster
}

func (cc clusterClient) client(i int) cachev1.CacheClient {
	return dial(cc.t, cc.c.Nodes[i].Addr())
}

// put writes key=value through node i (or the next running one on error)
// until it succeeds or timeout passes; it returns how long it took.
func (cc clusterClient) put(clients map[int]cachev1.CacheClient, start int, key, value string, timeout time.Duration) (time.Duration, error) {
	began := time.Now()
	var err error
	for attempt := 0; time.Since(began) < timeout; attempt++ {
		running := cc.c.Running()
		i := running[(start+attempt)%len(running)]
		cl := clients[i]
		if cl == nil {
			cl = cc.client(i)
			clients[i] = cl
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err = cl.Put(ctx, &cachev1.PutRequest{Key: []byte(key), Value: []byte(value)})
		cancel()
		if err == nil {
			return time.Since(began), nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(began), err
}

// leaderMost returns the index of the node leading the most partitions.
func leaderMost(t *testing.T, c *nodetest.Cluster) int {
	topo, err := dial(t, c.Nodes[c.Running()[0]].Addr()).Topology(opCtx(t), &cachev1.TopologyRequest{})
	if err != nil {
		t.Fatal(err)
	}
	count := make(map[string]int)
	for _, p := range topo.Partitions {
		count[p.Leader]++
	}
	best, bestN := -1, -1
	for id, k := range count {
		if i := c.Index(id); i >= 0 && k > bestN {
			best, bestN = i, k
		}
	}
	return best
}

// keyPerPartition returns one key for each of the count partitions.
func keyPerPartition(t *testing.T, count uint32, prefix string) []string {
	pr, err := ring.NewPartitioner(count)
	if err != nil {
		t.Fatal(err)
	}
	keys := make([]string, count)
	found := 0
	for i := 0; found < int(count); i++ {
		k := fmt.Sprintf("%s-%d", prefix, i)
		if p := pr.Partition([]byte(k)); keys[p] == "" {
			keys[p] = k
			found++
		}
	}
	return keys
}

// checkAll reads every key linearizably through every running node.
func checkAll(t *testing.T, c *nodetest.Cluster, acked map[string]string) {
	t.Helper()
	for _, i := range c.Running() {
		cl := dial(t, c.Nodes[i].Addr())
		for k, v := range acked {
			var got *cachev1.GetResponse
			var err error
			// Unavailable (a leader hand-over just then) is retried, as a
			// client would; the value must be there.
			for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(20 * time.Millisecond) {
				got, err = cl.Get(opCtx(t), &cachev1.GetRequest{Key: []byte(k),
					Options: &cachev1.ReadOptions{Consistency: cachev1.Consistency_CONSISTENCY_LINEARIZABLE}})
				if status.Code(err) != codes.Unavailable || time.Now().After(deadline) {
					break
				}
			}
			if err != nil {
				t.Fatalf("get %s via n%d: %v", k, i, err)
			}
			if !got.Found || string(got.Entry.Value) != v {
				t.Fatalf("get %s via n%d = %v, want %q: an acknowledged write is lost", k, i, got, v)
			}
		}
	}
}

// TestClusterFailover kills the node leading the most partitions: every
// acknowledged key stays readable from the survivors, and writes resume on
// every partition. The restarted node catches up and the map returns to
// three replicas everywhere.
func TestClusterFailover(t *testing.T) {
	c := nodetest.StartCluster(t, 3)
	cc := clusterClient{t: t, c: c}
	clients := make(map[int]cachev1.CacheClient)
	acked := make(map[string]string)
	for i := 0; i < 300; i++ {
		k := fmt.Sprintf("k%d", i)
		if _, err := cc.put(clients, i, k, k, 5*time.Second); err != nil {
			t.Fatal(err)
		}
		acked[k] = k
	}
	victim := leaderMost(t, c)
	versionBefore := c.Nodes[victim].MapVersion()
	killed := time.Now()
	c.Kill(victim)
	delete(clients, victim)
	var worst time.Duration
	for _, k := range keyPerPartition(t, 8, "after-kill") {
		if _, err := cc.put(clients, 0, k, "v", 10*time.Second); err != nil {
			t.Fatalf("partition of %s did not accept writes after the kill: %v", k, err)
		}
		acked[k] = "v"
		worst = max(worst, time.Since(killed))
	}
	t.Logf("failover: writes resumed on every partition %v after the kill (election timeout 500ms)", worst.Round(time.Millisecond))
	checkAll(t, c, acked)

	c.Restart(victim)
	c.WaitConverged(30 * time.Second)
	if v := c.Nodes[victim].MapVersion(); v != versionBefore {
		t.Errorf("map version changed from %d to %d although the node came back within the grace period", versionBefore, v)
	}
	waitFor(t, 10*time.Second, "the restarted node holds every key", func() bool {
		st, err := dial(t, c.Nodes[victim].Addr()).Stats(opCtx(t), &cachev1.StatsRequest{})
		return err == nil && st.Keys == uint64(len(acked))
	})
	checkAll(t, c, acked)
}

// preloadCluster writes count keys of size-byte values through MultiPut.
func preloadCluster(t *testing.T, c *nodetest.Cluster, count, size int) {
	t.Helper()
	cl := dial(t, c.Nodes[c.Running()[0]].Addr())
	value := make([]byte, size)
	for i := 0; i < count; i += 500 {
		req := &cachev1.MultiPutRequest{}
		for j := i; j < min(i+500, count); j++ {
			req.Entries = append(req.Entries, &cachev1.KeyValue{Key: []byte(fmt.Sprintf("pre-%d", j)), Value: value})
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		_, err := cl.MultiPut(ctx, req)
		cancel()
		if err != nil {
			t.Fatalf("preload: %v", err)
		}
	}
}

// loadStats is what a background writer saw.
type loadStats struct {
	ops, failed int
	// longest is the longest time one write took to succeed, retries
	// included.
	longest time.Duration
	acked   map[string]string
	// errs counts the failed attempts by error message.
	errs map[string]int
}

// runLoad writes unique keys through the running nodes until stop closes.
// A failed attempt is counted and retried on the next node.
func runLoad(t *testing.T, c *nodetest.Cluster, stop <-chan struct{}) <-chan loadStats {
	out := make(chan loadStats, 1)
	clients := make(map[int]cachev1.CacheClient)
	addrs := make(map[int]string)
	for _, i := range c.Running() {
		addrs[i] = c.Nodes[i].Addr()
		clients[i] = dial(t, addrs[i])
	}
	go func() {
		st := loadStats{acked: make(map[string]string), errs: make(map[string]int)}
		for seq := 0; ; seq++ {
			select {
			case <-stop:
				out <- st
				return
			default:
			}
			k := fmt.Sprintf("load-%d", seq)
			began := time.Now()
			for attempt := 0; ; attempt++ {
				ids := make([]int, 0, len(clients))
				for i := range clients {
					ids = append(ids, i)
				}
				slices.Sort(ids)
				i := ids[(seq+attempt)%len(ids)]
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				_, err := clients[i].Put(ctx, &cachev1.PutRequest{Key: []byte(k), Value: []byte(k)})
				cancel()
				st.ops++
				if err == nil {
					break
				}
				st.failed++
				st.errs[status.Convert(err).Message()]++
				if time.Since(began) > 20*time.Second {
					t.Errorf("write %s failed for 20s: %v", k, err)
					out <- st
					return
				}
				time.Sleep(5 * time.Millisecond)
			}
			st.longest = max(st.longest, time.Since(began))
			st.acked[k] = k
		}
	}()
	return out
}

// TestClusterRebalance adds a 4th and a 5th node under load: partitions
// move to them and they serve the moved data. Then one node is drained
// under load with zero failed requests, and leaves.
func TestClusterRebalance(t *testing.T) {
	c := nodetest.StartCluster(t, 3)
	// Data to move: ELCACHE_TEST_REBALANCE_MB (default 2) MiB of 1 KiB
	// values, written before the joins.
	mb := 2
	if v, err := strconv.Atoi(os.Getenv("ELCACHE_TEST_REBALANCE_MB")); err == nil && v > 0 {
		mb = v
	}
	preloadCluster(t, c, mb<<10, 1<<10)
	stop := make(chan struct{})
	done := runLoad(t, c, stop)
	time.Sleep(200 * time.Millisecond)
	joined := time.Now()
	n3, n4 := c.Add(), c.Add()
	c.WaitConverged(120 * time.Second)
	t.Logf("rebalance of %d MiB onto 2 new nodes took %v", mb, time.Since(joined).Round(time.Millisecond))
	close(stop)
	st := <-done
	t.Logf("during joins: %d attempts, %d failed, longest write %v", st.ops, st.failed, st.longest.Round(time.Millisecond))
	if st.longest > 2*time.Second {
		t.Errorf("a write took %v to succeed during the joins; want under one election (plus retries)", st.longest)
	}
	topo, err := dial(t, c.Nodes[0].Addr()).Topology(opCtx(t), &cachev1.TopologyRequest{})
	if err != nil {
		t.Fatal(err)
	}
	held := make(map[string]int)
	for _, p := range topo.Partitions {
		if len(p.Replicas) != 3 {
			t.Fatalf("partition %d has replicas %v, want 3", p.Partition, p.Replicas)
		}
		for _, id := range p.Replicas {
			held[id]++
		}
	}
	for _, i := range []int{n3, n4} {
		if held[c.Nodes[i].ID()] == 0 {
			t.Fatalf("new node n%d holds no replica: %v", i, held)
		}
		// The moved data is there, and the new node serves it: a key of a
		// partition it leads, read through it, is answered by it.
		stats, err := dial(t, c.Nodes[i].Addr()).Stats(opCtx(t), &cachev1.StatsRequest{})
		if err != nil || stats.Keys == 0 {
			t.Fatalf("n%d stats = %v, %v; want the moved keys", i, stats, err)
		}
		// It serves the moved data itself: keys of the partitions it
		// holds, read through it at EVENTUAL, come from its own replica.
		mine := make(map[uint32]bool)
		for _, p := range topo.Partitions {
			if slices.Contains(p.Replicas, c.Nodes[i].ID()) {
				mine[p.Partition] = true
			}
		}
		pr, _ := ring.NewPartitioner(8)
		checked := 0
		for j := 0; j < mb<<10 && checked < 50; j++ {
			k := fmt.Sprintf("pre-%d", j)
			if !mine[pr.Partition([]byte(k))] {
				continue
			}
			got, err := dial(t, c.Nodes[i].Addr()).Get(opCtx(t), &cachev1.GetRequest{Key: []byte(k),
				Options: &cachev1.ReadOptions{Consistency: cachev1.Consistency_CONSISTENCY_EVENTUAL}})
			if err != nil || !got.Found || len(got.Entry.Value) != 1<<10 || got.Meta.ServedBy != c.Configs[i].NodeName {
				t.Fatalf("moved key %s read through n%d: %v, %v; want its value served by n%d", k, i, got, err, i)
			}
			checked++
		}
		if checked == 0 {
			t.Fatalf("n%d holds partitions %v but none of the preloaded keys", i, mine)
		}
	}
	t.Logf("replicas per node after joins: %v", held)
	checkAll(t, c, st.acked)

	// Drain n1 under load: zero failed requests.
	stop = make(chan struct{})
	cl := dial(t, c.Nodes[0].Addr())
	admin := cachev1.NewAdminClient(dialConn(t, c.Nodes[0].Addr()))
	drainee := c.Nodes[1].ID()
	c2 := *c
	c2.Nodes = slices.Clone(c.Nodes)
	c2.Nodes[1] = nil // the load does not go through the draining node
	done = runLoad(t, &c2, stop)
	started := time.Now()
	if _, err := admin.Drain(opCtx(t), &cachev1.DrainRequest{Node: "n1"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "the drained node holds no replica", func() bool {
		topo, err := cl.Topology(opCtx(t), &cachev1.TopologyRequest{})
		if err != nil {
			return false
		}
		for _, p := range topo.Partitions {
			if slices.Contains(p.Replicas, drainee) || p.Leader == drainee {
				return false
			}
		}
		return true
	})
	c.WaitConverged(60 * time.Second)
	t.Logf("drain took %v", time.Since(started).Round(time.Millisecond))
	c.Stop(1)
	close(stop)
	st = <-done
	t.Logf("during drain: %d attempts, %d failed, longest write %v", st.ops, st.failed, st.longest.Round(time.Millisecond))
	if st.failed != 0 {
		t.Errorf("%d requests failed during the drain; want 0: %v", st.failed, st.errs)
	}
	checkAll(t, c, st.acked)
}

// TestClusterMinority cuts one node off: writes through it fail fast with
// Unavailable, never hang past the deadline, and say they did not run (a
// leader hint, so that clients may send them again); the majority keeps
// working; after healing the node catches up.
func TestClusterMinority(t *testing.T) {
	c := nodetest.StartCluster(t, 3)
	c.Partition(0)
	minority := dial(t, c.Nodes[0].Addr())
	majority := dial(t, c.Nodes[1].Addr())
	// Wait until the majority has taken over every partition.
	keys := keyPerPartition(t, 8, "minority")
	for _, k := range keys {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		for {
			if _, err := majority.Put(ctx, &cachev1.PutRequest{Key: []byte(k), Value: []byte("majority")}); err == nil {
				break
			} else if ctx.Err() != nil {
				t.Fatalf("majority side cannot write %s: %v", k, err)
			}
			time.Sleep(10 * time.Millisecond)
		}
		cancel()
	}
	for _, k := range keys {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		began := time.Now()
		_, err := minority.Put(ctx, &cachev1.PutRequest{Key: []byte(k), Value: []byte("minority")})
		took := time.Since(began)
		cancel()
		if status.Code(err) != codes.Unavailable {
			t.Fatalf("write %s on the minority side: err = %v, want Unavailable", k, err)
		}
		if !hasLeaderHint(err) {
			t.Errorf("write %s on the minority side: %v carries no leader hint; a client cannot tell it did not run", k, err)
		}
		if took > time.Second {
			t.Errorf("write %s on the minority side took %v to fail; want fast", k, took)
		}
	}
	c.Heal()
	c.WaitConverged(30 * time.Second)
	acked := make(map[string]string)
	for _, k := range keys {
		acked[k] = "majority"
	}
	checkAll(t, c, acked)
}

// hasLeaderHint tells whether a gRPC error carries a LeaderHint detail.
func hasLeaderHint(err error) bool {
	for _, d := range status.Convert(err).Details() {
		if _, ok := d.(*cachev1.LeaderHint); ok {
			return true
		}
	}
	return false
}

func dialConn(t testing.TB, addr string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// TestClusterReplaceAfterGrace: a node that stays down past the failure
// grace has its replicas placed on the other nodes, and gets them back
// when it returns.
func TestClusterReplaceAfterGrace(t *testing.T) {
	c := nodetest.StartCluster(t, 4, func(_ int, cfg *node.Config) { cfg.Cluster.FailureGrace = 2 * time.Second })
	cc := clusterClient{t: t, c: c}
	clients := make(map[int]cachev1.CacheClient)
	acked := make(map[string]string)
	for i := 0; i < 100; i++ {
		k := fmt.Sprintf("g%d", i)
		if _, err := cc.put(clients, i, k, k, 5*time.Second); err != nil {
			t.Fatal(err)
		}
		acked[k] = k
	}
	victim := 3
	id := c.Nodes[victim].ID()
	before := c.Nodes[0].MapVersion()
	c.Kill(victim)
	delete(clients, victim)
	// The map drops the node after the grace, and the groups follow.
	waitFor(t, 30*time.Second, "the dead node's replicas are placed elsewhere", func() bool {
		topo, err := dial(t, c.Nodes[0].Addr()).Topology(opCtx(t), &cachev1.TopologyRequest{})
		if err != nil || topo.MapVersion == before {
			return false
		}
		for _, p := range topo.Partitions {
			if slices.Contains(p.Replicas, id) || len(p.Replicas) != 3 {
				return false
			}
		}
		return true
	})
	c.WaitConverged(30 * time.Second)
	checkAll(t, c, acked)

	c.Restart(victim)
	c.WaitConverged(60 * time.Second)
	waitFor(t, 30*time.Second, "the returning node holds replicas again", func() bool {
		st, err := dial(t, c.Nodes[victim].Addr()).Stats(opCtx(t), &cachev1.StatsRequest{})
		return err == nil && len(st.Partitions) > 0 && st.Keys > 0
	})
	checkAll(t, c, acked)
}

// TestClusterRollingRestart stops and restarts every node in turn,
// gracefully, under load: no acknowledged write is lost, and the longest
// write (retries included) stays short because leaders hand over instead
// of timing out.
func TestClusterRollingRestart(t *testing.T) {
	c := nodetest.StartCluster(t, 3)
	for i := range c.Nodes {
		stop := make(chan struct{})
		others := *c
		others.Nodes = slices.Clone(c.Nodes)
		others.Nodes[i] = nil
		done := runLoad(t, &others, stop)
		time.Sleep(100 * time.Millisecond)
		c.Stop(i)
		c.Restart(i)
		c.WaitConverged(60 * time.Second)
		close(stop)
		st := <-done
		t.Logf("restart of n%d: %d attempts, %d failed, longest write %v; errors: %v", i, st.ops, st.failed, st.longest.Round(time.Millisecond), st.errs)
		checkAll(t, c, st.acked)
	}
}

// TestClusterWatchTopology: the stream sends the map at once and again
// when a node joins and placement changes.
func TestClusterWatchTopology(t *testing.T) {
	c := nodetest.StartCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	stream, err := dial(t, c.Nodes[1].Addr()).WatchTopology(ctx, &cachev1.TopologyRequest{})
	if err != nil {
		t.Fatal(err)
	}
	first, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if len(first.Nodes) != 3 || len(first.Partitions) != 8 || first.MapVersion == 0 {
		t.Fatalf("first topology = %v", first)
	}
	added := c.Add()
	id := c.Nodes[added].ID()
	for {
		next, err := stream.Recv()
		if err != nil {
			t.Fatalf("watch: %v", err)
		}
		if next.MapVersion < first.MapVersion {
			t.Fatalf("map version went back from %d to %d", first.MapVersion, next.MapVersion)
		}
		placed := false
		for _, p := range next.Partitions {
			placed = placed || slices.Contains(p.Replicas, id)
		}
		if len(next.Nodes) == 4 && placed && next.MapVersion > first.MapVersion {
			return
		}
	}
}

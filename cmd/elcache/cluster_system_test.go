package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	cachev1 "github.com/elcache/elcache/proto/cache/v1"
	"github.com/elcache/elcache/ring"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// The cluster system tests run three real elcache processes on 127.0.0.1.

// clusterPartitions is 16, not the default 64, to keep the tests quick on
// CI: every partition is a Raft group with a replica on every node, and
// under -race on two cores each group adds to start-up, elections and
// catch-up.
const clusterPartitions = 16

// clusterSize is the number of nodes; with the default replication factor
// of 3 every node holds a replica of every partition.
const clusterSize = 3

// raftFlags returns the Raft timeouts of the cluster tests, tuned down
// from the defaults so that a failover takes well under a second. On two
// loaded cores with -race, every partition of a SIGKILLed leader was
// writable again after 0.5-0.6s with 200ms, 0.7-0.9s with 300ms and about
// 3.9s with the defaults. Under heavy load 200ms lets a follower call an
// election now and then while its leader is alive, which costs a few
// retried writes and nothing else. The lease must not exceed the
// heartbeat timeout; the commit timeout bounds how long a follower waits
// to learn a commit index when no entry comes.
//
// Set ELCACHE_SYSTEM_DEFAULT_TIMEOUTS=1 to run with the server's defaults
// (1.5s heartbeat and election, 1s lease, 250ms commit) and measure
// failover as deployed.
func raftFlags() []string {
	if os.Getenv("ELCACHE_SYSTEM_DEFAULT_TIMEOUTS") != "" {
		return nil
	}
	return []string{"--raft-heartbeat-timeout", "200ms", "--raft-election-timeout", "200ms",
		"--raft-lease-timeout", "100ms", "--raft-commit-timeout", "20ms"}
}

// cluster is a set of elcache processes forming one cluster, with a client
// connection to each.
type cluster struct {
	t      *testing.T
	procs  []*proc
	caches []cachev1.CacheClient
	admins []cachev1.AdminClient
	health []healthpb.HealthClient
	ids    []string // node ids by index, from Stats
	// partitions is the cluster's number of partitions; ring maps keys
	// to them.
	partitions int
	ring       ring.Partitioner
}

// startCluster starts clusterSize processes with clusterPartitions
// partitions, the tests' Raft timeouts (raftFlags) and the extra flags,
// and waits until the cluster has converged.
func startCluster(t *testing.T, extra ...string) *cluster {
	t.Helper()
	return startClusterWith(t, clusterPartitions, append(raftFlags(), extra...)...)
}

// startClusterWith starts clusterSize processes with the given number of
// partitions and flags, and waits until the cluster has converged; without
// Raft timeouts among the flags, the nodes run the server's defaults.
// Every node gets --bootstrap-expect and the gossip addresses of the
// others as --join, so that any of them can be restarted with the same
// flags.
func startClusterWith(t *testing.T, partitions int, flags ...string) *cluster {
	t.Helper()
	return startClusterSpec(t, clusterSpec{partitions: partitions, flags: flags})
}

// clusterSpec describes a cluster for startClusterSpec.
type clusterSpec struct {
	partitions int
	// flags are every node's flags, nodeFlags (when set) node i's own.
	flags     []string
	nodeFlags func(i int) []string
	// build returns the server binary; nil: buildServer.
	build func() (string, error)
}

// startClusterSpec starts the cluster of spec as startClusterWith does.
func startClusterSpec(t *testing.T, spec clusterSpec) *cluster {
	t.Helper()
	partitions, flags := spec.partitions, spec.flags
	pr, err := ring.NewPartitioner(uint32(partitions))
	if err != nil {
		t.Fatal(err)
	}
	c := &cluster{t: t, partitions: partitions, ring: pr}
	var grpcAddrs, gossipAddrs []string
	for range clusterSize {
		grpcAddrs = append(grpcAddrs, freeAddr(t))
		gossipAddrs = append(gossipAddrs, freeAddr(t))
	}
	for i := range clusterSize {
		name := fmt.Sprintf("n%d", i+1)
		others := slices.Delete(slices.Clone(gossipAddrs), i, i+1)
		args := append([]string{"--node-name", name, "--data-dir", t.TempDir(),
			"--grpc-addr", grpcAddrs[i], "--gossip-addr", gossipAddrs[i],
			"--bootstrap-expect", fmt.Sprint(clusterSize), "--join", strings.Join(others, ","),
			"--partitions", fmt.Sprint(partitions), "--replication-factor", "3",
			// Long enough that a killed node keeps its replicas: the test
			// restarts it and wants it to catch up, not be replaced.
			"--failure-grace", "60s"}, flags...)
		if spec.nodeFlags != nil {
			args = append(args, spec.nodeFlags(i)...)
		}
		p := newProc(t, name, grpcAddrs[i], args)
		if spec.build != nil {
			p.build = spec.build
		}
		conn := dial(t, grpcAddrs[i])
		c.procs = append(c.procs, p)
		c.caches = append(c.caches, cachev1.NewCacheClient(conn))
		c.admins = append(c.admins, cachev1.NewAdminClient(conn))
		c.health = append(c.health, healthpb.NewHealthClient(conn))
	}
	start := time.Now()
	for _, p := range c.procs {
		p.start()
	}
	for i, p := range c.procs {
		p.waitServing(45 * time.Second)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		st, err := c.caches[i].Stats(ctx, &cachev1.StatsRequest{})
		cancel()
		if err != nil {
			t.Fatalf("%s stats: %v", p.name, err)
		}
		c.ids = append(c.ids, st.NodeId)
	}
	c.waitConverged(30 * time.Second)
	t.Logf("cluster of %d nodes, %d partitions, converged %v after start", clusterSize, partitions, time.Since(start).Round(time.Millisecond))
	return c
}

// name returns the name of the node with id, or the id.
func (c *cluster) name(id string) string {
	if i := slices.Index(c.ids, id); i >= 0 {
		return c.procs[i].name
	}
	return id
}

// up returns the indexes of the running nodes.
func (c *cluster) up() []int {
	var out []int
	for i, p := range c.procs {
		if p.running() {
			out = append(out, i)
		}
	}
	return out
}

// waitConverged waits until every running node serves and they all see the
// same settled cluster; see notConverged.
func (c *cluster) waitConverged(timeout time.Duration) {
	c.t.Helper()
	c.waitUntil("cluster not converged", timeout, c.notConverged)
}

// waitUntil polls not until it returns "", and fails the test with what
// and not's last answer at the timeout.
func (c *cluster) waitUntil(what string, timeout time.Duration, not func() string) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		why := not()
		if why == "" {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("%s after %v: %s", what, timeout, why)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// notConverged says why the running nodes do not (yet) agree on a settled
// cluster, or returns "". Settled means: each running node reports SERVING;
// its Topology lists every node as active, every partition with all
// clusterSize replicas and a leader that is a running node, the same
// leader and map version on every node; and its Members shows every
// running node alive in gossip.
func (c *cluster) notConverged() string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	up := c.up()
	var first *cachev1.Topology
	var firstName string
	for _, i := range up {
		name := c.procs[i].name
		h, err := c.health[i].Check(ctx, &healthpb.HealthCheckRequest{})
		if err != nil || h.Status != healthpb.HealthCheckResponse_SERVING {
			return fmt.Sprintf("%s: health %v, %v", name, h.GetStatus(), err)
		}
		topo, err := c.caches[i].Topology(ctx, &cachev1.TopologyRequest{})
		if err != nil {
			return fmt.Sprintf("%s: topology: %v", name, err)
		}
		if len(topo.Nodes) != clusterSize {
			return fmt.Sprintf("%s: topology has %d nodes", name, len(topo.Nodes))
		}
		for _, n := range topo.Nodes {
			if n.State != "active" {
				return fmt.Sprintf("%s: node %s is %q", name, n.Name, n.State)
			}
		}
		if len(topo.Partitions) != c.partitions {
			return fmt.Sprintf("%s: topology has %d partitions", name, len(topo.Partitions))
		}
		for _, pr := range topo.Partitions {
			if len(pr.Replicas) != clusterSize {
				return fmt.Sprintf("%s: partition %d has replicas %v", name, pr.Partition, pr.Replicas)
			}
			if pr.Leader == "" {
				return fmt.Sprintf("%s: partition %d has no leader", name, pr.Partition)
			}
			if l := slices.Index(c.ids, pr.Leader); l < 0 || !c.procs[l].running() {
				return fmt.Sprintf("%s: partition %d led by %s, which is down", name, pr.Partition, c.name(pr.Leader))
			}
			if first != nil && first.Partitions[pr.Partition].Leader != pr.Leader {
				return fmt.Sprintf("partition %d: %s sees leader %s, %s sees %s", pr.Partition,
					firstName, c.name(first.Partitions[pr.Partition].Leader), name, c.name(pr.Leader))
			}
		}
		if first != nil && first.MapVersion != topo.MapVersion {
			return fmt.Sprintf("map version %d on %s, %d on %s", first.MapVersion, firstName, topo.MapVersion, name)
		}
		if first == nil {
			first, firstName = topo, name
		}
		ms, err := c.admins[i].Members(ctx, &cachev1.MembersRequest{})
		if err != nil {
			return fmt.Sprintf("%s: members: %v", name, err)
		}
		for _, j := range up {
			k := slices.IndexFunc(ms.Members, func(m *cachev1.Member) bool { return m.Id == c.ids[j] })
			if k < 0 || ms.Members[k].GossipState != "alive" {
				return fmt.Sprintf("%s does not see %s alive in gossip", name, c.procs[j].name)
			}
		}
	}
	return ""
}

// waitPreferredLeaders waits until every running node sees each partition
// led by its preferred leader (the first of its replicas): after
// convergence, leaderships still move there, and a write the old leader
// receives meanwhile may fail.
func (c *cluster) waitPreferredLeaders(timeout time.Duration) {
	c.t.Helper()
	c.waitUntil("leaders not on their preferred nodes", timeout, c.notPreferred)
}

// notPreferred names a partition that a running node sees led by another
// node than its preferred leader, or returns "".
func (c *cluster) notPreferred() string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, i := range c.up() {
		topo, err := c.caches[i].Topology(ctx, &cachev1.TopologyRequest{})
		if err != nil {
			return fmt.Sprintf("%s: topology: %v", c.procs[i].name, err)
		}
		for _, pr := range topo.Partitions {
			if len(pr.Replicas) == 0 || pr.Leader != pr.Replicas[0] {
				return fmt.Sprintf("%s sees partition %d led by %s, preferred %v", c.procs[i].name, pr.Partition,
					c.name(pr.Leader), pr.Replicas)
			}
		}
	}
	return ""
}

// leaders returns, from the Topology of node i, the node id leading each
// partition.
func (c *cluster) leaders(i int) []string {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	topo, err := c.caches[i].Topology(ctx, &cachev1.TopologyRequest{})
	if err != nil {
		c.t.Fatal(err)
	}
	out := make([]string, len(topo.Partitions))
	for _, pr := range topo.Partitions {
		out[pr.Partition] = pr.Leader
	}
	return out
}

// retryable reports whether a client would send a request again, to the
// next node: the cluster could not serve it now (an election, a node
// going down) or it timed out. Every write of these tests is a Put of a
// fixed value, so a retry of a write that did commit is harmless.
//
// Canceled while ctx is live is retried too: a node that is shutting
// down answers the requests it was forwarding with Canceled ("the client
// connection is closing", its own peer connection) instead of
// Unavailable. The tests log those answers rather than fail on them.
func retryable(ctx context.Context, err error) bool {
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded:
		return true
	case codes.Canceled:
		return ctx.Err() == nil
	}
	return false
}

// retryBackoff is the pause between two attempts of a request.
const retryBackoff = 20 * time.Millisecond

// put writes key=value the way a client would: through the nodes of via in
// turn, starting at via[first%len(via)], each attempt with a 2s deadline,
// and again after a short pause while the answer is retryable. It returns
// the failed attempts and the error that ended the retries (ctx's end, or
// one that is not retryable).
func (c *cluster) put(ctx context.Context, via []int, first int, key, value string) (failed []error, err error) {
	for i := first; ; i++ {
		n := via[i%len(via)]
		actx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := c.caches[n].Put(actx, &cachev1.PutRequest{Key: []byte(key), Value: []byte(value)})
		cancel()
		if err == nil {
			return failed, nil
		}
		if !retryable(ctx, err) {
			return failed, fmt.Errorf("put %s via %s: %w", key, c.procs[n].name, err)
		}
		failed = append(failed, fmt.Errorf("via %s: %w", c.procs[n].name, err))
		select {
		case <-time.After(retryBackoff):
		case <-ctx.Done():
			return failed, fmt.Errorf("put %s: gave up after %d attempts: %w", key, len(failed), errors.Join(ctx.Err(), err))
		}
	}
}

// get reads key linearizably through node i, retrying while the answer is
// Unavailable. It returns the response and the number of retries.
func (c *cluster) get(ctx context.Context, i int, key string) (*cachev1.GetResponse, int, error) {
	for retries := 0; ; retries++ {
		actx, cancel := context.WithTimeout(ctx, 2*time.Second)
		r, err := c.caches[i].Get(actx, &cachev1.GetRequest{Key: []byte(key),
			Options: &cachev1.ReadOptions{Consistency: cachev1.Consistency_CONSISTENCY_LINEARIZABLE}})
		cancel()
		if err == nil || !retryable(ctx, err) {
			return r, retries, err
		}
		select {
		case <-time.After(retryBackoff):
		case <-ctx.Done():
			return nil, retries, err
		}
	}
}

// putAll writes every key of want through all running nodes, with workers
// in parallel, and fails the test if one cannot be written.
func (c *cluster) putAll(want map[string]string) (failedAttempts int) {
	c.t.Helper()
	var mu sync.Mutex
	var errs []error
	up := c.up()
	eachKey(want, 8, func(w int, key string) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		failed, err := c.put(ctx, up, w, key, want[key])
		cancel()
		mu.Lock()
		failedAttempts += len(failed)
		if err != nil {
			errs = append(errs, err)
		}
		mu.Unlock()
	})
	if len(errs) > 0 {
		c.t.Fatalf("%d of %d writes failed: %v", len(errs), len(want), errors.Join(errs[:min(5, len(errs))]...))
	}
	return failedAttempts
}

// eachKey calls fn for every key of want from workers goroutines (w is the
// worker's number) and returns when all are done.
func eachKey(want map[string]string, workers int, fn func(w int, key string)) {
	keys := make(chan string)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for key := range keys {
				fn(w, key)
			}
		}()
	}
	for key := range want {
		keys <- key
	}
	close(keys)
	wg.Wait()
}

// checkReadable reads every key of want linearizably through node i and
// fails the test on an error, a miss or a wrong value.
func (c *cluster) checkReadable(i int, want map[string]string) {
	c.t.Helper()
	start := time.Now()
	var mu sync.Mutex
	var problems []string
	retries := 0
	var slowest time.Duration
	eachKey(want, 8, func(_ int, key string) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		began := time.Now()
		r, n, err := c.get(ctx, i, key)
		took := time.Since(began)
		cancel()
		var problem string
		switch {
		case err != nil:
			problem = fmt.Sprintf("%s: %v", key, err)
		case !r.Found:
			problem = fmt.Sprintf("%s: not found (served by %s)", key, r.Meta.GetServedBy())
		case string(r.Entry.Value) != want[key]:
			problem = fmt.Sprintf("%s: value %q, want %q", key, r.Entry.Value, want[key])
		case r.Meta.GetConsistency() != cachev1.Consistency_CONSISTENCY_LINEARIZABLE:
			problem = fmt.Sprintf("%s: served at %v", key, r.Meta.GetConsistency())
		}
		mu.Lock()
		retries += n
		slowest = max(slowest, took)
		if problem != "" {
			problems = append(problems, problem)
		}
		mu.Unlock()
	})
	if len(problems) > 0 {
		sort.Strings(problems)
		c.t.Fatalf("%d of %d acknowledged keys not readable through %s: %s", len(problems), len(want),
			c.procs[i].name, strings.Join(problems[:min(10, len(problems))], "; "))
	}
	c.t.Logf("%s: %d keys read linearizably in %v (slowest read %v, %d retries)", c.procs[i].name, len(want),
		time.Since(start).Round(time.Millisecond), slowest.Round(time.Millisecond), retries)
}

// scanAll pages through every key through node i, linearizably, and
// returns key -> value; a key seen twice fails the test.
func (c *cluster) scanAll(i int) map[string]string {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out := map[string]string{}
	var cursor []byte
	for {
		r, err := c.caches[i].Scan(ctx, &cachev1.ScanRequest{Cursor: cursor, PageSize: 1000,
			Options: &cachev1.ReadOptions{Consistency: cachev1.Consistency_CONSISTENCY_LINEARIZABLE}})
		if err != nil {
			c.t.Fatalf("scan through %s: %v", c.procs[i].name, err)
		}
		for _, e := range r.Entries {
			if _, dup := out[string(e.Key)]; dup {
				c.t.Fatalf("scan through %s returned %s twice", c.procs[i].name, e.Key)
			}
			out[string(e.Key)] = string(e.Value)
		}
		if len(r.NextCursor) == 0 {
			return out
		}
		cursor = r.NextCursor
	}
}

// waitKeys waits until node i's Stats count want keys, that is until its
// replicas have applied every write.
func (c *cluster) waitKeys(i int, want int, timeout time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		st, err := c.caches[i].Stats(ctx, &cachev1.StatsRequest{})
		cancel()
		if err == nil && st.Keys == uint64(want) {
			return
		}
		if time.Now().After(deadline) {
			var keys uint64
			if st != nil {
				keys = st.Keys
			}
			c.t.Fatalf("%s: Stats shows %d keys after %v, want %d (err %v)", c.procs[i].name, keys, timeout, want, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// logWarnings logs the warnings and errors in the nodes' logs, each message
// once per node with a count, so that a passing run still shows what
// looked wrong.
func (c *cluster) logWarnings() {
	for _, p := range c.procs {
		counts := map[string]int{}
		var firsts []string // the first line of each message
		for _, line := range strings.Split(p.logText(), "\n") {
			if !strings.Contains(line, "level=WARN") && !strings.Contains(line, "level=ERROR") {
				continue
			}
			if counts[logMsg(line)] == 0 {
				firsts = append(firsts, line)
			}
			counts[logMsg(line)]++
		}
		for _, line := range firsts {
			c.t.Logf("%s log, %dx: %s", p.name, counts[logMsg(line)], line)
		}
	}
}

// logMsg returns the gist of a slog text line: its message up to the
// first '=' (raft's messages carry their details as k=v), else the line.
func logMsg(line string) string {
	_, rest, ok := strings.Cut(line, " msg=")
	if !ok {
		return line
	}
	msg, _, _ := strings.Cut(rest, "=")
	return msg
}

// keyIn returns a key that maps to partition pid.
func keyIn(pr ring.Partitioner, prefix string, pid uint32) string {
	for i := 0; ; i++ {
		key := fmt.Sprintf("%s-%d-%d", prefix, pid, i)
		if pr.Partition([]byte(key)) == pid {
			return key
		}
	}
}

// A SIGKILLed partition leader loses no acknowledged write: the survivors
// take over every partition within a second or so, serve everything
// linearizably, and the restarted node catches up.
func TestClusterSystemKillLeader(t *testing.T) {
	c := startCluster(t)
	defer c.logWarnings()

	// 1,000 keys through all nodes.
	acked := map[string]string{}
	for i := range 1000 {
		key := fmt.Sprintf("key-%04d", i)
		acked[key] = "value-" + key
	}
	start := time.Now()
	failed := c.putAll(acked)
	t.Logf("%d keys written in %v (%d attempts retried)", len(acked), time.Since(start).Round(time.Millisecond), failed)

	// Kill the node leading the most partitions.
	leaders := c.leaders(0)
	victim, led := 0, 0
	for i, id := range c.ids {
		n := 0
		for _, l := range leaders {
			if l == id {
				n++
			}
		}
		if n > led {
			victim, led = i, n
		}
	}
	var survivors []int
	for i := range c.procs {
		if i != victim {
			survivors = append(survivors, i)
		}
	}
	vp := c.procs[victim]

	// For each partition, write a key of it through the survivors until a
	// write succeeds; failover ends at the last partition's first success.
	took := make([]time.Duration, clusterPartitions)
	var errs, retried []error
	var mu sync.Mutex
	var wg sync.WaitGroup
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	killed := time.Now()
	vp.cmd.Process.Kill()
	for pid := range uint32(clusterPartitions) {
		key := keyIn(c.ring, "failover", pid)
		value := "value-" + key
		acked[key] = value
		wg.Add(1)
		go func() {
			defer wg.Done()
			f, err := c.put(ctx, survivors, int(pid), key, value)
			d := time.Since(killed)
			mu.Lock()
			defer mu.Unlock()
			took[pid] = d
			retried = append(retried, f...)
			if err != nil {
				errs = append(errs, fmt.Errorf("partition %d: %w", pid, err))
			}
		}()
	}
	<-vp.exited
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("writes after the kill failed: %v", errors.Join(errs...))
	}
	var ofVictim, others []time.Duration
	for pid, d := range took {
		if leaders[pid] == c.ids[victim] {
			ofVictim = append(ofVictim, d)
		} else {
			others = append(others, d)
		}
	}
	slices.Sort(ofVictim)
	slices.Sort(others)
	failover := slices.Max(took)
	t.Logf("failover: killed %s (leader of %d/%d partitions, raft flags %v); every partition writable %v after the kill "+
		"(its partitions: first %v, median %v, last %v; the others' last %v)",
		vp.name, led, clusterPartitions, raftFlags(), failover.Round(time.Millisecond),
		ofVictim[0].Round(time.Millisecond), ofVictim[len(ofVictim)/2].Round(time.Millisecond),
		ofVictim[len(ofVictim)-1].Round(time.Millisecond), slices.Max(append(others, 0)).Round(time.Millisecond))
	t.Logf("%d attempts failed during the failover", len(retried))
	for _, err := range retried[:min(3, len(retried))] {
		t.Logf("  failed attempt: %v", err)
	}
	// The bound only catches hangs; the figure above is the measurement.
	if failover > 10*time.Second {
		t.Errorf("failover took %v", failover)
	}

	for _, i := range survivors {
		c.checkReadable(i, acked)
	}

	// The killed node comes back on its data directory and catches up.
	restarted := time.Now()
	vp.start()
	vp.waitServing(30 * time.Second)
	serving := time.Since(restarted)
	c.waitConverged(30 * time.Second)
	converged := time.Since(restarted)
	c.waitKeys(victim, len(acked), 30*time.Second)
	t.Logf("%s restarted: serving after %v, cluster converged after %v, all %d keys applied after %v",
		vp.name, serving.Round(time.Millisecond), converged.Round(time.Millisecond), len(acked),
		time.Since(restarted).Round(time.Millisecond))
	c.checkReadable(victim, acked)
	for _, i := range survivors {
		c.waitKeys(i, len(acked), 10*time.Second)
	}

	got := c.scanAll(survivors[0])
	var missing, extra, wrong []string
	for k, v := range acked {
		switch gv, ok := got[k]; {
		case !ok:
			missing = append(missing, k)
		case gv != v:
			wrong = append(wrong, k)
		}
	}
	for k := range got {
		if _, ok := acked[k]; !ok {
			extra = append(extra, k)
		}
	}
	if len(missing)+len(extra)+len(wrong) > 0 {
		t.Fatalf("scan through %s: %d keys, want %d; missing %v, unexpected %v, wrong value %v",
			c.procs[survivors[0]].name, len(got), len(acked), missing, extra, wrong)
	}
}

// A rolling restart (SIGTERM, restart, wait until converged; one node at a
// time) under a steady writer loses no acknowledged write.
func TestClusterSystemRollingRestart(t *testing.T) {
	c := startCluster(t)
	defer c.logWarnings()
	all := []int{0, 1, 2}

	var (
		mu        sync.Mutex
		acked     = map[string]string{}
		attempted = map[string]bool{}
		failed    []error
		slowest   time.Duration
		writeErr  error
	)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ctx.Err() == nil; i++ {
			key := fmt.Sprintf("roll-%06d", i)
			value := "value-" + key
			mu.Lock()
			attempted[key] = true
			mu.Unlock()
			start := time.Now()
			wctx, wcancel := context.WithTimeout(ctx, 20*time.Second)
			f, err := c.put(wctx, all, i, key, value)
			wcancel()
			d := time.Since(start)
			mu.Lock()
			failed = append(failed, f...)
			if err == nil {
				acked[key] = value
				slowest = max(slowest, d)
			} else if ctx.Err() == nil {
				writeErr = err
			}
			mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	progress := func() int {
		mu.Lock()
		defer mu.Unlock()
		if writeErr != nil {
			t.Fatalf("writer stopped: %v", writeErr)
		}
		return len(acked)
	}

	for _, p := range c.procs {
		before := progress()
		stopped := time.Now()
		if err := p.stop(syscall.SIGTERM, 30*time.Second); err != nil {
			t.Fatalf("%s after SIGTERM: %v", p.name, err)
		}
		exit := time.Since(stopped)
		if !strings.Contains(p.logText(), "node stopped") {
			t.Fatalf("%s: no clean stop in its log", p.name)
		}
		if strings.Contains(p.logText(), "leadership hand-off timed out") {
			t.Logf("%s: leadership hand-off timed out on SIGTERM", p.name)
		}
		exited := progress()
		restarted := time.Now()
		p.start()
		p.waitServing(30 * time.Second)
		serving := time.Since(restarted)
		back := progress()
		c.waitConverged(30 * time.Second)
		t.Logf("%s: exited %v after SIGTERM, serving %v after its restart, converged after %v; writes acknowledged: %d while it stopped, %d while it was down, %d until converged",
			p.name, exit.Round(time.Millisecond), serving.Round(time.Millisecond), time.Since(restarted).Round(time.Millisecond),
			exited-before, back-exited, progress()-back)
	}
	cancel()
	<-done
	progress()

	// Attempts sent to the stopped node fail to connect; the others are
	// answers of running nodes.
	var refused int
	var answered []error
	byCode := map[codes.Code]int{}
	for _, err := range failed {
		if strings.Contains(err.Error(), "Error while dialing") {
			refused++
		} else {
			answered = append(answered, err)
			byCode[status.Code(err)]++
		}
	}
	t.Logf("writer: %d writes acknowledged; slowest write %v including retries; %d failed attempts: %d could not connect (the stopped node), %d answered with an error %v",
		len(acked), slowest.Round(time.Millisecond), len(failed), refused, len(answered), byCode)
	for _, err := range answered[:min(5, len(answered))] {
		t.Logf("  failed attempt: %v", err)
	}
	for i := range c.procs {
		c.checkReadable(i, acked)
	}
	got := c.scanAll(0)
	for k := range acked {
		if _, ok := got[k]; !ok {
			t.Errorf("acknowledged %s missing from the scan", k)
		}
	}
	for k := range got {
		if !attempted[k] {
			t.Errorf("scan returned %s, which was never written", k)
		}
	}
}

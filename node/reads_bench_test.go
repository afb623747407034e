package node_test

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/elcache/elcache/node"
	"github.com/elcache/elcache/node/nodetest"
	cachev1 "github.com/elcache/elcache/proto/cache/v1"
	"google.golang.org/protobuf/types/known/durationpb"
)

// Read-level benchmarks: a 3-node cluster in this process with production
// Raft timings (node.DefaultConfig().Raft), rf = 3, and clients that route
// as a smart client does: LINEARIZABLE and LEASE to the key's partition
// leader, the other levels to a random replica. Besides ns/op they report
// ops/s, p50-µs and p99-µs of every read, follower-frac (share of reads a
// follower served) and fwd-frac (share of reads served by another node
// than the one asked, that is forwarded). Compare runs with benchstat.
//
// On a small machine the clients and the three nodes share the cores, so
// the 50-client figures are bounded by CPU as much as by the read path.

const (
	readNodes      = 3
	readKeys       = 1000
	readMaxClients = 50
	readTimeout    = 5 * time.Second
)

// readClientCounts are the concurrency levels of every read level.
var readClientCounts = []int{1, readMaxClients}

// readBench is what the read-level sub-benchmarks share: one cluster, its
// preloaded keys, and the clients' connections.
type readBench struct {
	c    *nodetest.Cluster
	keys [][]byte
	// part[i] is the partition of keys[i], as the preload reported it.
	part []uint32
	// tokens holds each partition's session token after the preload.
	tokens []*cachev1.SessionToken
	// conns[k][i] is client k's connection to node i.
	conns [][]cachev1.CacheClient
}

// BenchmarkReadLevels reads preloaded keys at every read level, from 1 and
// from 50 concurrent clients. The cluster starts once, for all of them.
func BenchmarkReadLevels(b *testing.B) {
	rb := newReadBench(b)
	levels := []struct {
		name     string
		toLeader bool
		opts     *cachev1.ReadOptions
	}{
		{"linearizable", true, &cachev1.ReadOptions{Consistency: cachev1.Consistency_CONSISTENCY_LINEARIZABLE}},
		{"lease", true, &cachev1.ReadOptions{Consistency: cachev1.Consistency_CONSISTENCY_LEASE}},
		{"bounded", false, &cachev1.ReadOptions{Consistency: cachev1.Consistency_CONSISTENCY_BOUNDED,
			MaxStaleness: durationpb.New(time.Second)}},
		{"session", false, &cachev1.ReadOptions{Consistency: cachev1.Consistency_CONSISTENCY_SESSION,
			SessionTokens: rb.tokens}},
		{"eventual", false, &cachev1.ReadOptions{Consistency: cachev1.Consistency_CONSISTENCY_EVENTUAL}},
	}
	for _, l := range levels {
		b.Run(l.name, func(b *testing.B) {
			for _, n := range readClientCounts {
				b.Run(fmt.Sprintf("clients=%d", n), func(b *testing.B) { rb.run(b, n, l.toLeader, l.opts) })
			}
		})
	}
}

// newReadBench starts the cluster, preloads readKeys keys, and dials
// every node from every client.
func newReadBench(b *testing.B) *readBench {
	b.Helper()
	c := nodetest.StartCluster(b, readNodes, func(_ int, cfg *node.Config) { cfg.Raft = node.DefaultConfig().Raft })
	// Shutdown is not measured: halt the nodes (after the clients'
	// connections close) rather than wait, with production timeouts, for
	// each graceful leadership hand-off.
	b.Cleanup(func() {
		for _, i := range c.Running() {
			c.Kill(i)
		}
	})
	rb := &readBench{c: c, conns: make([][]cachev1.CacheClient, readMaxClients)}
	for k := range rb.conns {
		for _, n := range c.Nodes {
			rb.conns[k] = append(rb.conns[k], dial(b, n.Addr()))
		}
	}
	rb.preload(b)
	rb.warm(b)
	return rb
}

// preload writes the keys in one MultiPut and keeps, from the results,
// each key's partition and each partition's latest session token.
func (rb *readBench) preload(b *testing.B) {
	b.Helper()
	entries := make([]*cachev1.KeyValue, readKeys)
	for i := range entries {
		rb.keys = append(rb.keys, benchKey(i))
		entries[i] = &cachev1.KeyValue{Key: rb.keys[i], Value: benchValue}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := rb.conns[0][0].MultiPut(ctx, &cachev1.MultiPutRequest{Entries: entries})
	if err != nil {
		b.Fatalf("preload: %v", err)
	}
	latest := make(map[uint32]*cachev1.SessionToken)
	for _, r := range resp.Results {
		t := r.GetMeta().GetSessionToken()
		if t == nil {
			b.Fatalf("preload: a write came back without a session token: %v", r)
		}
		rb.part = append(rb.part, t.Partition)
		if old := latest[t.Partition]; old == nil || t.Index > old.Index {
			latest[t.Partition] = t
		}
	}
	for _, pid := range slices.Sorted(maps.Keys(latest)) {
		rb.tokens = append(rb.tokens, latest[pid])
	}
}

// warm opens every connection and waits until every replica has applied
// the preload: a SESSION read with the preload's tokens of one key per
// partition, on every node, from every client.
func (rb *readBench) warm(b *testing.B) {
	b.Helper()
	first := make(map[uint32]int)
	for i, pid := range rb.part {
		if _, ok := first[pid]; !ok {
			first[pid] = i
		}
	}
	opts := &cachev1.ReadOptions{Consistency: cachev1.Consistency_CONSISTENCY_SESSION, SessionTokens: rb.tokens}
	for _, conns := range rb.conns {
		for n, c := range conns {
			for _, i := range first {
				ctx, cancel := context.WithTimeout(context.Background(), readTimeout)
				resp, err := c.Get(ctx, &cachev1.GetRequest{Key: rb.keys[i], Options: opts})
				cancel()
				if err != nil || !resp.Found {
					b.Fatalf("warm-up read of %s on n%d: %v, %v", rb.keys[i], n, resp, err)
				}
			}
		}
	}
}

// leaders returns, for each partition, the index of the node that leads
// it, as node 0's Topology reports.
func (rb *readBench) leaders(b *testing.B) map[uint32]int {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), readTimeout)
	defer cancel()
	t, err := rb.conns[0][0].Topology(ctx, &cachev1.TopologyRequest{})
	if err != nil {
		b.Fatalf("topology: %v", err)
	}
	out := make(map[uint32]int)
	for _, r := range t.Partitions {
		i := rb.c.Index(r.Leader)
		if i < 0 {
			b.Fatalf("topology: partition %d has no known leader (%q)", r.Partition, r.Leader)
		}
		out[r.Partition] = i
	}
	return out
}

// readStats is what one client measured.
type readStats struct {
	lat       []time.Duration
	followers int
	forwarded int
	err       error
}

// run splits b.N random-key reads over clients goroutines, each with its
// own connections, and reports throughput, latency percentiles and where
// the reads were served.
func (rb *readBench) run(b *testing.B, clients int, toLeader bool, opts *cachev1.ReadOptions) {
	var leader map[uint32]int
	if toLeader {
		leader = rb.leaders(b)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stats := make([]readStats, clients)
	var wg sync.WaitGroup
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for k := range clients {
		ops := b.N / clients
		if k < b.N%clients {
			ops++
		}
		wg.Go(func() {
			stats[k] = rb.client(ctx, k, ops, leader, opts)
			if stats[k].err != nil {
				cancel()
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()

	var lat []time.Duration
	followers, forwarded := 0, 0
	for _, s := range stats {
		if s.err != nil {
			b.Fatal(s.err)
		}
		lat = append(lat, s.lat...)
		followers += s.followers
		forwarded += s.forwarded
	}
	slices.Sort(lat)
	b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "ops/s")
	b.ReportMetric(micros(percentile(lat, 0.50)), "p50-µs")
	b.ReportMetric(micros(percentile(lat, 0.99)), "p99-µs")
	b.ReportMetric(float64(followers)/float64(len(lat)), "follower-frac")
	b.ReportMetric(float64(forwarded)/float64(len(lat)), "fwd-frac")
}

// client k reads ops random keys. With a leader map it sends each read to
// the key's partition leader, otherwise to a random node.
func (rb *readBench) client(ctx context.Context, k, ops int, leader map[uint32]int, opts *cachev1.ReadOptions) readStats {
	s := readStats{lat: make([]time.Duration, 0, ops)}
	rng := rand.New(rand.NewPCG(uint64(k), uint64(ops)))
	for range ops {
		i := rng.IntN(len(rb.keys))
		n := rng.IntN(len(rb.conns[k]))
		if leader != nil {
			n = leader[rb.part[i]]
		}
		octx, cancel := context.WithTimeout(ctx, readTimeout)
		start := time.Now()
		resp, err := rb.conns[k][n].Get(octx, &cachev1.GetRequest{Key: rb.keys[i], Options: opts})
		s.lat = append(s.lat, time.Since(start))
		cancel()
		switch {
		case err != nil:
			s.err = fmt.Errorf("client %d: get %s from n%d: %w", k, rb.keys[i], n, err)
		case !resp.Found:
			s.err = fmt.Errorf("client %d: get %s from n%d: not found (%v)", k, rb.keys[i], n, resp.Meta)
		case !bytes.Equal(resp.Entry.GetValue(), benchValue):
			s.err = fmt.Errorf("client %d: get %s from n%d: value %q", k, rb.keys[i], n, resp.Entry.GetValue())
		}
		if s.err != nil {
			return s
		}
		if resp.Meta.GetRole() == cachev1.Role_ROLE_FOLLOWER {
			s.followers++
		}
		if resp.Meta.GetServedBy() != rb.c.Configs[n].NodeName {
			s.forwarded++
		}
	}
	return s
}

// percentile returns the nearest-rank q-quantile of sorted.
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

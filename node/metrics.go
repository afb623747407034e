package node

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/sony/gobreaker/v2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"

	"github.com/elcache/elcache/internal/gossip"
	cachev1 "github.com/elcache/elcache/proto/cache/v1"
)

// Prometheus metrics (docs/operations.md "Metrics"). Request metrics are counted as
// requests finish; everything else is read from the node's state when
// Prometheus scrapes, so an idle node costs nothing.

// metrics are the request metrics a node keeps.
type metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec   // op, level
	latency  *prometheus.HistogramVec // op, level
	errors   *prometheus.CounterVec   // op, code
}

func newMetrics(n *Node) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "elcache_requests_total",
			Help: "Client requests this node answered (pipelined calls included), by operation and read level (writes: \"write\").",
		}, []string{"op", "level"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "elcache_request_duration_seconds",
			Help:    "Time to answer a client request, by operation and read level.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"op", "level"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "elcache_request_errors_total",
			Help: "Client requests that failed, by operation and gRPC code.",
		}, []string{"op", "code"}),
	}
	m.reg.MustRegister(m.requests, m.latency, m.errors, &stateCollector{n: n},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// observe records one finished request.
func (m *metrics) observe(op, level string, start time.Time, err error) {
	m.requests.WithLabelValues(op, level).Inc()
	m.latency.WithLabelValues(op, level).Observe(time.Since(start).Seconds())
	if err != nil {
		m.errors.WithLabelValues(op, status.Code(toStatus(err)).String()).Inc()
	}
}

// requestLabels names a request's operation and level for the metrics.
func requestLabels(req any, defaultLevel cachev1.Consistency) (op, level string) {
	lvl := func(o *cachev1.ReadOptions) string {
		c := o.GetConsistency()
		if c == cachev1.Consistency_CONSISTENCY_UNSPECIFIED {
			c = defaultLevel
		}
		return strings.ToLower(strings.TrimPrefix(c.String(), "CONSISTENCY_"))
	}
	switch r := req.(type) {
	case *cachev1.GetRequest:
		return "get", lvl(r.GetOptions())
	case *cachev1.MultiGetRequest:
		return "multi_get", lvl(r.GetOptions())
	case *cachev1.ScanRequest:
		return "scan", lvl(r.GetOptions())
	case *cachev1.PutRequest:
		return "put", "write"
	case *cachev1.DeleteRequest:
		return "delete", "write"
	case *cachev1.CompareAndSetRequest:
		return "compare_and_set", "write"
	case *cachev1.MultiPutRequest:
		return "multi_put", "write"
	}
	return "", ""
}

// isWrite reports whether req is a write (needs the write role).
func isWrite(req any) bool {
	_, level := requestLabels(req, cachev1.Consistency_CONSISTENCY_UNSPECIFIED)
	return level == "write"
}

// unaryMetrics counts the Cache service's data requests; the Pipeline
// stream counts its calls itself (cacheServer.call).
func (n *Node) unaryMetrics(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if n.metrics == nil || !strings.HasPrefix(info.FullMethod, "/"+cachev1.Cache_ServiceDesc.ServiceName+"/") {
		return handler(ctx, req)
	}
	op, level := requestLabels(req, n.check.defaultLevel)
	if op == "" {
		return handler(ctx, req)
	}
	start := time.Now()
	resp, err := handler(ctx, req)
	n.metrics.observe(op, level, start, err)
	return resp, err
}

// checkListenAddr checks an HTTP listen address: host:port, host optional.
func checkListenAddr(s string) error {
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		return err
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("bad port %q", port)
	}
	return nil
}

// startMetrics serves /metrics on Config.MetricsAddr, when it is set.
func (n *Node) startMetrics() error {
	if n.cfg.MetricsAddr == "" {
		return nil
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(n.metrics.reg, promhttp.HandlerOpts{ErrorLog: slogPrinter{n}}))
	var err error
	n.metricsHTTP, n.metricsAddr, err = n.serveHTTP("metrics", n.cfg.MetricsAddr, mux)
	return err
}

// MetricsAddr returns the address /metrics is served on, or "" when
// Config.MetricsAddr is not set.
func (n *Node) MetricsAddr() string { return n.metricsAddr }

type slogPrinter struct{ n *Node }

func (p slogPrinter) Println(v ...any) { p.n.log.Warn("metrics", "err", fmt.Sprint(v...)) }

// stateCollector reads the node's state at scrape time.
type stateCollector struct{ n *Node }

var (
	descRaftState = prometheus.NewDesc("elcache_raft_state",
		"Raft state of this node's replica of a partition: 0 follower, 1 candidate, 2 leader, 3 shutdown.", []string{"partition"}, nil)
	descApplyLag = prometheus.NewDesc("elcache_raft_apply_lag_entries",
		"Log entries committed but not yet applied by this replica.", []string{"partition"}, nil)
	descLeaderChanges = prometheus.NewDesc("elcache_raft_leader_changes_total",
		"Leader changes this replica observed.", []string{"partition"}, nil)
	descPartKeys = prometheus.NewDesc("elcache_partition_keys",
		"Live keys in this replica of a partition.", []string{"partition"}, nil)
	descPartBytes = prometheus.NewDesc("elcache_partition_bytes",
		"Live entry bytes in this replica of a partition.", []string{"partition"}, nil)
	descDirty = prometheus.NewDesc("elcache_writeback_backlog_keys",
		"Write-back entries not yet in the database, on the replicas this node hosts.", nil, nil)
	descRefused = prometheus.NewDesc("elcache_writeback_refused_keys",
		"Write-back entries the database refused.", nil, nil)
	descFlushLag = prometheus.NewDesc("elcache_writeback_flush_lag_seconds",
		"Age of the oldest write-back entry not yet in the database.", nil, nil)
	descFlushed = prometheus.NewDesc("elcache_writeback_flushed_rows_total",
		"Rows the write-back flusher wrote to the database.", nil, nil)
	descLoads = prometheus.NewDesc("elcache_refill_loads_total",
		"Database loads started by cache misses.", nil, nil)
	descCoalesced = prometheus.NewDesc("elcache_refill_coalesced_total",
		"Cache misses that waited for a database load already under way instead of starting one.", nil, nil)
	descRefills = prometheus.NewDesc("elcache_refills_total",
		"Cache misses answered from the database.", nil, nil)
	descBreaker = prometheus.NewDesc("elcache_backend_breaker_state",
		"The database circuit breaker: 0 closed, 1 half-open, 2 open (absent without a database).", nil, nil)
	descMembers = prometheus.NewDesc("elcache_members",
		"Cluster members as this node's gossip sees them, by state.", []string{"state"}, nil)
	descEvictions = prometheus.NewDesc("elcache_evictions_total",
		"Entries evicted to stay within capacity, on the replicas this node hosts.", nil, nil)
	descExpirations = prometheus.NewDesc("elcache_expirations_total",
		"Entries removed when their TTL ran out, on the replicas this node hosts.", nil, nil)
	descCapacity = prometheus.NewDesc("elcache_capacity_bytes",
		"The node's budget of live entry bytes (--capacity).", nil, nil)
	descUsed = prometheus.NewDesc("elcache_used_bytes",
		"Live entry bytes on the replicas this node hosts.", nil, nil)
	descDisk = prometheus.NewDesc("elcache_disk_bytes",
		"Bytes the node's database takes on disk.", nil, nil)
	descOps = prometheus.NewDesc("elcache_cache_operations_total",
		"Cache reads and writes served by this node's replicas, by result.", []string{"result"}, nil)
	descForwarded = prometheus.NewDesc("elcache_forwarded_total",
		"Requests this node forwarded to the partition's leader.", nil, nil)
)

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRaftState, descApplyLag, descLeaderChanges, descPartKeys, descPartBytes,
		descDirty, descRefused, descFlushLag, descFlushed, descLoads, descCoalesced, descRefills, descBreaker,
		descMembers, descEvictions, descExpirations, descCapacity, descUsed, descDisk, descOps, descForwarded} {
		ch <- d
	}
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	n := c.n
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	var dirty, refused, used, evictions, expirations uint64
	for _, p := range n.hosted() {
		pid := strconv.FormatUint(uint64(p.id), 10)
		st := p.store.State()
		state := p.raft.State()
		gauge(descRaftState, float64(raftStateValue(state)), pid)
		applied, commit := p.fsm.applied.Load(), p.raft.CommitIndex()
		gauge(descApplyLag, float64(commit-min(applied, commit)), pid)
		counter(descLeaderChanges, p.leaderChanges.Load(), pid)
		gauge(descPartKeys, float64(st.Keys), pid)
		gauge(descPartBytes, float64(st.Bytes), pid)
		dirty += st.Dirty
		refused += uint64(p.refused.count())
		used += st.Bytes
		evictions += p.fsm.evictions.Load()
		expirations += p.fsm.expirations.Load()
	}
	gauge(descUsed, float64(used))
	gauge(descCapacity, float64(n.cfg.CapacityBytes))
	gauge(descDisk, float64(n.db.DiskUsage()))
	counter(descEvictions, evictions)
	counter(descExpirations, expirations)
	counter(descOps, n.stats.hits.Load(), "hit")
	counter(descOps, n.stats.misses.Load(), "miss")
	counter(descOps, n.stats.puts.Load(), "put")
	counter(descOps, n.stats.deletes.Load(), "delete")
	counter(descForwarded, n.stats.forwarded.Load())
	if n.backend != nil {
		gauge(descDirty, float64(dirty))
		gauge(descRefused, float64(refused))
		gauge(descFlushLag, n.flushLag().Seconds())
		counter(descFlushed, n.stats.flushedRows.Load())
		counter(descLoads, n.stats.loads.Load())
		counter(descCoalesced, n.stats.coalesced.Load())
		counter(descRefills, n.stats.refills.Load())
		gauge(descBreaker, float64(breakerValue(n.backend.breaker.State())))
	}
	if n.members != nil {
		byState := map[string]int{}
		for _, s := range []gossip.State{gossip.Alive, gossip.Suspect, gossip.Dead, gossip.Left} {
			byState[s.String()] = 0
		}
		for _, m := range n.members.Members() {
			byState[m.State.String()]++
		}
		for s, k := range byState {
			gauge(descMembers, float64(k), s)
		}
	}
}

func raftStateValue(s raft.RaftState) int {
	switch s {
	case raft.Follower:
		return 0
	case raft.Candidate:
		return 1
	case raft.Leader:
		return 2
	}
	return 3
}

func breakerValue(s gobreaker.State) int {
	switch s {
	case gobreaker.StateHalfOpen:
		return 1
	case gobreaker.StateOpen:
		return 2
	}
	return 0
}

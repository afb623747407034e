package metrics

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	cachev1 "github.com/elcache/elcache/proto/cache/v1"
)

// Snapshot is a node's state as one scrape reads it.
type Snapshot struct {
	// Partitions are the replicas the node hosts.
	Partitions []Partition
	// CapacityBytes is the node's budget of live entry bytes.
	CapacityBytes uint64
	// DiskBytes is what the node's database takes on disk.
	DiskBytes uint64
	// Hits, Misses, Puts and Deletes count the cache reads and writes the
	// node's replicas served; Forwarded, the requests it forwarded to a
	// partition's leader.
	Hits, Misses, Puts, Deletes, Forwarded uint64
	// RowCache is the storage's row cache (zero without one).
	RowCache RowCache
	// Changes are the Changes streams of near caches in clients.
	Changes Changes
	// Backing is the node's backing database, nil for a pure cache (its
	// metrics are then absent).
	Backing *Backing
	// Members counts the cluster's members by state name as the node's
	// gossip sees them, every state present (zero when none is in it); nil
	// without gossip.
	Members map[string]int
}

// Partition is one replica the node hosts.
type Partition struct {
	ID uint32
	// Role is the replica's raft state: leader, follower (a non-voter
	// follows), candidate, or unspecified when its raft has shut down.
	Role cachev1.Role
	// Applied is the last log index the replica applied, Commit the last
	// it knows committed.
	Applied, Commit uint64
	// LeaderChanges counts the leader changes the replica observed.
	LeaderChanges uint64
	// Keys, Bytes and Dirty are its live keys, live entry bytes and
	// write-back entries not yet in the database.
	Keys, Bytes, Dirty uint64
	// Refused counts its write-back entries the database refused.
	Refused uint64
	// Evictions and Expirations count the entries it evicted for capacity
	// and removed at the end of their TTL.
	Evictions, Expirations uint64
}

// RowCache is the row cache in front of the node's database.
type RowCache struct {
	Entries, Bytes, MaxBytes int64
	Hits, Misses             uint64
}

// Changes describe the Changes streams the node serves to near caches.
type Changes struct {
	// Streams and Subscriptions are open now: the streams, and the
	// partitions they follow.
	Streams, Subscriptions int64
	// Sent counts the key changes sent.
	Sent uint64
}

// Backing is the state of the node's backing database.
type Backing struct {
	// FlushLag is the age of the oldest write-back entry not yet in the
	// database.
	FlushLag time.Duration
	// FlushedRows counts the rows the write-back flusher wrote.
	FlushedRows uint64
	// Loads counts the database loads cache misses started, Coalesced the
	// misses that waited for a load under way, Refills the misses answered
	// from the database.
	Loads, Coalesced, Refills uint64
	// Breaker is the database circuit breaker's state.
	Breaker Breaker
}

// Breaker is a circuit breaker's state, as elcache_backend_breaker_state
// reports it.
type Breaker int

const (
	BreakerClosed   Breaker = 0
	BreakerHalfOpen Breaker = 1
	BreakerOpen     Breaker = 2
)

// stateCollector reads the node's state at scrape time.
type stateCollector struct{ snapshot func() Snapshot }

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
	descRowEntries = prometheus.NewDesc("elcache_row_cache_entries",
		"Entries in the row cache in front of the node's database.", nil, nil)
	descRowBytes = prometheus.NewDesc("elcache_row_cache_bytes",
		"Bytes the row cache holds (entries and their bookkeeping).", nil, nil)
	descRowMax = prometheus.NewDesc("elcache_row_cache_max_bytes",
		"The row cache's bound (0: no row cache).", nil, nil)
	descRowLookups = prometheus.NewDesc("elcache_row_cache_lookups_total",
		"Point reads of the node's database, by whether the row cache answered them.", []string{"result"}, nil)
	descChangeStreams = prometheus.NewDesc("elcache_changes_streams",
		"Changes streams open on this node (near caches of clients).", nil, nil)
	descChangeSubs = prometheus.NewDesc("elcache_changes_subscriptions",
		"Partitions the open Changes streams follow.", nil, nil)
	descChangesSent = prometheus.NewDesc("elcache_changes_sent_total",
		"Key changes sent on Changes streams.", nil, nil)
	descOps = prometheus.NewDesc("elcache_cache_operations_total",
		"Cache reads and writes served by this node's replicas, by result.", []string{"result"}, nil)
	descForwarded = prometheus.NewDesc("elcache_forwarded_total",
		"Requests this node forwarded to the partition's leader.", nil, nil)
)

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRaftState, descApplyLag, descLeaderChanges, descPartKeys, descPartBytes,
		descDirty, descRefused, descFlushLag, descFlushed, descLoads, descCoalesced, descRefills, descBreaker,
		descMembers, descEvictions, descExpirations, descCapacity, descUsed, descDisk, descOps, descForwarded,
		descRowEntries, descRowBytes, descRowMax, descRowLookups, descChangeStreams, descChangeSubs, descChangesSent} {
		ch <- d
	}
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.snapshot()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	var dirty, refused, used, evictions, expirations uint64
	for _, p := range s.Partitions {
		pid := strconv.FormatUint(uint64(p.ID), 10)
		gauge(descRaftState, float64(raftStateValue(p.Role)), pid)
		gauge(descApplyLag, float64(p.Commit-min(p.Applied, p.Commit)), pid)
		counter(descLeaderChanges, p.LeaderChanges, pid)
		gauge(descPartKeys, float64(p.Keys), pid)
		gauge(descPartBytes, float64(p.Bytes), pid)
		dirty += p.Dirty
		refused += p.Refused
		used += p.Bytes
		evictions += p.Evictions
		expirations += p.Expirations
	}
	gauge(descUsed, float64(used))
	gauge(descCapacity, float64(s.CapacityBytes))
	gauge(descDisk, float64(s.DiskBytes))
	counter(descEvictions, evictions)
	counter(descExpirations, expirations)
	counter(descOps, s.Hits, "hit")
	counter(descOps, s.Misses, "miss")
	counter(descOps, s.Puts, "put")
	counter(descOps, s.Deletes, "delete")
	counter(descForwarded, s.Forwarded)
	gauge(descRowEntries, float64(s.RowCache.Entries))
	gauge(descRowBytes, float64(s.RowCache.Bytes))
	gauge(descRowMax, float64(s.RowCache.MaxBytes))
	counter(descRowLookups, s.RowCache.Hits, "hit")
	counter(descRowLookups, s.RowCache.Misses, "miss")
	gauge(descChangeStreams, float64(s.Changes.Streams))
	gauge(descChangeSubs, float64(s.Changes.Subscriptions))
	counter(descChangesSent, s.Changes.Sent)
	if b := s.Backing; b != nil {
		gauge(descDirty, float64(dirty))
		gauge(descRefused, float64(refused))
		gauge(descFlushLag, b.FlushLag.Seconds())
		counter(descFlushed, b.FlushedRows)
		counter(descLoads, b.Loads)
		counter(descCoalesced, b.Coalesced)
		counter(descRefills, b.Refills)
		gauge(descBreaker, float64(b.Breaker))
	}
	for state, k := range s.Members {
		gauge(descMembers, float64(k), state)
	}
}

// raftStateValue is a replica's elcache_raft_state.
func raftStateValue(r cachev1.Role) int {
	switch r {
	case cachev1.Role_ROLE_FOLLOWER, cachev1.Role_ROLE_NONVOTER:
		return 0
	case cachev1.Role_ROLE_CANDIDATE:
		return 1
	case cachev1.Role_ROLE_LEADER:
		return 2
	}
	return 3
}

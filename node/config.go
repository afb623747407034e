package node

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"time"

	cachev1 "github.com/elcache/elcache/proto/cache/v1"
	"github.com/elcache/elcache/ring"
)

// Limits bound what a request may carry. Every limit is enforced with an
// InvalidArgument error naming the field and the limit.
type Limits struct {
	// MaxKeyBytes is the largest key (default 1 KiB).
	MaxKeyBytes int
	// MaxValueBytes is the largest value (default 1 MiB).
	MaxValueBytes int
	// MaxTTL is the longest time to live (default 10 years).
	MaxTTL time.Duration
	// MaxBatch is the most keys in a MultiGet or entries in a MultiPut
	// (default 1000).
	MaxBatch int
	// MaxPageSize is the largest Scan page (default 1000); DefaultPageSize
	// is used when a request asks for 0 (default 100).
	MaxPageSize     int
	DefaultPageSize int
}

// RaftConfig tunes every partition's Raft group.
type RaftConfig struct {
	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration
	CommitTimeout      time.Duration
	// SnapshotInterval and SnapshotThreshold decide when a group snapshots
	// (cheap here: local snapshots do not copy data); TrailingLogs is how
	// many entries stay in the log after one.
	SnapshotInterval  time.Duration
	SnapshotThreshold uint64
	TrailingLogs      uint64
}

// Config configures a Node. Use DefaultConfig and change what you need.
type Config struct {
	// NodeName names the node in responses, logs and (later) the cluster.
	NodeName string
	// DataDir holds the node's Pebble database, snapshots and identity.
	DataDir string
	// GRPCAddr is the address the gRPC server listens on. Port 0 picks one.
	GRPCAddr string
	// GossipAddr, Join and BootstrapExpect configure cluster membership.
	// Clustering is not available yet: Join and BootstrapExpect > 1 are
	// rejected.
	GossipAddr      string
	Join            []string
	BootstrapExpect int
	// Backend is the backing database URL (sqlite:///path or
	// postgres://...). Not available yet: a non-empty value is rejected.
	Backend string
	// MetricsAddr serves Prometheus metrics. Not available yet: a
	// non-empty value is rejected.
	MetricsAddr string

	// Partitions is the fixed number of partitions, chosen when the data
	// directory is created (default 64). A node refuses to open a data
	// directory created with another count.
	Partitions uint32
	// CapacityBytes is the budget of live entry bytes (keys, values and
	// headers). Past it, the least recently used clean entries are evicted.
	CapacityBytes uint64

	Limits Limits
	Raft   RaftConfig

	// DefaultConsistency is the level of reads that do not choose one.
	DefaultConsistency cachev1.Consistency
	// ReapInterval is how often expired entries are removed.
	ReapInterval time.Duration
	// EvictInterval is how often the node checks its capacity in the
	// background (writes also evict inline).
	EvictInterval time.Duration
	// ReclaimInterval is how often the node checks its disk use; when the
	// database takes more than twice CapacityBytes it compacts to reclaim
	// the space of evicted, expired and deleted entries and truncated logs.
	ReclaimInterval time.Duration
	// DedupWindow is how long an idempotency key is remembered.
	DedupWindow time.Duration

	// Logger receives the node's logs; nil uses slog.Default().
	Logger *slog.Logger
}

// DefaultConfig returns a complete configuration for a single local node.
func DefaultConfig() Config {
	name, err := os.Hostname()
	if err != nil || name == "" {
		name = "elcache"
	}
	return Config{
		NodeName:      name,
		DataDir:       "data",
		GRPCAddr:      "127.0.0.1:7400",
		GossipAddr:    "127.0.0.1:7946",
		Partitions:    64,
		CapacityBytes: 1 << 30,
		Limits: Limits{
			MaxKeyBytes:     1 << 10,
			MaxValueBytes:   1 << 20,
			MaxTTL:          10 * 365 * 24 * time.Hour,
			MaxBatch:        1000,
			MaxPageSize:     1000,
			DefaultPageSize: 100,
		},
		Raft: RaftConfig{
			HeartbeatTimeout:   1500 * time.Millisecond,
			ElectionTimeout:    1500 * time.Millisecond,
			LeaderLeaseTimeout: 1000 * time.Millisecond,
			CommitTimeout:      250 * time.Millisecond,
			SnapshotInterval:   30 * time.Second,
			SnapshotThreshold:  1024,
			TrailingLogs:       512,
		},
		DefaultConsistency: cachev1.Consistency_CONSISTENCY_LINEARIZABLE,
		ReapInterval:       time.Second,
		EvictInterval:      250 * time.Millisecond,
		ReclaimInterval:    30 * time.Second,
		DedupWindow:        10 * time.Minute,
	}
}

// Validate reports every problem with the configuration.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("node: "+format, args...)) }
	if c.NodeName == "" {
		bad("NodeName is required")
	}
	if c.DataDir == "" {
		bad("DataDir is required")
	}
	if _, _, err := net.SplitHostPort(c.GRPCAddr); err != nil {
		bad("GRPCAddr %q: %v", c.GRPCAddr, err)
	}
	if len(c.Join) > 0 {
		bad("Join: clustering is not available yet; run a single node without --join")
	}
	if c.BootstrapExpect > 1 {
		bad("BootstrapExpect %d: clustering is not available yet; only 0 or 1 is accepted", c.BootstrapExpect)
	}
	if c.BootstrapExpect < 0 {
		bad("BootstrapExpect must not be negative, got %d", c.BootstrapExpect)
	}
	if c.Backend != "" {
		bad("Backend %q: backing databases are not available yet; run without --backend (cache only)", c.Backend)
	}
	if c.MetricsAddr != "" {
		bad("MetricsAddr %q: metrics are not available yet", c.MetricsAddr)
	}
	if c.Partitions == 0 || c.Partitions > ring.MaxPartitions {
		bad("Partitions must be in [1, %d], got %d", ring.MaxPartitions, c.Partitions)
	}
	if c.CapacityBytes < 1<<20 {
		bad("CapacityBytes must be at least 1 MiB, got %d", c.CapacityBytes)
	}
	l := c.Limits
	if l.MaxKeyBytes < 1 || l.MaxKeyBytes > 64<<10 {
		bad("Limits.MaxKeyBytes must be in [1, 65536], got %d", l.MaxKeyBytes)
	}
	if l.MaxValueBytes < 0 || l.MaxValueBytes > 8<<20 {
		bad("Limits.MaxValueBytes must be in [0, 8 MiB], got %d", l.MaxValueBytes)
	}
	if l.MaxTTL <= 0 {
		bad("Limits.MaxTTL must be positive, got %v", l.MaxTTL)
	}
	if l.MaxBatch < 1 {
		bad("Limits.MaxBatch must be positive, got %d", l.MaxBatch)
	}
	if l.MaxPageSize < 1 || l.DefaultPageSize < 1 || l.DefaultPageSize > l.MaxPageSize {
		bad("Limits: need 1 <= DefaultPageSize (%d) <= MaxPageSize (%d)", l.DefaultPageSize, l.MaxPageSize)
	}
	r := c.Raft
	for name, d := range map[string]time.Duration{"HeartbeatTimeout": r.HeartbeatTimeout, "ElectionTimeout": r.ElectionTimeout,
		"LeaderLeaseTimeout": r.LeaderLeaseTimeout, "CommitTimeout": r.CommitTimeout, "SnapshotInterval": r.SnapshotInterval} {
		if d < 5*time.Millisecond {
			bad("Raft.%s must be at least 5ms, got %v", name, d)
		}
	}
	if r.LeaderLeaseTimeout > r.HeartbeatTimeout {
		bad("Raft.LeaderLeaseTimeout (%v) must not exceed HeartbeatTimeout (%v)", r.LeaderLeaseTimeout, r.HeartbeatTimeout)
	}
	if r.SnapshotThreshold < 1 {
		bad("Raft.SnapshotThreshold must be positive")
	}
	if _, ok := cachev1.Consistency_name[int32(c.DefaultConsistency)]; !ok || c.DefaultConsistency == cachev1.Consistency_CONSISTENCY_UNSPECIFIED {
		bad("DefaultConsistency must be a concrete level, got %v", c.DefaultConsistency)
	}
	if c.DefaultConsistency == cachev1.Consistency_CONSISTENCY_BOUNDED {
		bad("DefaultConsistency cannot be BOUNDED: it needs a per-request max staleness")
	}
	for name, d := range map[string]time.Duration{"ReapInterval": c.ReapInterval, "EvictInterval": c.EvictInterval, "ReclaimInterval": c.ReclaimInterval, "DedupWindow": c.DedupWindow} {
		if d <= 0 {
			bad("%s must be positive, got %v", name, d)
		}
	}
	return errors.Join(errs...)
}

package node

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"time"

	"github.com/elcache/elcache/internal/auth"
	"github.com/elcache/elcache/internal/metrics"
	"github.com/elcache/elcache/internal/request"
	cachev1 "github.com/elcache/elcache/proto/cache/v1"
	"github.com/elcache/elcache/ring"
	"github.com/elcache/elcache/storage/sqlstore"
)

// RESPConfig configures the Redis-protocol listener.
type RESPConfig struct {
	// Addr, when set, serves RESP2 and RESP3 on it (host:port).
	Addr string
	// Consistency is the read level of a new connection (UNSPECIFIED: the
	// node's DefaultConsistency), MaxStaleness its bound when BOUNDED. A
	// connection changes its own with ELCACHE.CONSISTENCY.
	Consistency  cachev1.Consistency
	MaxStaleness time.Duration
	// WriteMode is the write mode of a new connection (UNSPECIFIED: the
	// node's DefaultWriteMode); ELCACHE.WRITEMODE changes it. The
	// read-modify-write commands (INCR, APPEND, SET NX...) need CACHE_ONLY
	// or WRITE_BACK.
	WriteMode cachev1.WriteMode
	// Timeout bounds one command (0: 10s); MaxConns the connections open
	// at once (0: 10000).
	Timeout  time.Duration
	MaxConns int
}

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

// ClusterConfig tunes placement and membership.
type ClusterConfig struct {
	// ReplicationFactor is the number of replicas of each partition
	// (default 3), capped by the number of nodes.
	ReplicationFactor int
	// FailureGrace is how long a node may be unreachable before its
	// replicas are placed elsewhere (default 30s). A node back within the
	// grace catches up from its own data instead of being copied again.
	FailureGrace time.Duration
	// ReconcileInterval is how often each node checks placement against its
	// Raft groups (default 500ms); changes also trigger a check at once.
	ReconcileInterval time.Duration
	// GossipKey, when set, encrypts gossip (16, 24 or 32 bytes: AES-128,
	// -192 or -256). It does not protect gRPC traffic.
	GossipKey []byte
	// FastGossip uses aggressive gossip timings (failure detection well
	// under a second) for tests on one machine.
	FastGossip bool
}

// Config configures a Node. Use DefaultConfig and change what you need.
type Config struct {
	// NodeName names the node in responses, logs and (later) the cluster.
	NodeName string
	// DataDir holds the node's Pebble database, snapshots and identity.
	DataDir string
	// GRPCAddr is the address the gRPC server listens on. Port 0 picks one.
	GRPCAddr string
	// AdvertiseAddr is the gRPC address other nodes and clients use to
	// reach this node. Empty means GRPCAddr's actual address, which only
	// works when GRPCAddr names a specific interface.
	AdvertiseAddr string
	// GossipAddr is the host:port for gossip (TCP and UDP). Port 0 picks
	// one. The host must be an address other nodes can reach.
	GossipAddr string
	// Join lists gossip addresses of nodes of the cluster to join. Joining
	// is retried in the background until one answers.
	Join []string
	// BootstrapExpect forms a new cluster once this many nodes (this one
	// included) see each other and none of them belongs to a cluster yet.
	// 0 means 1 when Join is empty (a standalone node forms its own
	// cluster at once) and "never bootstrap" when Join is set (the node
	// only joins an existing cluster). A node that already belongs to a
	// cluster (its data directory says so) ignores it.
	BootstrapExpect int
	// Backend is the backing database URL (sqlite:///path or
	// postgres://...). Empty makes a pure cache: only CACHE_ONLY writes.
	Backend string
	// Backing tunes the use of the backing database.
	Backing BackendConfig
	// DefaultWriteMode is the mode of writes that do not choose one:
	// WRITE_THROUGH when Backend is set, CACHE_ONLY otherwise, if left
	// UNSPECIFIED.
	DefaultWriteMode cachev1.WriteMode
	// DefaultDurability is the durability of writes that do not choose
	// one (docs/client.md "Write durability"): DURABILITY_SYNC (the default, also
	// what UNSPECIFIED means) acknowledges a write once a quorum has
	// fsynced it, DURABILITY_REPLICATED once a quorum has written it to
	// the operating system. WRITE_THROUGH and WRITE_AROUND writes are
	// always SYNC.
	DefaultDurability cachev1.Durability
	// ReplicatedSyncInterval bounds how long a REPLICATED write, written
	// to the operating system when it is acknowledged, waits for its
	// fsync on each replica (0 means the default, 10 ms; at most 1 s).
	ReplicatedSyncInterval time.Duration
	// LogSyncGap is the least time between two fsyncs of a node's Raft
	// log: SYNC writes that arrive meanwhile share the next one (0 means
	// the default, 1 ms; at most 10 ms).
	LogSyncGap time.Duration
	// RESP configures the Redis-protocol listener (docs/redis.md).
	RESP RESPConfig
	// MetricsAddr, when set, serves Prometheus metrics over HTTP at
	// /metrics (docs/operations.md "Metrics").
	MetricsAddr string
	// AdminAddr, when set, serves the Go profiler over HTTP under
	// /debug/pprof/. Keep it on a private interface.
	AdminAddr string
	// Tokens, when set, are the credentials clients must send (docs/operations.md
	// "Security"); the first of role peer is what nodes send each other,
	// so there must be one, the same on every node. Empty: no
	// authentication.
	Tokens []Token
	// RateLimit, when positive, is each client's budget of requests a
	// second (a token, or without Tokens a client address), with bursts
	// of RateBurst (0: one second's worth); past it requests fail with
	// ResourceExhausted.
	RateLimit float64
	RateBurst int
	// TLS, when its files are set, encrypts client and peer gRPC
	// (TLSFiles).
	TLS TLSFiles

	// Partitions is the fixed number of partitions, chosen when the data
	// directory is created (default 64). A node refuses to open a data
	// directory created with another count.
	Partitions uint32
	// CapacityBytes is the budget of live entry bytes (keys, values and
	// headers). Past it, the least recently used clean entries are evicted.
	CapacityBytes uint64

	Limits  Limits
	Raft    RaftConfig
	Cluster ClusterConfig

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
	// Hooks, when set, injects faults into this node for tests and the
	// fault suite's self-tests (see Hooks); each node needs its own. A
	// program embedding a node leaves it nil: no faults. It is not a
	// setting of the elcache binary.
	Hooks *Hooks
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
			HeartbeatTimeout:   250 * time.Millisecond,
			ElectionTimeout:    250 * time.Millisecond,
			LeaderLeaseTimeout: 200 * time.Millisecond,
			CommitTimeout:      250 * time.Millisecond,
			SnapshotInterval:   30 * time.Second,
			SnapshotThreshold:  1024,
			TrailingLogs:       512,
		},
		Cluster: ClusterConfig{
			ReplicationFactor: 3,
			FailureGrace:      30 * time.Second,
			ReconcileInterval: 500 * time.Millisecond,
		},
		DefaultConsistency:     cachev1.Consistency_CONSISTENCY_LINEARIZABLE,
		DefaultDurability:      cachev1.Durability_DURABILITY_SYNC,
		ReplicatedSyncInterval: 10 * time.Millisecond,
		LogSyncGap:             time.Millisecond,
		ReapInterval:           time.Second,
		EvictInterval:          250 * time.Millisecond,
		ReclaimInterval:        30 * time.Second,
		DedupWindow:            10 * time.Minute,
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
	if c.AdvertiseAddr != "" {
		if host, port, err := net.SplitHostPort(c.AdvertiseAddr); err != nil || host == "" || port == "0" {
			bad("AdvertiseAddr %q must be a reachable host:port", c.AdvertiseAddr)
		}
	} else if host, _, err := net.SplitHostPort(c.GRPCAddr); err == nil && (host == "" || net.ParseIP(host).IsUnspecified()) &&
		(len(c.Join) > 0 || c.BootstrapExpect > 1) {
		bad("GRPCAddr %q listens on all interfaces: set AdvertiseAddr to the address other nodes can reach", c.GRPCAddr)
	}
	if _, _, err := net.SplitHostPort(c.GossipAddr); err != nil {
		bad("GossipAddr %q: %v", c.GossipAddr, err)
	}
	for _, j := range c.Join {
		if _, _, err := net.SplitHostPort(j); err != nil {
			bad("Join address %q: %v (want host:port of another node's gossip address)", j, err)
		}
	}
	if c.BootstrapExpect < 0 {
		bad("BootstrapExpect must not be negative, got %d", c.BootstrapExpect)
	}
	if _, ok := cachev1.WriteMode_name[int32(c.DefaultWriteMode)]; !ok {
		bad("DefaultWriteMode: unknown value %d", c.DefaultWriteMode)
	} else if c.Backend == "" && c.DefaultWriteMode != cachev1.WriteMode_WRITE_MODE_UNSPECIFIED &&
		c.DefaultWriteMode != cachev1.WriteMode_WRITE_MODE_CACHE_ONLY {
		bad("DefaultWriteMode %v needs a Backend", c.DefaultWriteMode)
	}
	if _, ok := cachev1.Durability_name[int32(c.DefaultDurability)]; !ok {
		bad("DefaultDurability: unknown value %d (want DURABILITY_SYNC or DURABILITY_REPLICATED)", c.DefaultDurability)
	}
	if c.LogSyncGap < 0 || c.LogSyncGap > 10*time.Millisecond {
		bad("LogSyncGap must be 0 (the default, 1ms) or in (0, 10ms], got %v", c.LogSyncGap)
	}
	if c.ReplicatedSyncInterval < 0 || c.ReplicatedSyncInterval > time.Second {
		bad("ReplicatedSyncInterval must be 0 (the default, 10ms) or in (0, 1s], got %v", c.ReplicatedSyncInterval)
	}
	// The table and column names are checked here, not only when the
	// backing database opens, so that a bad name fails with the other
	// settings.
	if err := (sqlstore.Options{Table: c.Backing.Table, Columns: c.Backing.Columns}).Validate(); err != nil {
		for _, e := range unjoin(err) {
			bad("Backing: %v", e)
		}
	}
	if c.RESP.Addr != "" {
		if err := metrics.CheckListenAddr(c.RESP.Addr); err != nil {
			bad("RESP.Addr %q: %v", c.RESP.Addr, err)
		}
	}
	if _, ok := cachev1.Consistency_name[int32(c.RESP.Consistency)]; !ok {
		bad("RESP.Consistency: unknown value %d", c.RESP.Consistency)
	}
	if c.RESP.Consistency == cachev1.Consistency_CONSISTENCY_BOUNDED && c.RESP.MaxStaleness <= 0 {
		bad("RESP.MaxStaleness must be positive with RESP.Consistency BOUNDED")
	}
	if _, ok := cachev1.WriteMode_name[int32(c.RESP.WriteMode)]; !ok {
		bad("RESP.WriteMode: unknown value %d", c.RESP.WriteMode)
	} else if c.Backend == "" && c.RESP.WriteMode != cachev1.WriteMode_WRITE_MODE_UNSPECIFIED &&
		c.RESP.WriteMode != cachev1.WriteMode_WRITE_MODE_CACHE_ONLY {
		bad("RESP.WriteMode %v needs a Backend", c.RESP.WriteMode)
	}
	if c.RESP.Timeout < 0 || c.RESP.MaxConns < 0 {
		bad("RESP.Timeout and RESP.MaxConns must not be negative")
	}
	if c.MetricsAddr != "" {
		if err := metrics.CheckListenAddr(c.MetricsAddr); err != nil {
			bad("MetricsAddr %q: %v", c.MetricsAddr, err)
		}
	}
	if len(c.Tokens) > 0 {
		if err := auth.ValidateTokens(c.Tokens); err != nil {
			bad("%v", err)
		}
		if !slices.ContainsFunc(c.Tokens, func(t Token) bool { return t.Role == RolePeer }) {
			bad("Tokens has no token of role peer: nodes need one to talk to each other")
		}
	}
	if c.TLS.Enabled() {
		if err := c.TLS.Validate(); err != nil {
			bad("%v", err)
		}
	}
	if c.RateLimit < 0 || c.RateBurst < 0 {
		bad("RateLimit (%g) and RateBurst (%d) must not be negative", c.RateLimit, c.RateBurst)
	}
	if c.AdminAddr != "" {
		if err := metrics.CheckListenAddr(c.AdminAddr); err != nil {
			bad("AdminAddr %q: %v", c.AdminAddr, err)
		}
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
	if d, err := sqlstore.DialectOf(c.Backend); c.Backend != "" && err == nil && d.MaxKeyBytes() > 0 && l.MaxKeyBytes > d.MaxKeyBytes() {
		// A longer key would be acknowledged and then refused by the
		// database for ever (and stall a write-back partition's flush).
		bad("Limits.MaxKeyBytes %d is over the %d bytes a %s backing table can index", l.MaxKeyBytes, d.MaxKeyBytes(), d)
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
	cl := c.Cluster
	if cl.ReplicationFactor < 1 || cl.ReplicationFactor > 7 {
		bad("Cluster.ReplicationFactor must be in [1, 7], got %d", cl.ReplicationFactor)
	}
	if cl.FailureGrace < 0 {
		bad("Cluster.FailureGrace must not be negative, got %v", cl.FailureGrace)
	}
	if cl.ReconcileInterval < time.Millisecond {
		bad("Cluster.ReconcileInterval must be at least 1ms, got %v", cl.ReconcileInterval)
	}
	if n := len(cl.GossipKey); n != 0 && n != 16 && n != 24 && n != 32 {
		bad("Cluster.GossipKey must be 16, 24 or 32 bytes, got %d", n)
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

// unjoin returns the errors joined in err (by errors.Join), or err alone.
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// heartbeatInterval is the least time between two coalesced Heartbeats
// calls to a peer (raftnet.Config.HeartbeatInterval) for Raft timings rc:
// a third of the heartbeat timeout. Raft's own heartbeat loop sends one
// every tenth to fifth of it and waits for the answer, so the interval
// also paces that loop, and a follower still hears from its leader about
// three times before it would call an election.
func heartbeatInterval(rc RaftConfig) time.Duration {
	return rc.HeartbeatTimeout / 3
}

// requestConfig is what the node's request validator checks against: the
// limits and the defaults of reads and writes. Writes that choose no mode
// are WRITE_THROUGH with a backing database and CACHE_ONLY without, unless
// DefaultWriteMode says otherwise; those that choose no durability are
// DefaultDurability, else SYNC.
func (c Config) requestConfig() request.Config {
	rc := request.Config{
		MaxKeyBytes:       c.Limits.MaxKeyBytes,
		MaxValueBytes:     c.Limits.MaxValueBytes,
		MaxTTL:            c.Limits.MaxTTL,
		MaxBatch:          c.Limits.MaxBatch,
		MaxPageSize:       c.Limits.MaxPageSize,
		DefaultPageSize:   c.Limits.DefaultPageSize,
		DefaultLevel:      c.DefaultConsistency,
		DefaultMode:       cachev1.WriteMode_WRITE_MODE_CACHE_ONLY,
		DefaultDurability: cachev1.Durability_DURABILITY_SYNC,
		HasBackend:        c.Backend != "",
	}
	if c.Backend != "" {
		rc.DefaultMode = cachev1.WriteMode_WRITE_MODE_WRITE_THROUGH
	}
	if c.DefaultWriteMode != cachev1.WriteMode_WRITE_MODE_UNSPECIFIED {
		rc.DefaultMode = c.DefaultWriteMode
	}
	if c.DefaultDurability != cachev1.Durability_DURABILITY_UNSPECIFIED {
		rc.DefaultDurability = c.DefaultDurability
	}
	return rc
}

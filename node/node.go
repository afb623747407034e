package node

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"google.golang.org/grpc/credentials"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/elcache/elcache/internal/auth"
	dbclient "github.com/elcache/elcache/internal/backend"
	"github.com/elcache/elcache/internal/gossip"
	"github.com/elcache/elcache/internal/meta"
	"github.com/elcache/elcache/internal/metrics"
	"github.com/elcache/elcache/internal/plan"
	"github.com/elcache/elcache/internal/raftlog"
	"github.com/elcache/elcache/internal/raftnet"
	"github.com/elcache/elcache/internal/readround"
	"github.com/elcache/elcache/internal/request"
	"github.com/elcache/elcache/internal/respserver"
	"github.com/elcache/elcache/node/version"
	cachev1 "github.com/elcache/elcache/proto/cache/v1"
	peerv1 "github.com/elcache/elcache/proto/peer/v1"
	"github.com/elcache/elcache/ring"
	"github.com/elcache/elcache/storage"
	"github.com/hashicorp/raft"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"
)

// Version is the server version reported by Stats and --version (see
// package version).
var Version = version.String

// identity is what a data directory remembers about its node.
type identity struct {
	NodeID     string `json:"node_id"`
	Partitions uint32 `json:"partitions"`
}

// Node is one elcache server.
type Node struct {
	cfg    Config
	log    *slog.Logger
	id     string
	bootID string
	start  time.Time
	db     *storage.DB
	ring   ring.Partitioner
	recent *storage.Recency
	check  request.Validator
	deps   partitionDeps

	lis     net.Listener
	addr    string // the gRPC address other nodes and clients dial (Addr)
	srv     *grpc.Server
	health  *health.Server
	net     *raftnet.Net
	members *gossip.Membership
	meta    *meta.Group
	faults  *faults // Config.Hooks' fault state, or a zero one
	leaders leaderView
	planner *plan.Planner // the meta leader's next cluster state
	book    sync.Map      // node id -> gRPC address

	// partsMu guards parts: the replicas hosted here, indexed by partition
	// id, nil where this node holds no replica.
	partsMu sync.RWMutex
	parts   []*partition

	stats struct {
		gets, hits, misses, puts, deletes atomic.Uint64
		refills, flushedRows, forwarded   atomic.Uint64
		// loads counts database loads started by refills; coalesced, the
		// misses that joined a load already under way.
		loads, coalesced atomic.Uint64
		// The Changes streams open, the partitions they follow, and the
		// key changes they sent.
		changeStreams, changeSubs atomic.Int64
		changesSent               atomic.Uint64
	}
	// metrics are the Prometheus metrics served on Config.MetricsAddr.
	metrics *metrics.Metrics
	// guard authenticates and rate-limits client requests.
	guard *auth.Guard

	// backend is the backing database, nil for a pure cache.
	backend *dbclient.Client
	// backendCfg is the backing database client's config, defaults filled in.
	backendCfg BackendConfig

	serveDone chan struct{} // closed when the gRPC server has stopped
	adminHTTP *http.Server  // the profiler, when Config.AdminAddr is set
	adminAddr string        // where adminHTTP listens
	// resp serves the Redis protocol on Config.RESP.Addr, at respAddr;
	// respDone closes when its Serve returns.
	resp     *respserver.Server
	respAddr string
	respDone chan struct{}
	// metricsHTTP serves /metrics on Config.MetricsAddr, at metricsAddr.
	metricsHTTP *http.Server
	metricsAddr string
	serving     chan struct{} // closed when health turns SERVING
	stop        chan struct{}
	wg          sync.WaitGroup
	closeOnce   sync.Once
	closeErr    error
}

// New starts a node: it opens the data directory, joins the cluster (or
// forms one, see Config.BootstrapExpect), starts the Raft groups of the
// partitions placed here and serves gRPC on cfg.GRPCAddr. Close stops it.
func New(cfg Config) (*Node, error) {
	h := cfg.Hooks
	if h == nil {
		h = new(Hooks) // no faults
	}
	if err := h.claim(cfg.NodeName); err != nil {
		return nil, err
	}
	n, err := newNode(cfg, &h.faults)
	h.bind(n)
	return n, err
}

// newNode is New for a node whose fault state is f.
func newNode(cfg Config, f *faults) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("node: data dir: %w", err)
	}
	ident, err := loadIdentity(cfg.DataDir, cfg.Partitions)
	if err != nil {
		return nil, err
	}
	pr, err := ring.NewPartitioner(cfg.Partitions)
	if err != nil {
		return nil, err
	}
	n := &Node{
		cfg:     cfg,
		log:     cfg.Logger.With("node", cfg.NodeName),
		id:      ident.NodeID,
		bootID:  randomHex(8),
		start:   time.Now(),
		ring:    pr,
		recent:  storage.NewRecency(20),
		check:   request.New(cfg.requestConfig()),
		parts:   make([]*partition, cfg.Partitions),
		faults:  f,
		stop:    make(chan struct{}),
		serving: make(chan struct{}),
	}
	n.planner, err = plan.New(plan.Config{Partitions: cfg.Partitions, ReplicationFactor: cfg.Cluster.ReplicationFactor,
		FailureGrace: cfg.Cluster.FailureGrace, Start: n.start, Logger: n.log})
	if err != nil {
		return nil, err
	}
	if cfg.Backend != "" {
		if err := n.openBackend(); err != nil {
			return nil, err
		}
	}
	scfg := storage.DefaultConfig(filepath.Join(cfg.DataDir, "db"))
	scfg.Logger = n.log
	// A memtable (and the write-ahead log behind it) is held on top of
	// the live data: keep it a small part of a small budget.
	scfg.MemTableBytes = min(scfg.MemTableBytes, max(uint64(cfg.CapacityBytes)/64, 1<<20))
	// The row cache is a part of the budget too (an eighth at most).
	scfg.RowCacheBytes = min(scfg.RowCacheBytes, int64(cfg.CapacityBytes/8))
	// So are the Raft log engine's segments (a few of them).
	if cfg.ReplicatedSyncInterval > 0 {
		scfg.LogSyncInterval = cfg.ReplicatedSyncInterval
	}
	if cfg.LogSyncGap > 0 {
		scfg.LogSyncGap = cfg.LogSyncGap
	}
	scfg.LogSegmentBytes = min(scfg.LogSegmentBytes, int64(max(cfg.CapacityBytes/64, 1<<20)))
	if n.db, err = storage.Open(scfg); err != nil {
		if n.backend != nil {
			err = errors.Join(err, n.backend.Close())
		}
		return nil, err
	}
	if err := n.open(); err != nil {
		return nil, errors.Join(err, n.shutdown())
	}
	if err := n.startAdminHTTP(); err != nil {
		return nil, errors.Join(err, n.shutdown())
	}
	if err := n.startMetrics(); err != nil {
		return nil, errors.Join(err, n.shutdown())
	}
	if err := n.startRESP(); err != nil {
		return nil, errors.Join(err, n.shutdown())
	}
	n.serveDone = make(chan struct{})
	go func() {
		defer close(n.serveDone)
		if err := n.srv.Serve(n.lis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			n.log.Error("grpc serve stopped", "err", err)
		}
	}()
	n.wg.Add(6)
	if n.backend != nil {
		n.wg.Add(1)
		go n.flushLoop()
	}
	go n.markServingWhenReady()
	go n.controlLoop()
	go n.leaderViewLoop()
	go n.evictLoop()
	go n.reapLoop()
	go n.reclaimLoop()
	n.log.Info("node started", "node_id", n.id, "grpc_addr", n.Addr(), "gossip_addr", n.members.Addr(),
		"partitions", cfg.Partitions, "data_dir", cfg.DataDir)
	return n, nil
}

// open starts the parts of a node in order; on error the caller calls
// shutdown, which closes whatever was started.
func (n *Node) open() error {
	cfg := n.cfg
	lis, err := net.Listen("tcp", cfg.GRPCAddr)
	if err != nil {
		return fmt.Errorf("node: listen %s: %w", cfg.GRPCAddr, err)
	}
	n.lis = lis
	n.addr = lis.Addr().String()
	if n.cfg.AdvertiseAddr != "" {
		n.addr = n.cfg.AdvertiseAddr
	}
	n.guard = auth.NewGuard(cfg.Tokens, cfg.RateLimit, cfg.RateBurst)
	serverOpts := []grpc.ServerOption{}
	var peerTLS *tls.Config
	if cfg.TLS.Enabled() {
		var serverTLS *tls.Config
		if serverTLS, peerTLS, err = cfg.TLS.Configs(); err != nil {
			return err
		}
		serverOpts = append(serverOpts, grpc.Creds(credentials.NewTLS(serverTLS)))
	}
	n.net = raftnet.New(raftnet.Config{LocalID: n.id, Resolve: n.resolve, Allow: n.faults.allowNode, Logger: n.log, PeerToken: n.guard.PeerSecret(), PeerTLS: peerTLS,
		RPCTimeout: max(2*cfg.Raft.ElectionTimeout, time.Second), HeartbeatInterval: heartbeatInterval(cfg.Raft), ErrorStatus: toStatus,
		// It may have acknowledged a lease holder just before it stopped.
		VoteAfter: n.start.Add(min(cfg.Raft.HeartbeatTimeout, cfg.Raft.ElectionTimeout))})
	n.metrics, err = metrics.New(metrics.Config{Snapshot: n.metricsSnapshot, DefaultLevel: cfg.DefaultConsistency, ErrorStatus: toStatus, Logger: n.log})
	if err != nil {
		return err
	}
	n.srv = grpc.NewServer(append(serverOpts,
		grpc.ChainUnaryInterceptor(n.metrics.UnaryInterceptor, n.guard.UnaryInterceptor(isForwarded)),
		grpc.ChainStreamInterceptor(n.guard.StreamInterceptor(n.metrics.RefusedStream)),
		grpc.MaxRecvMsgSize(raftnet.MaxMsgBytes),
		grpc.MaxSendMsgSize(raftnet.MaxMsgBytes),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
	)...)
	cachev1.RegisterCacheServer(n.srv, &cacheServer{n: n})
	cachev1.RegisterAdminServer(n.srv, &adminServer{n: n})
	peerv1.RegisterPeerServer(n.srv, &peerServer{n: n})
	n.net.Register(n.srv)
	n.health = health.NewServer()
	n.health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	n.health.SetServingStatus(cachev1.Cache_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_NOT_SERVING)
	healthpb.RegisterHealthServer(n.srv, n.health)
	reflection.Register(n.srv)

	n.deps = partitionDeps{db: n.db, net: n.net, dataDir: cfg.DataDir, nodeID: n.id,
		raftCfg: cfg.Raft, dedup: cfg.DedupWindow, log: n.log, reachable: n.reachable,
		readIndexAt: n.readIndexAt, faults: n.faults,
		rounds: readround.New(n.confirmTermsAt, max(cfg.Raft.ElectionTimeout, 50*time.Millisecond))}
	metaRaft := raftConfig(n.id, cfg.Raft)
	metaRaft.Logger = raftlog.New(n.log, "group", "meta")
	if n.meta, err = meta.Open(n.db, cfg.DataDir, n.net.Transport(meta.GroupID), metaRaft); err != nil {
		return err
	}
	// Replicas with local data start at once, before the partition map is
	// known again, so that a restarted node serves and catches up quickly.
	// The controller stops those the map no longer places here.
	for id := uint32(0); id < cfg.Partitions; id++ {
		has, err := n.hasReplicaData(id)
		if err != nil {
			return err
		}
		if !has {
			continue
		}
		p, err := openPartition(id, n.deps, nil)
		if err != nil {
			return err
		}
		n.parts[id] = p
	}
	n.members, err = gossip.New(gossip.Config{
		NodeID: n.id, NodeName: cfg.NodeName, GRPCAddr: n.Addr(), BootID: n.bootID,
		HasCluster: n.meta.Formed(), Bootstrapper: n.bootstrapExpect() > 0,
		BindAddr: cfg.GossipAddr, Seeds: cfg.Join, SecretKey: cfg.Cluster.GossipKey, Fast: cfg.Cluster.FastGossip,
		Allow: n.faults.allowGossip, Logger: n.log,
	})
	if err != nil {
		return err
	}
	n.members.SetHasCluster(n.meta.Formed())
	return nil
}

// hasReplicaData reports whether this node holds Raft log entries or a
// snapshot of partition id (a dropped replica keeps only its term and vote).
func (n *Node) hasReplicaData(id uint32) (bool, error) {
	last, err := n.db.LogStore(uint64(id)).LastIndex()
	if err != nil {
		return false, err
	}
	if last > 0 {
		return true, nil
	}
	return n.db.HasSnapshot(uint64(id))
}

func randomHex(nbytes int) string {
	b := make([]byte, nbytes)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// loadIdentity reads the data directory's identity, creating it on first
// start, and refuses a directory made with another partition count.
func loadIdentity(dir string, partitions uint32) (identity, error) {
	path := filepath.Join(dir, "node.json")
	raw, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		id := identity{NodeID: randomHex(8), Partitions: partitions}
		raw, _ = json.Marshal(id)
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, raw, 0o644); err != nil {
			return identity{}, fmt.Errorf("node: write identity: %w", err)
		}
		return id, os.Rename(tmp, path)
	}
	if err != nil {
		return identity{}, fmt.Errorf("node: read identity: %w", err)
	}
	var id identity
	if err := json.Unmarshal(raw, &id); err != nil || id.NodeID == "" {
		return identity{}, fmt.Errorf("node: %s is corrupt: %v", path, err)
	}
	if id.Partitions != partitions {
		return identity{}, fmt.Errorf("node: data dir %s was created with %d partitions, configured %d; the count cannot change", dir, id.Partitions, partitions)
	}
	return id, nil
}

// markServingWhenReady flips health to SERVING once every partition has a
// leader that can serve.
func (n *Node) markServingWhenReady() {
	defer n.wg.Done()
	if err := n.waitReady(context.Background()); err != nil {
		return
	}
	n.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	n.health.SetServingStatus(cachev1.Cache_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
	close(n.serving)
	n.log.Info("node ready", "after", time.Since(n.start).Round(time.Millisecond))
}

// WaitReady blocks until the node is ready and its health reports SERVING:
// the cluster is formed and every partition has a known leader (one that
// has committed in its term, when it is this node). It returns early when
// ctx ends or the node closes.
func (n *Node) WaitReady(ctx context.Context) error {
	select {
	case <-n.serving:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-n.stop:
		return ErrClosed
	}
}

func (n *Node) waitReady(ctx context.Context) error {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for !n.ready() {
		select {
		case <-t.C:
		case <-ctx.Done():
			return ctx.Err()
		case <-n.stop:
			return ErrClosed
		}
	}
	return nil
}

func (n *Node) ready() bool {
	st, _ := n.meta.Current()
	if st.Revision == 0 {
		return false
	}
	for id := uint32(0); id < n.cfg.Partitions; id++ {
		p := n.part(id)
		if p != nil && p.raft.State() == raft.Leader {
			if !p.ready() {
				return false
			}
			continue
		}
		if n.leaderOf(id) == "" {
			return false
		}
	}
	return true
}

// part returns this node's replica of partition id, or nil.
func (n *Node) part(id uint32) *partition {
	n.partsMu.RLock()
	defer n.partsMu.RUnlock()
	if int(id) >= len(n.parts) {
		return nil
	}
	return n.parts[id]
}

// hosted returns the replicas hosted here.
func (n *Node) hosted() []*partition {
	n.partsMu.RLock()
	defer n.partsMu.RUnlock()
	out := make([]*partition, 0, len(n.parts))
	for _, p := range n.parts {
		if p != nil {
			out = append(out, p)
		}
	}
	return out
}

// Addr returns the gRPC address of this node: the advertised one, else
// the one the server listens on.
func (n *Node) Addr() string { return n.addr }

// GossipAddr returns the address gossip listens on.
func (n *Node) GossipAddr() string { return n.members.Addr() }

// ID returns the node's persistent identifier.
func (n *Node) ID() string { return n.id }

// Close stops the node: it stops taking traffic, hands its leaderships to
// other replicas, leaves the gossip cluster, then stops background work,
// the Raft groups and storage. It is idempotent.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		n.faults.resume() // a paused node's log writes would block shutdown
		n.health.Shutdown()
		n.stopRESP()
		// Write-back entries are replicated, so the next leaders would
		// flush them; flushing here keeps the database current sooner.
		n.flushAll(5 * time.Second)
		n.handOff(2 * n.cfg.Raft.ElectionTimeout)
		if err := n.members.Leave(time.Second); err != nil {
			n.log.Warn("gossip leave failed", "err", err)
		}
		close(n.stop)
		n.wg.Wait()
		// The Raft groups stop before the gRPC server: their streams
		// (pipelines from peers) would keep a graceful stop waiting.
		errs := n.closeGroups()
		if n.deps.rounds != nil {
			n.deps.rounds.Close()
		}
		done := make(chan struct{})
		go func() { n.srv.GracefulStop(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			n.srv.Stop()
		}
		n.closeErr = errors.Join(errs, n.shutdown())
		n.log.Info("node stopped")
	})
	return n.closeErr
}

// closeGroups stops every Raft group of this node. The peer connections
// stay until the gRPC server has stopped: forwarded requests still in
// flight use them.
func (n *Node) closeGroups() error {
	var errs []error
	for _, p := range n.hosted() {
		errs = append(errs, p.close())
	}
	if n.meta != nil {
		errs = append(errs, n.meta.Close())
	}
	return errors.Join(errs...)
}

// shutdown closes what open started, in reverse order. Closing twice is
// harmless.
func (n *Node) shutdown() error {
	n.stopRESP()
	if n.adminHTTP != nil {
		n.adminHTTP.Close()
	}
	if n.metricsHTTP != nil {
		n.metricsHTTP.Close()
	}
	if n.srv != nil {
		n.srv.Stop()
		if n.serveDone != nil {
			<-n.serveDone
		}
	}
	errs := []error{n.closeGroups()}
	if n.net != nil {
		errs = append(errs, n.net.Close())
	}
	if n.members != nil {
		errs = append(errs, n.members.Close())
	}
	if n.lis != nil {
		n.lis.Close()
	}
	errs = append(errs, n.db.Close())
	if n.backend != nil {
		errs = append(errs, n.backend.Close())
	}
	return errors.Join(errs...)
}

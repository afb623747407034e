package node

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	cachev1 "github.com/elcache/elcache/proto/cache/v1"
	"github.com/elcache/elcache/ring"
	"github.com/elcache/elcache/storage"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"
)

// Version is the server version reported by Stats.
const Version = "0.1.0-dev"

// maxMsgBytes bounds gRPC messages: a MultiPut of large values must fit.
const maxMsgBytes = 64 << 20

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
	start  time.Time
	db     *storage.DB
	ring   ring.Partitioner
	parts  []*partition
	recent *storage.Recency
	check  validator

	lis    net.Listener
	srv    *grpc.Server
	health *health.Server

	stats struct {
		gets, hits, misses, puts, deletes atomic.Uint64
	}

	stop      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// New starts a node: it opens the data directory, starts every partition's
// Raft group and serves gRPC on cfg.GRPCAddr. Close stops it.
func New(cfg Config) (*Node, error) {
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
		cfg:    cfg,
		log:    cfg.Logger.With("node", cfg.NodeName),
		id:     ident.NodeID,
		start:  time.Now(),
		ring:   pr,
		recent: storage.NewRecency(20),
		check: validator{limits: cfg.Limits, defaultLevel: cfg.DefaultConsistency,
			defaultWriter: cachev1.WriteMode_WRITE_MODE_CACHE_ONLY},
		stop: make(chan struct{}),
	}
	scfg := storage.DefaultConfig(filepath.Join(cfg.DataDir, "db"))
	scfg.Logger = n.log
	if n.db, err = storage.Open(scfg); err != nil {
		return nil, err
	}
	lis, err := net.Listen("tcp", cfg.GRPCAddr)
	if err != nil {
		n.db.Close()
		return nil, fmt.Errorf("node: listen %s: %w", cfg.GRPCAddr, err)
	}
	n.lis = lis
	deps := partitionDeps{db: n.db, dataDir: cfg.DataDir, nodeID: n.id, addr: lis.Addr().String(),
		raftCfg: cfg.Raft, dedup: cfg.DedupWindow, log: n.log}
	for id := uint32(0); id < cfg.Partitions; id++ {
		p, err := openPartition(id, deps)
		if err != nil {
			lis.Close()
			return nil, errors.Join(err, n.closeParts(), n.db.Close())
		}
		n.parts = append(n.parts, p)
	}

	n.srv = grpc.NewServer(
		grpc.MaxRecvMsgSize(maxMsgBytes),
		grpc.MaxSendMsgSize(maxMsgBytes),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
	)
	cachev1.RegisterCacheServer(n.srv, &cacheServer{n: n})
	n.health = health.NewServer()
	n.health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	n.health.SetServingStatus(cachev1.Cache_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_NOT_SERVING)
	healthpb.RegisterHealthServer(n.srv, n.health)
	reflection.Register(n.srv)

	n.wg.Add(5)
	go func() {
		defer n.wg.Done()
		if err := n.srv.Serve(lis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			n.log.Error("grpc serve stopped", "err", err)
		}
	}()
	go n.markServingWhenReady()
	go n.evictLoop()
	go n.reapLoop()
	go n.reclaimLoop()
	n.log.Info("node started", "node_id", n.id, "grpc_addr", n.Addr(), "partitions", cfg.Partitions, "data_dir", cfg.DataDir)
	return n, nil
}

// loadIdentity reads the data directory's identity, creating it on first
// start, and refuses a directory made with another partition count.
func loadIdentity(dir string, partitions uint32) (identity, error) {
	path := filepath.Join(dir, "node.json")
	raw, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		var b [8]byte
		rand.Read(b[:])
		id := identity{NodeID: hex.EncodeToString(b[:]), Partitions: partitions}
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

// markServingWhenReady flips health to SERVING once every partition can
// serve linearizable reads.
func (n *Node) markServingWhenReady() {
	defer n.wg.Done()
	if err := n.WaitReady(context.Background()); err != nil {
		return
	}
	n.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	n.health.SetServingStatus(cachev1.Cache_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
	n.log.Info("node ready", "after", time.Since(n.start).Round(time.Millisecond))
}

// WaitReady blocks until every partition has a leader that has committed in
// its term, or ctx ends, or the node closes.
func (n *Node) WaitReady(ctx context.Context) error {
	for _, p := range n.parts {
		for !p.ready() {
			p.fsm.mu.Lock()
			ch := p.fsm.appliedCh
			p.fsm.mu.Unlock()
			select {
			case <-ch:
			case <-time.After(10 * time.Millisecond):
			case <-ctx.Done():
				return ctx.Err()
			case <-n.stop:
				return ErrClosed
			}
		}
	}
	return nil
}

// Addr returns the address the gRPC server listens on.
func (n *Node) Addr() string { return n.lis.Addr().String() }

// ID returns the node's persistent identifier.
func (n *Node) ID() string { return n.id }

// Close stops the node: traffic first, then background work, the Raft
// groups and storage. It is idempotent.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		n.health.Shutdown()
		close(n.stop)
		done := make(chan struct{})
		go func() { n.srv.GracefulStop(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			n.srv.Stop()
		}
		n.wg.Wait()
		n.closeErr = errors.Join(n.closeParts(), n.db.Close())
		n.log.Info("node stopped")
	})
	return n.closeErr
}

func (n *Node) closeParts() error {
	var errs []error
	for _, p := range n.parts {
		errs = append(errs, p.close())
	}
	return errors.Join(errs...)
}

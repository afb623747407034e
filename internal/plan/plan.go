package plan

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"time"

	"github.com/elcache/elcache/internal/gossip"
	peerv1 "github.com/elcache/elcache/proto/peer/v1"
	"github.com/elcache/elcache/ring"
	"google.golang.org/protobuf/proto"
)

// leaderLoad is the placement's leader Load (ring.PlaceConfig.Load). It is
// part of the placement contract: changing it moves data.
const leaderLoad = 1.25

// Config configures a Planner.
type Config struct {
	// Partitions is the partition count written into the first cluster
	// state (revision 0), in [1, ring.MaxPartitions]. Later states keep
	// the count they hold.
	Partitions uint32
	// ReplicationFactor is the number of replicas per partition written
	// into the first cluster state; at least 1.
	ReplicationFactor int
	// FailureGrace is how long an ACTIVE node may be gone before it is
	// marked FAILED and its replicas are placed elsewhere; not negative.
	FailureGrace time.Duration
	// Start is when this node started: a node in the table that gossip
	// has never seen counts as gone since then. Not zero.
	Start time.Time
	// Logger receives the placement errors; nil means slog.Default().
	Logger *slog.Logger
}

// DefaultConfig returns 64 partitions, 3 replicas, a 30 s failure grace,
// Start now and slog.Default().
func DefaultConfig() Config {
	return Config{Partitions: 64, ReplicationFactor: 3, FailureGrace: 30 * time.Second,
		Start: time.Now(), Logger: slog.Default()}
}

// Validate reports every problem in c.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("plan: "+format, args...))
	}
	if c.Partitions == 0 || c.Partitions > ring.MaxPartitions {
		bad("partitions must be in [1, %d], got %d", ring.MaxPartitions, c.Partitions)
	}
	if c.ReplicationFactor < 1 {
		bad("replication factor must be at least 1, got %d", c.ReplicationFactor)
	}
	if c.FailureGrace < 0 {
		bad("failure grace must not be negative, got %v", c.FailureGrace)
	}
	if c.Start.IsZero() {
		bad("start time is zero")
	}
	return errors.Join(errs...)
}

// Planner computes the cluster leader's next cluster state. It is safe for
// concurrent use.
type Planner struct {
	cfg    Config
	placed memo // the latest placement computed
}

// New returns a Planner for cfg, or the problems Config.Validate finds.
func New(cfg Config) (*Planner, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Planner{cfg: cfg}, nil
}

// ActiveNodes lists the ids of the ACTIVE nodes of st, in table order:
// the nodes placement is computed over.
func ActiveNodes(st *peerv1.ClusterState) []string {
	var ids []string
	for _, r := range st.Nodes {
		if r.State == peerv1.NodeRecord_STATE_ACTIVE {
			ids = append(ids, r.Id)
		}
	}
	return ids
}

// Next returns the cluster state that follows from cur and the gossip view
// members at now, or nil when nothing changes (and when placement fails,
// which it logs). cur is not changed; the result may share slices with
// the Planner's memo and must not be changed by the caller.
func (p *Planner) Next(cur *peerv1.ClusterState, members []gossip.Member, now time.Time) *peerv1.ClusterState {
	next := proto.CloneOf(cur)
	if next.Revision == 0 {
		next.PartitionCount = p.cfg.Partitions
		next.ReplicationFactor = uint32(p.cfg.ReplicationFactor)
	}
	view := make(map[string]gossip.Member, len(members))
	for _, m := range members {
		view[m.ID] = m
	}
	grace := p.cfg.FailureGrace
	records := make(map[string]*peerv1.NodeRecord, len(next.Nodes))
	for _, r := range next.Nodes {
		records[r.Id] = r
	}
	for _, m := range members {
		if m.State != gossip.Alive && m.State != gossip.Suspect {
			continue
		}
		r := records[m.ID]
		if r == nil {
			r = &peerv1.NodeRecord{Id: m.ID, State: peerv1.NodeRecord_STATE_ACTIVE}
			records[m.ID] = r
			next.Nodes = append(next.Nodes, r)
		}
		if r.State == peerv1.NodeRecord_STATE_FAILED ||
			(r.State == peerv1.NodeRecord_STATE_DRAINING && r.BootId != "" && r.BootId != m.BootID) {
			r.State = peerv1.NodeRecord_STATE_ACTIVE
		}
		r.Name, r.GrpcAddr, r.GossipAddr, r.BootId = m.Name, m.GRPCAddr, m.GossipAddr, m.BootID
	}
	gone := func(id string) bool {
		m, seen := view[id]
		return !seen || m.State == gossip.Dead || m.State == gossip.Left
	}
	for _, r := range next.Nodes {
		m, seen := view[r.Id]
		since := p.cfg.Start
		if seen {
			since = m.Since
		}
		if r.State == peerv1.NodeRecord_STATE_ACTIVE && gone(r.Id) && now.Sub(since) >= grace {
			r.State = peerv1.NodeRecord_STATE_FAILED
		}
	}
	// Placement over the active nodes.
	active := ActiveNodes(next)
	if len(active) > 0 {
		pl, err := p.placed.place(ring.PlaceConfig{Partitions: next.PartitionCount,
			ReplicationFactor: int(next.ReplicationFactor), Load: leaderLoad}, active)
		if err != nil {
			p.cfg.Logger.Error("placement failed", "err", err)
			return nil
		}
		moved := false
		if len(next.Partitions) != len(pl.Replicas) {
			next.Partitions = make([]*peerv1.PartitionPlacement, len(pl.Replicas))
			for i := range next.Partitions {
				next.Partitions[i] = &peerv1.PartitionPlacement{}
			}
		}
		for i, reps := range pl.Replicas {
			pp := next.Partitions[i]
			if !slices.Equal(pp.Replicas, reps) {
				pp.Replicas = slices.Clone(reps)
				moved = true
			}
			if len(pp.Bootstrap) == 0 {
				pp.Bootstrap = reps
			}
		}
		if moved {
			next.MapVersion++
		}
	}
	// A draining node that holds no replica and is gone leaves the table.
	held := make(map[string]bool)
	for _, pp := range next.Partitions {
		for _, id := range pp.Replicas {
			held[id] = true
		}
	}
	next.Nodes = slices.DeleteFunc(next.Nodes, func(r *peerv1.NodeRecord) bool {
		return r.State == peerv1.NodeRecord_STATE_DRAINING && gone(r.Id) && !held[r.Id]
	})
	sort.Slice(next.Nodes, func(i, j int) bool { return next.Nodes[i].Id < next.Nodes[j].Id })
	if proto.Equal(next, cur) {
		return nil
	}
	return next
}

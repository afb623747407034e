package plan

import (
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/elcache/elcache/internal/gossip"
	peerv1 "github.com/elcache/elcache/proto/peer/v1"
	"github.com/elcache/elcache/ring"
	"google.golang.org/protobuf/proto"
)

const (
	active   = peerv1.NodeRecord_STATE_ACTIVE
	failed   = peerv1.NodeRecord_STATE_FAILED
	draining = peerv1.NodeRecord_STATE_DRAINING

	partitions = 8
	replicas   = 3
	grace      = 30 * time.Second
)

// t0 is when the planner's node started; now is a minute later.
var (
	t0  = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	now = t0.Add(time.Minute)
)

func newPlanner(t *testing.T) *Planner {
	t.Helper()
	p, err := New(Config{Partitions: partitions, ReplicationFactor: replicas, FailureGrace: grace, Start: t0,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// member is node id as gossip sees it in state s since the given time,
// with the addresses and boot id that record(id, ...) holds.
func member(id string, s gossip.State, since time.Time) gossip.Member {
	return gossip.Member{ID: id, Name: "name-" + id, GRPCAddr: id + ":7000", GossipAddr: id + ":7946",
		BootID: "boot-" + id, State: s, Since: since}
}

// alive lists ids as alive members, up since t0.
func alive(ids ...string) []gossip.Member {
	var ms []gossip.Member
	for _, id := range ids {
		ms = append(ms, member(id, gossip.Alive, t0))
	}
	return ms
}

// record is node id's entry in the table, in state s, as member(id) reports it.
func record(id string, s peerv1.NodeRecord_State) *peerv1.NodeRecord {
	return &peerv1.NodeRecord{Id: id, Name: "name-" + id, GrpcAddr: id + ":7000", GossipAddr: id + ":7946",
		BootId: "boot-" + id, State: s}
}

// placement is the balanced placement over ids.
func placement(t *testing.T, ids ...string) [][]string {
	t.Helper()
	pl, err := ring.Place(ring.PlaceConfig{Partitions: partitions, ReplicationFactor: replicas, Load: 1.25}, ids)
	if err != nil {
		t.Fatal(err)
	}
	return pl.BalanceLeaders().Replicas
}

// settled is a cluster state at revision 7 and map version 3 with the
// given node table, whose partitions (replicas and bootstrap voters) are
// placed over placedOn.
func settled(t *testing.T, placedOn []string, nodes ...*peerv1.NodeRecord) *peerv1.ClusterState {
	t.Helper()
	st := &peerv1.ClusterState{Revision: 7, MapVersion: 3, PartitionCount: partitions, ReplicationFactor: replicas, Nodes: nodes}
	for _, reps := range placement(t, placedOn...) {
		st.Partitions = append(st.Partitions, &peerv1.PartitionPlacement{Replicas: reps, Bootstrap: slices.Clone(reps)})
	}
	return st
}

// with returns members with id's entry replaced by m (or m added).
func with(members []gossip.Member, m gossip.Member) []gossip.Member {
	out := slices.DeleteFunc(slices.Clone(members), func(x gossip.Member) bool { return x.ID == m.ID })
	return append(out, m)
}

// TestNext walks Next through the decisions the meta leader makes: each
// case gives the current state and the gossip view, and says what the next
// state holds, or that nothing changes.
func TestNext(t *testing.T) {
	abc := []string{"a", "b", "c"}
	tests := []struct {
		name    string
		cur     *peerv1.ClusterState
		members []gossip.Member
		now     time.Time
		// unchanged: Next returns nil. Otherwise the next state has
		// exactly the nodes in states (with the records of member(id)
		// unless records says otherwise), map version mapVersion,
		// replicas placed over placedOn and bootstrap voters placed over
		// bootstrapOn.
		unchanged   bool
		states      map[string]peerv1.NodeRecord_State
		records     []*peerv1.NodeRecord
		mapVersion  uint64
		placedOn    []string
		bootstrapOn []string
	}{{
		name:        "first cluster",
		cur:         &peerv1.ClusterState{},
		members:     alive("c", "a", "b"),
		now:         now,
		states:      map[string]peerv1.NodeRecord_State{"a": active, "b": active, "c": active},
		mapVersion:  1,
		placedOn:    abc,
		bootstrapOn: abc,
	}, {
		name:        "first cluster of one node",
		cur:         &peerv1.ClusterState{},
		members:     alive("a"),
		now:         now,
		states:      map[string]peerv1.NodeRecord_State{"a": active},
		mapVersion:  1,
		placedOn:    []string{"a"},
		bootstrapOn: []string{"a"},
	}, {
		name:      "unchanged input",
		cur:       settled(t, abc, record("a", active), record("b", active), record("c", active)),
		members:   alive("a", "b", "c"),
		now:       now,
		unchanged: true,
	}, {
		name:      "a suspect member is not gone",
		cur:       settled(t, abc, record("a", active), record("b", active), record("c", active)),
		members:   with(alive("a", "b"), member("c", gossip.Suspect, now.Add(-time.Hour))),
		now:       now,
		unchanged: true,
	}, {
		name:        "a suspect member joins",
		cur:         settled(t, abc, record("a", active), record("b", active), record("c", active)),
		members:     with(alive("a", "b", "c"), member("d", gossip.Suspect, now)),
		now:         now,
		states:      map[string]peerv1.NodeRecord_State{"a": active, "b": active, "c": active, "d": active},
		mapVersion:  4,
		placedOn:    []string{"a", "b", "c", "d"},
		bootstrapOn: abc,
	}, {
		name:        "a node joins",
		cur:         settled(t, abc, record("a", active), record("b", active), record("c", active)),
		members:     alive("a", "b", "c", "d"),
		now:         now,
		states:      map[string]peerv1.NodeRecord_State{"a": active, "b": active, "c": active, "d": active},
		mapVersion:  4,
		placedOn:    []string{"a", "b", "c", "d"},
		bootstrapOn: abc,
	}, {
		name:      "a dead member that was never in the table is not added",
		cur:       settled(t, abc, record("a", active), record("b", active), record("c", active)),
		members:   with(alive("a", "b", "c"), member("d", gossip.Dead, t0)),
		now:       now,
		unchanged: true,
	}, {
		name:    "a member's new addresses and boot id are recorded",
		cur:     settled(t, abc, record("a", active), record("b", active), record("c", active)),
		members: with(alive("a", "b"), gossip.Member{ID: "c", Name: "c2", GRPCAddr: "c:8000", GossipAddr: "c:8946", BootID: "boot-c2", State: gossip.Alive}),
		now:     now,
		states:  map[string]peerv1.NodeRecord_State{"a": active, "b": active, "c": active},
		records: []*peerv1.NodeRecord{{Id: "c", Name: "c2", GrpcAddr: "c:8000", GossipAddr: "c:8946", BootId: "boot-c2", State: active}},
		// The placement is that of cur.
		mapVersion:  3,
		placedOn:    abc,
		bootstrapOn: abc,
	}, {
		name:      "a node dead within the grace keeps its place",
		cur:       settled(t, abc, record("a", active), record("b", active), record("c", active)),
		members:   with(alive("a", "b"), member("c", gossip.Dead, now.Add(-grace+time.Millisecond))),
		now:       now,
		unchanged: true,
	}, {
		name:        "a node dead for the grace fails and its replicas move",
		cur:         settled(t, abc, record("a", active), record("b", active), record("c", active)),
		members:     with(alive("a", "b"), member("c", gossip.Dead, now.Add(-grace))),
		now:         now,
		states:      map[string]peerv1.NodeRecord_State{"a": active, "b": active, "c": failed},
		mapVersion:  4,
		placedOn:    []string{"a", "b"},
		bootstrapOn: abc,
	}, {
		name:        "a node that left past the grace fails",
		cur:         settled(t, abc, record("a", active), record("b", active), record("c", active)),
		members:     with(alive("a", "b"), member("c", gossip.Left, now.Add(-time.Hour))),
		now:         now,
		states:      map[string]peerv1.NodeRecord_State{"a": active, "b": active, "c": failed},
		mapVersion:  4,
		placedOn:    []string{"a", "b"},
		bootstrapOn: abc,
	}, {
		name:      "a node never seen keeps its place within the grace after the start",
		cur:       settled(t, abc, record("a", active), record("b", active), record("c", active)),
		members:   alive("a", "b"),
		now:       t0.Add(grace - time.Millisecond),
		unchanged: true,
	}, {
		name:        "a node never seen fails the grace after the start",
		cur:         settled(t, abc, record("a", active), record("b", active), record("c", active)),
		members:     alive("a", "b"),
		now:         t0.Add(grace),
		states:      map[string]peerv1.NodeRecord_State{"a": active, "b": active, "c": failed},
		mapVersion:  4,
		placedOn:    []string{"a", "b"},
		bootstrapOn: abc,
	}, {
		name:      "a failed node that stays gone stays in the table",
		cur:       settled(t, []string{"a", "b"}, record("a", active), record("b", active), record("c", failed)),
		members:   with(alive("a", "b"), member("c", gossip.Dead, t0)),
		now:       now,
		unchanged: true,
	}, {
		name:        "a failed node comes back",
		cur:         settled(t, []string{"a", "b"}, record("a", active), record("b", active), record("c", failed)),
		members:     alive("a", "b", "c"),
		now:         now,
		states:      map[string]peerv1.NodeRecord_State{"a": active, "b": active, "c": active},
		mapVersion:  4,
		placedOn:    abc,
		bootstrapOn: []string{"a", "b"},
	}, {
		name:      "a draining node with the same boot id stays draining",
		cur:       settled(t, []string{"a", "b"}, record("a", active), record("b", active), record("c", draining)),
		members:   alive("a", "b", "c"),
		now:       now,
		unchanged: true,
	}, {
		name:        "a draining node restarts with a new boot id",
		cur:         settled(t, []string{"a", "b"}, record("a", active), record("b", active), record("c", draining)),
		members:     with(alive("a", "b"), gossip.Member{ID: "c", Name: "name-c", GRPCAddr: "c:7000", GossipAddr: "c:7946", BootID: "boot-c2", State: gossip.Alive}),
		now:         now,
		states:      map[string]peerv1.NodeRecord_State{"a": active, "b": active, "c": active},
		records:     []*peerv1.NodeRecord{{Id: "c", Name: "name-c", GrpcAddr: "c:7000", GossipAddr: "c:7946", BootId: "boot-c2", State: active}},
		mapVersion:  4,
		placedOn:    abc,
		bootstrapOn: []string{"a", "b"},
	}, {
		name: "a draining node with no recorded boot id stays draining",
		cur: settled(t, []string{"a", "b"}, record("a", active), record("b", active),
			&peerv1.NodeRecord{Id: "c", Name: "name-c", GrpcAddr: "c:7000", GossipAddr: "c:7946", State: draining}),
		members:     alive("a", "b", "c"),
		now:         now,
		states:      map[string]peerv1.NodeRecord_State{"a": active, "b": active, "c": draining},
		mapVersion:  3,
		placedOn:    []string{"a", "b"},
		bootstrapOn: []string{"a", "b"},
	}, {
		name:        "a drained node that holds nothing and is gone leaves the table",
		cur:         settled(t, []string{"a", "b"}, record("a", active), record("b", active), record("c", draining)),
		members:     with(alive("a", "b"), member("c", gossip.Dead, now)),
		now:         now,
		states:      map[string]peerv1.NodeRecord_State{"a": active, "b": active},
		mapVersion:  3,
		placedOn:    []string{"a", "b"},
		bootstrapOn: []string{"a", "b"},
	}, {
		name:        "a draining node never seen that holds nothing leaves the table",
		cur:         settled(t, []string{"a", "b"}, record("a", active), record("b", active), record("c", draining)),
		members:     alive("a", "b"),
		now:         now,
		states:      map[string]peerv1.NodeRecord_State{"a": active, "b": active},
		mapVersion:  3,
		placedOn:    []string{"a", "b"},
		bootstrapOn: []string{"a", "b"},
	}, {
		name:        "a draining node that is gone loses its replicas and leaves at once",
		cur:         settled(t, abc, record("a", active), record("b", active), record("c", draining)),
		members:     with(alive("a", "b"), member("c", gossip.Left, now)),
		now:         now,
		states:      map[string]peerv1.NodeRecord_State{"a": active, "b": active},
		mapVersion:  4,
		placedOn:    []string{"a", "b"},
		bootstrapOn: abc,
	}, {
		name:        "a draining node that is up keeps the table entry while its replicas move",
		cur:         settled(t, abc, record("a", active), record("b", active), record("c", draining)),
		members:     alive("a", "b", "c"),
		now:         now,
		states:      map[string]peerv1.NodeRecord_State{"a": active, "b": active, "c": draining},
		mapVersion:  4,
		placedOn:    []string{"a", "b"},
		bootstrapOn: abc,
	}, {
		name:      "with no active node the map stays and a gone draining node that holds replicas stays",
		cur:       settled(t, []string{"a"}, record("a", draining)),
		members:   []gossip.Member{member("a", gossip.Dead, t0)},
		now:       now,
		unchanged: true,
	}, {
		name: "a failed placement changes nothing",
		cur: &peerv1.ClusterState{Revision: 3, MapVersion: 1, PartitionCount: 0, ReplicationFactor: replicas,
			Nodes: []*peerv1.NodeRecord{record("a", active)}},
		members:   alive("a", "b"),
		now:       now,
		unchanged: true,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := proto.CloneOf(tt.cur)
			next := newPlanner(t).Next(tt.cur, tt.members, tt.now)
			if !proto.Equal(tt.cur, before) {
				t.Fatalf("Next changed cur:\n%v\nwas\n%v", tt.cur, before)
			}
			if tt.unchanged {
				if next != nil {
					t.Fatalf("Next = %v, want nil (nothing changes)", next)
				}
				return
			}
			if next == nil {
				t.Fatal("Next = nil, want a change")
			}
			if next.Revision != tt.cur.Revision {
				t.Errorf("revision %d, want %d (the meta group bumps it)", next.Revision, tt.cur.Revision)
			}
			wantCount, wantRF := tt.cur.PartitionCount, tt.cur.ReplicationFactor
			if tt.cur.Revision == 0 {
				wantCount, wantRF = partitions, replicas
			}
			if next.PartitionCount != wantCount || next.ReplicationFactor != wantRF {
				t.Errorf("partition count %d and replication factor %d, want %d and %d",
					next.PartitionCount, next.ReplicationFactor, wantCount, wantRF)
			}
			checkNodes(t, next.Nodes, tt.states, tt.records)
			if next.MapVersion != tt.mapVersion {
				t.Errorf("map version %d, want %d", next.MapVersion, tt.mapVersion)
			}
			reps, boot := placement(t, tt.placedOn...), placement(t, tt.bootstrapOn...)
			if len(next.Partitions) != partitions {
				t.Fatalf("%d partitions, want %d", len(next.Partitions), partitions)
			}
			for i, pp := range next.Partitions {
				if !slices.Equal(pp.Replicas, reps[i]) {
					t.Errorf("partition %d replicas %v, want %v (placed on %v)", i, pp.Replicas, reps[i], tt.placedOn)
				}
				if !slices.Equal(pp.Bootstrap, boot[i]) {
					t.Errorf("partition %d bootstrap %v, want %v (placed on %v)", i, pp.Bootstrap, boot[i], tt.bootstrapOn)
				}
			}
		})
	}
}

// checkNodes checks that the node table holds exactly the ids of states,
// sorted by id, each in its state, with the names, addresses and boot ids
// of records where given and of member(id) otherwise.
func checkNodes(t *testing.T, nodes []*peerv1.NodeRecord, states map[string]peerv1.NodeRecord_State, records []*peerv1.NodeRecord) {
	t.Helper()
	var ids []string
	for _, r := range nodes {
		ids = append(ids, r.Id)
	}
	if !slices.IsSorted(ids) {
		t.Errorf("node table %v is not sorted by id", ids)
	}
	if len(nodes) != len(states) {
		t.Errorf("node table %v, want the nodes of %v", ids, states)
	}
	for _, r := range nodes {
		s, ok := states[r.Id]
		if !ok {
			t.Errorf("node %s is in the table, want %v", r.Id, states)
			continue
		}
		want := record(r.Id, s)
		for _, w := range records {
			if w.Id == r.Id {
				want = w
			}
		}
		if !proto.Equal(r, want) {
			t.Errorf("node record %v, want %v", r, want)
		}
	}
}

// TestNextSettles: once the state Next returned is stored, the same view
// plans nothing more.
func TestNextSettles(t *testing.T) {
	p := newPlanner(t)
	st := p.Next(&peerv1.ClusterState{}, alive("a", "b", "c"), now)
	if st == nil {
		t.Fatal("first cluster: Next = nil")
	}
	st.Revision = 1
	if next := p.Next(st, alive("a", "b", "c"), now); next != nil {
		t.Fatalf("second Next = %v, want nil", next)
	}
	st2 := p.Next(st, alive("a", "b", "c", "d"), now)
	if st2 == nil || st2.MapVersion != st.MapVersion+1 {
		t.Fatalf("join: Next = %v, want map version %d", st2, st.MapVersion+1)
	}
	st2.Revision = 2
	if next := p.Next(st2, alive("a", "b", "c", "d"), now); next != nil {
		t.Fatalf("after the join: Next = %v, want nil", next)
	}
}

// TestActiveNodes: only ACTIVE nodes, in table order.
func TestActiveNodes(t *testing.T) {
	st := &peerv1.ClusterState{Nodes: []*peerv1.NodeRecord{record("d", active), record("a", failed),
		record("b", active), record("c", draining)}}
	if got, want := ActiveNodes(st), []string{"d", "b"}; !slices.Equal(got, want) {
		t.Fatalf("ActiveNodes = %v, want %v", got, want)
	}
	if got := ActiveNodes(&peerv1.ClusterState{}); got != nil {
		t.Fatalf("ActiveNodes of an empty table = %v, want nil", got)
	}
}

// TestMemo: the memo returns the placement it computed for the same
// inputs, and computes again when the members or the config change.
func TestMemo(t *testing.T) {
	var m memo
	cfg := ring.PlaceConfig{Partitions: partitions, ReplicationFactor: replicas, Load: 1.25}
	place := func(cfg ring.PlaceConfig, members ...string) ring.Placement {
		t.Helper()
		pl, err := m.place(cfg, members)
		if err != nil {
			t.Fatal(err)
		}
		want, err := ring.Place(cfg, members)
		if err != nil {
			t.Fatal(err)
		}
		if want = want.BalanceLeaders(); !slices.EqualFunc(pl.Replicas, want.Replicas, slices.Equal) {
			t.Fatalf("place(%v) = %v, want %v", members, pl.Replicas, want.Replicas)
		}
		return pl
	}
	shared := func(x, y ring.Placement) bool { return &x.Replicas[0] == &y.Replicas[0] }

	first := place(cfg, "a", "b", "c")
	members := []string{"a", "b", "c"}
	if again := place(cfg, members...); !shared(first, again) {
		t.Error("the same members computed a new placement, want the memo's")
	}
	members[0] = "x" // the memo keeps its own copy of the members
	if again := place(cfg, "a", "b", "c"); !shared(first, again) {
		t.Error("changing the caller's members slice changed the memo")
	}
	joined := place(cfg, "a", "b", "c", "d")
	if shared(first, joined) {
		t.Error("new members returned the memo's placement")
	}
	if again := place(cfg, "a", "b", "c", "d"); !shared(joined, again) {
		t.Error("the same members after a change computed a new placement, want the memo's")
	}
	cfg.ReplicationFactor = 2
	if two := place(cfg, "a", "b", "c", "d"); shared(joined, two) {
		t.Error("a new config returned the memo's placement")
	}
	if _, err := m.place(ring.PlaceConfig{}, []string{"a"}); err == nil {
		t.Error("place with a zero config: no error")
	}
}

// TestConfig: Validate reports every problem, and New refuses a config
// with one.
func TestConfig(t *testing.T) {
	def := DefaultConfig()
	if err := def.Validate(); err != nil {
		t.Fatalf("DefaultConfig: %v", err)
	}
	bad := Config{Partitions: ring.MaxPartitions + 1, ReplicationFactor: 0, FailureGrace: -time.Second}
	err := bad.Validate()
	if err == nil {
		t.Fatal("Validate of a bad config: no error")
	}
	for _, want := range []string{"plan: partitions", "plan: replication factor", "plan: failure grace", "plan: start time"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Validate = %q, want a problem with %q", err, want)
		}
	}
	if _, err := New(bad); err == nil {
		t.Error("New of a bad config: no error")
	}
	p, err := New(Config{Partitions: 1, ReplicationFactor: 1, Start: t0})
	if err != nil {
		t.Fatal(err)
	}
	if p.cfg.Logger == nil {
		t.Error("New left a nil Logger")
	}
}

package plan

import (
	"slices"
	"testing"

	"github.com/elcache/elcache/internal/gossip"
	peerv1 "github.com/elcache/elcache/proto/peer/v1"
)

// set returns a set of ids.
func set(ids ...string) map[string]bool {
	out := make(map[string]bool, len(ids))
	for _, id := range ids {
		out[id] = true
	}
	return out
}

// voters returns a configuration in which every one of ids votes.
func voters(ids ...string) []Server {
	out := make([]Server, len(ids))
	for i, id := range ids {
		out[i] = Server{id, Voter}
	}
	return out
}

// suffrage returns servers with id's suffrage set to s, appending id when it
// is not there.
func suffrage(servers []Server, id string, s Suffrage) []Server {
	out := slices.Clone(servers)
	for i := range out {
		if out[i].ID == id {
			out[i].Suffrage = s
			return out
		}
	}
	return append(out, Server{id, s})
}

// stepCase is a Group and the step a reconcile decision must return for it.
type stepCase struct {
	name string
	g    Group
	want Step
}

// checkSteps runs decide, named name, on every case.
func checkSteps(t *testing.T, name string, decide func(Group) Step, cases []stepCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := decide(tc.g); got != tc.want {
				t.Errorf("%s = %v %q, want %v %q", name, got.Op, got.ID, tc.want.Op, tc.want.ID)
			}
		})
	}
}

func TestReconcilePartition(t *testing.T) {
	abc := voters("a", "b", "c")
	all := set("a", "b", "c", "d", "e")
	checkSteps(t, "ReconcilePartition", ReconcilePartition, []stepCase{
		{"nothing to do", Group{Self: "a", Servers: abc, Want: []string{"a", "b", "c"}, Alive: all, CaughtUp: all},
			Step{}},
		{"nothing wanted", Group{Self: "b", Servers: abc, Alive: all, CaughtUp: all},
			Step{}},
		{"one replica missing is added as a non-voter",
			Group{Self: "a", Servers: voters("a", "b"), Want: []string{"a", "b", "d"}, Alive: all},
			Step{AddNonvoter, "d"}},
		{"the first missing replica in the map's order is added first",
			Group{Self: "a", Servers: voters("a"), Want: []string{"a", "e", "d"}, Alive: all},
			Step{AddNonvoter, "e"}},
		{"a missing replica that is down is not added",
			Group{Self: "a", Servers: abc, Want: []string{"a", "b", "d"}, Alive: set("a", "b", "c"), CaughtUp: all},
			Step{Remove, "c"}},
		{"adding comes before promoting",
			Group{Self: "a", Servers: suffrage(voters("a", "b"), "c", Nonvoter), Want: []string{"a", "b", "c", "d"},
				Alive: all, CaughtUp: all},
			Step{AddNonvoter, "d"}},
		{"a caught-up non-voter is promoted",
			Group{Self: "a", Servers: suffrage(abc, "d", Nonvoter), Want: []string{"a", "b", "d"}, Alive: all,
				CaughtUp: set("a", "d")},
			Step{Promote, "d"}},
		{"a caught-up non-voter is promoted even if gossip sees it down",
			Group{Self: "a", Servers: suffrage(abc, "d", Nonvoter), Want: []string{"a", "b", "d"}, Alive: set("a", "b"),
				CaughtUp: set("d")},
			Step{Promote, "d"}},
		{"a non-voter not caught up holds back the removal",
			Group{Self: "a", Servers: suffrage(abc, "d", Nonvoter), Want: []string{"a", "b", "d"}, Alive: all,
				CaughtUp: set("a", "b", "c")},
			Step{}},
		{"a staging server is neither promoted nor counted as a voter",
			Group{Self: "a", Servers: suffrage(abc, "d", Staging), Want: []string{"a", "b", "d"}, Alive: all, CaughtUp: all},
			Step{}},
		{"a non-voter that is down does not hold back the removal",
			Group{Self: "a", Servers: suffrage(abc, "d", Nonvoter), Want: []string{"a", "b", "d"}, Alive: set("a", "b", "c"),
				CaughtUp: set("a", "b")},
			Step{Remove, "c"}},
		{"an unwanted follower is removed",
			Group{Self: "a", Servers: voters("a", "b", "c", "d"), Want: []string{"a", "b", "d"}, Alive: all, CaughtUp: all},
			Step{Remove, "c"}},
		{"the first unwanted server in configuration order is removed",
			Group{Self: "a", Servers: voters("a", "e", "b", "c", "d"), Want: []string{"a", "b", "c"}, Alive: all,
				CaughtUp: all},
			Step{Remove, "e"}},
		{"an unwanted node that is down is removed",
			Group{Self: "a", Servers: voters("a", "b", "c", "d"), Want: []string{"a", "b", "c"}, Alive: set("a", "b", "c"),
				CaughtUp: all},
			Step{Remove, "d"}},
		{"an unwanted non-voter is removed",
			Group{Self: "a", Servers: suffrage(abc, "d", Nonvoter), Want: []string{"a", "b", "c"}, Alive: all, CaughtUp: all},
			Step{Remove, "d"}},
		{"the leader leaving hands over to the preferred leader",
			Group{Self: "a", Servers: voters("a", "b", "c", "d"), Want: []string{"b", "c", "d"}, Alive: all, CaughtUp: all},
			Step{HandOver, "b"}},
		{"the leader leaving hands over to the first caught-up live voter",
			Group{Self: "a", Servers: voters("a", "b", "c", "d"), Want: []string{"b", "c", "d"}, Alive: set("a", "c", "d"),
				CaughtUp: set("b", "d")},
			Step{HandOver, "d"}},
		{"the leader leaving without a good target waits",
			Group{Self: "a", Servers: voters("a", "b", "c", "d"), Want: []string{"b", "c", "d"}, Alive: set("a", "b"),
				CaughtUp: set("c", "d")},
			Step{}},
		{"the leader leaving without a good target waits before removing an unwanted server listed after it",
			Group{Self: "a", Servers: voters("a", "e", "b", "c"), Want: []string{"b", "c"}, Alive: set("a", "e"),
				CaughtUp: all},
			Step{}},
		{"the leader leaving hands over before an unwanted server listed after it is removed",
			Group{Self: "a", Servers: voters("a", "e", "b", "c"), Want: []string{"b", "c"}, Alive: all, CaughtUp: all},
			Step{HandOver, "b"}},
		{"an unwanted server listed before the leaving leader is removed first",
			Group{Self: "a", Servers: voters("e", "a", "b", "c"), Want: []string{"b", "c"}, Alive: all, CaughtUp: all},
			Step{Remove, "e"}},
		{"leadership moves to the preferred leader",
			Group{Self: "b", Servers: abc, Want: []string{"a", "b", "c"}, Alive: all, CaughtUp: all},
			Step{MoveLeader, "a"}},
		{"leadership stays when the preferred leader is not caught up",
			Group{Self: "b", Servers: abc, Want: []string{"a", "b", "c"}, Alive: all, CaughtUp: set("b", "c")},
			Step{}},
		{"leadership stays when the preferred leader is down",
			Group{Self: "b", Servers: abc, Want: []string{"a", "b", "c"}, Alive: set("b", "c"), CaughtUp: all},
			Step{}},
		{"leadership stays when the preferred leader is blocked",
			Group{Self: "b", Servers: abc, Want: []string{"a", "b", "c"}, Alive: all, CaughtUp: all, Blocked: set("a")},
			Step{}},
		{"leadership stays when the preferred leader is missing and down",
			Group{Self: "b", Servers: voters("b", "c"), Want: []string{"a", "b", "c"}, Alive: set("b", "c"), CaughtUp: all},
			Step{}},
		{"leadership stays when the preferred leader does not vote and is down",
			Group{Self: "b", Servers: suffrage(voters("b", "c"), "a", Nonvoter), Want: []string{"a", "b", "c"},
				Alive: set("b", "c"), CaughtUp: set("b", "c")},
			Step{}},
	})
}

func TestMetaMembers(t *testing.T) {
	st := &peerv1.ClusterState{Nodes: []*peerv1.NodeRecord{
		{Id: "d", State: peerv1.NodeRecord_STATE_DRAINING},
		{Id: "b", State: peerv1.NodeRecord_STATE_ACTIVE},
		{Id: "f", State: peerv1.NodeRecord_STATE_FAILED},
		{Id: "a", State: peerv1.NodeRecord_STATE_ACTIVE},
		{Id: "u"},
		{Id: "b", State: peerv1.NodeRecord_STATE_ACTIVE},
	}}
	if got, want := MetaMembers(st), []string{"a", "b", "d"}; !slices.Equal(got, want) {
		t.Errorf("MetaMembers = %q, want %q", got, want)
	}
	if got := MetaMembers(&peerv1.ClusterState{}); len(got) != 0 {
		t.Errorf("MetaMembers of an empty state = %q, want none", got)
	}
}

func TestMetaVoters(t *testing.T) {
	for n, want := range []int{0, 1, 1, 3, 3, 5, 5, 5, 5} {
		if got := MetaVoters(n); got != want {
			t.Errorf("MetaVoters(%d) = %d, want %d", n, got, want)
		}
	}
}

func TestReconcileMeta(t *testing.T) {
	all := set("a", "b", "c", "d", "e", "f", "g")
	abc := voters("a", "b", "c")
	checkSteps(t, "ReconcileMeta", ReconcileMeta, []stepCase{
		{"nothing to do", Group{Self: "a", Servers: abc, Want: []string{"a", "b", "c"}, Alive: all, CaughtUp: all},
			Step{}},
		{"a node no longer wanted is removed, dead or alive",
			Group{Self: "a", Servers: voters("a", "b", "c", "d", "e"), Want: []string{"a", "b", "c", "e"},
				Alive: set("a", "b", "c", "e"), CaughtUp: all},
			Step{Remove, "d"}},
		{"the first unwanted server in configuration order is removed",
			Group{Self: "a", Servers: suffrage(voters("a", "e", "b", "c"), "d", Nonvoter), Want: []string{"a", "b", "c"},
				Alive: all, CaughtUp: all},
			Step{Remove, "e"}},
		{"the leader is never removed",
			Group{Self: "a", Servers: suffrage(abc, "d", Nonvoter), Want: []string{"b", "c", "d"}, Alive: all,
				CaughtUp: all},
			Step{}},
		{"removing comes before adding",
			Group{Self: "a", Servers: voters("a", "b", "c", "e"), Want: []string{"a", "b", "c", "d"}, Alive: all,
				CaughtUp: all},
			Step{Remove, "e"}},
		{"a wanted node that is alive is added as a non-voter, in sorted order",
			Group{Self: "a", Servers: abc, Want: []string{"a", "b", "c", "d", "e"}, Alive: all, CaughtUp: all},
			Step{AddNonvoter, "d"}},
		{"a wanted node that is down is not added",
			Group{Self: "a", Servers: abc, Want: []string{"a", "b", "c", "d"}, Alive: set("a", "b", "c"), CaughtUp: all},
			Step{}},
		{"adding comes before promoting",
			Group{Self: "a", Servers: suffrage(voters("a"), "b", Nonvoter), Want: []string{"a", "b", "c"}, Alive: all,
				CaughtUp: all},
			Step{AddNonvoter, "c"}},
		{"with too few voters a live caught-up non-voter is promoted",
			Group{Self: "a", Servers: suffrage(suffrage(voters("a"), "b", Nonvoter), "c", Nonvoter), Want: []string{"a", "b", "c"},
				Alive: all, CaughtUp: set("c")},
			Step{Promote, "c"}},
		{"a non-voter that is down is not promoted",
			Group{Self: "a", Servers: suffrage(suffrage(voters("a"), "b", Nonvoter), "c", Nonvoter), Want: []string{"a", "b", "c"},
				Alive: set("a", "c"), CaughtUp: all},
			Step{Promote, "c"}},
		{"a non-voter not caught up is not promoted",
			Group{Self: "a", Servers: suffrage(suffrage(voters("a"), "b", Nonvoter), "c", Nonvoter), Want: []string{"a", "b", "c"},
				Alive: all, CaughtUp: set("a")},
			Step{}},
		{"a staging server is not promoted",
			Group{Self: "a", Servers: suffrage(suffrage(voters("a"), "b", Staging), "c", Nonvoter), Want: []string{"a", "b", "c"},
				Alive: set("a", "b"), CaughtUp: all},
			Step{}},
		{"a staging server does not count as a voter",
			Group{Self: "a", Servers: suffrage(abc, "d", Staging), Want: []string{"a", "b", "c", "d"}, Alive: all,
				CaughtUp: all},
			Step{}},
		{"an even count of members keeps an odd count of voters",
			Group{Self: "a", Servers: suffrage(abc, "d", Nonvoter), Want: []string{"a", "b", "c", "d"}, Alive: all,
				CaughtUp: all},
			Step{}},
		{"no more than five vote",
			Group{Self: "a", Servers: suffrage(voters("a", "b", "c", "d", "e"), "f", Nonvoter),
				Want: []string{"a", "b", "c", "d", "e", "f"}, Alive: all, CaughtUp: all},
			Step{}},
		{"with too many voters the first live one other than the leader is demoted",
			Group{Self: "b", Servers: voters("a", "b", "c", "d"), Want: []string{"a", "b", "c", "d"}, Alive: all,
				CaughtUp: all},
			Step{Demote, "a"}},
		{"with too many voters the leader is not demoted",
			Group{Self: "a", Servers: voters("a", "b", "c", "d"), Want: []string{"a", "b", "c", "d"}, Alive: all,
				CaughtUp: all},
			Step{Demote, "b"}},
		{"with too many voters the last dead one is demoted",
			Group{Self: "a", Servers: voters("a", "b", "c", "d", "e", "f"), Want: []string{"a", "b", "c", "d", "e", "f"},
				Alive: set("a", "b", "e"), CaughtUp: all},
			Step{Demote, "f"}},
		{"a dead voter is demoted before a live one listed after it",
			Group{Self: "a", Servers: voters("a", "b", "c", "d"), Want: []string{"a", "b", "c", "d"},
				Alive: set("a", "c", "d"), CaughtUp: all},
			Step{Demote, "b"}},
		{"a single member stays the only voter",
			Group{Self: "a", Servers: voters("a"), Want: []string{"a"}, Alive: all, CaughtUp: all},
			Step{}},
	})
}

func TestAlive(t *testing.T) {
	members := []gossip.Member{
		{ID: "a", State: gossip.Alive},
		{ID: "s", State: gossip.Suspect},
		{ID: "d", State: gossip.Dead},
		{ID: "l", State: gossip.Left},
	}
	got := Alive(members)
	if want := set("a", "s"); len(got) != len(want) || !got["a"] || !got["s"] {
		t.Errorf("Alive = %v, want %v", got, want)
	}
}

func TestLeft(t *testing.T) {
	for _, tc := range []struct {
		name      string
		ids       []string
		committed bool
		want      bool
	}{
		{"committed without self", []string{"b", "c"}, true, true},
		{"committed with self", []string{"a", "b"}, true, false},
		{"only appended without self", []string{"b", "c"}, false, false},
		{"committed and empty", nil, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Left("a", tc.ids, tc.committed); got != tc.want {
				t.Errorf("Left(a, %q, %v) = %v, want %v", tc.ids, tc.committed, got, tc.want)
			}
		})
	}
}

func TestOpString(t *testing.T) {
	for op, want := range map[Op]string{
		Nothing: "nothing", AddNonvoter: "add non-voter", Promote: "promote", Remove: "remove", Demote: "demote",
		HandOver: "hand over leadership", MoveLeader: "move leadership to the preferred leader",
	} {
		if got := op.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", op, got, want)
		}
	}
}

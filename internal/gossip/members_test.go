package gossip

import (
	"net"
	"testing"

	"github.com/hashicorp/memberlist"
)

// TestMembershipObserve drives the event delegate directly: malformed
// metadata is ignored, and a failure after a leaving flag is a departure.
func TestMembershipObserve(t *testing.T) {
	m := &Membership{log: testGossipLogger(), members: make(map[string]*entry), changes: make(chan struct{}, 1),
		wake: make(chan struct{}, 1), cfg: Config{NodeID: "self"}, addr: "127.0.0.1:1"}
	d := &delegate{m: m}
	node := func(name string, meta []byte) *memberlist.Node {
		return &memberlist.Node{Name: name, Addr: net.IPv4(127, 0, 0, 1), Port: 7946, Meta: meta}
	}
	state := func(id string) (State, bool) {
		mi, ok := byID(m.Members())[id]
		return mi.State, ok
	}

	d.NotifyJoin(node("bad", []byte{9}))
	d.NotifyJoin(node("other", nodeMeta{ID: "someone-else"}.encode()))
	if len(m.Members()) != 0 {
		t.Fatalf("malformed metadata accepted:\n%s", formatView(m.Members()))
	}

	d.NotifyJoin(node("x", nodeMeta{ID: "x", BootID: "1"}.encode()))
	select {
	case <-m.Changes():
	default:
		t.Fatal("no change notification")
	}
	if s, ok := state("x"); !ok || s != Alive {
		t.Fatalf("x: %v %v", s, ok)
	}
	d.NotifyLeave(node("x", nodeMeta{ID: "x", BootID: "1"}.encode()))
	if s, _ := state("x"); s != Dead {
		t.Fatalf("x after failure: %v, want dead", s)
	}
	// A peer's push/pull view says x left: a departure whose leaving flag
	// we missed. Only for the address we saw fail.
	failedAt := byID(m.Members())["x"].Since
	other := node("x", nil)
	other.Port, other.State = 1, memberlist.StateLeft
	_ = d.NotifyMerge([]*memberlist.Node{other})
	if s, _ := state("x"); s != Dead {
		t.Fatalf("x after a view of another address: %v, want dead", s)
	}
	left := node("x", nil)
	left.State = memberlist.StateLeft
	_ = d.NotifyMerge([]*memberlist.Node{left})
	if mi := byID(m.Members())["x"]; mi.State != Left || !mi.Since.Equal(failedAt) {
		t.Fatalf("x after a view of it leaving: %v since %v, want left since %v", mi.State, mi.Since, failedAt)
	}

	d.NotifyJoin(node("x", nodeMeta{ID: "x", BootID: "2"}.encode()))
	d.NotifyUpdate(node("x", nodeMeta{ID: "x", BootID: "2", Leaving: true}.encode()))
	if s, _ := state("x"); s != Alive {
		t.Fatalf("x leaving: %v, want alive", s)
	}
	d.NotifyLeave(node("x", nodeMeta{ID: "x", BootID: "2", Leaving: true}.encode()))
	if s, _ := state("x"); s != Left {
		t.Fatalf("x after leave: %v, want left", s)
	}
	d.NotifyLeave(node("x", []byte("garbage"))) // known member, bad metadata: keeps what it knew
	if s, _ := state("x"); s != Left {
		t.Fatalf("x: %v, want left", s)
	}
}

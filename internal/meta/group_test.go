package meta_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/elcache/elcache/internal/meta"
	"github.com/elcache/elcache/internal/raftnet"
	peerv1 "github.com/elcache/elcache/proto/peer/v1"
	"github.com/elcache/elcache/storage"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// replica is one node's meta group on a real database and transport, with
// no peers: a cluster of one needs no RPC.
type replica struct {
	t   *testing.T
	dir string
	db  *storage.DB
	net *raftnet.Net
	g   *meta.Group
}

const testNode = "0123456789abcdef"

func openReplica(t *testing.T, dir string) *replica {
	t.Helper()
	db, err := storage.Open(storage.Config{Dir: dir + "/db"})
	if err != nil {
		t.Fatal(err)
	}
	rn := raftnet.New(raftnet.Config{LocalID: testNode})
	rc := raft.DefaultConfig()
	rc.LocalID = testNode
	rc.HeartbeatTimeout = 50 * time.Millisecond
	rc.ElectionTimeout = 50 * time.Millisecond
	rc.LeaderLeaseTimeout = 50 * time.Millisecond
	rc.CommitTimeout = 5 * time.Millisecond
	rc.Logger = hclog.NewNullLogger()
	g, err := meta.Open(db, dir, rn.Transport(meta.GroupID), rc)
	if err != nil {
		rn.Close()
		db.Close()
		t.Fatal(err)
	}
	r := &replica{t: t, dir: dir, db: db, net: rn, g: g}
	t.Cleanup(r.close)
	return r
}

// close closes the group, its transport and the database; it may be
// called more than once.
func (r *replica) close() {
	if r.g == nil {
		return
	}
	if err := r.g.Close(); err != nil {
		r.t.Errorf("Close: %v", err)
	}
	r.net.Close()
	r.db.Close()
	r.g = nil
}

// waitFor waits up to 10 s for cond.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestGroupProposeAndReopen(t *testing.T) {
	dir := t.TempDir()
	r := openReplica(t, dir)
	if r.g.Formed() {
		t.Fatal("a new replica reports a formed cluster")
	}
	if st, _ := r.g.Current(); st == nil || st.Revision != 0 {
		t.Fatalf("Current of a new replica = %v, want an empty state", st)
	}
	if err := r.g.Bootstrap([]string{testNode}); err != nil {
		t.Fatal(err)
	}
	if !r.g.Formed() {
		t.Fatal("a bootstrapped replica does not report a formed cluster")
	}
	waitFor(t, "the replica to lead", r.g.IsLeader)
	if got := r.g.Leader(); got != testNode {
		t.Fatalf("Leader = %q, want %q", got, testNode)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, changed := r.g.Current()
	want := &peerv1.ClusterState{MapVersion: 1, PartitionCount: 4,
		Nodes: []*peerv1.NodeRecord{{Id: testNode, State: peerv1.NodeRecord_STATE_ACTIVE}}}
	if err := r.g.Propose(ctx, 0, want); err != nil {
		t.Fatal(err)
	}
	select {
	case <-changed:
	default:
		t.Fatal("the change channel was not closed by a committed proposal")
	}
	st, _ := r.g.Current()
	if st.Revision != 1 || st.MapVersion != 1 || len(st.Nodes) != 1 {
		t.Fatalf("Current = %v, want revision 1 with the proposed state", st)
	}
	if err := r.g.Propose(ctx, 0, &peerv1.ClusterState{MapVersion: 2}); !errors.Is(err, meta.ErrStaleRevision) {
		t.Fatalf("Propose at an old revision: %v, want ErrStaleRevision", err)
	}
	if st, _ := r.g.Current(); st.MapVersion != 1 {
		t.Fatalf("a rejected proposal changed the state: %v", st)
	}
	r.close()

	// A restarted replica has the state on disk: it is formed at once and
	// replays the state.
	r = openReplica(t, dir)
	if !r.g.Formed() {
		t.Fatal("a restarted replica does not report a formed cluster")
	}
	waitFor(t, "the state to replay", func() bool {
		st, _ := r.g.Current()
		return st.Revision == 1
	})
	if st, _ := r.g.Current(); st.MapVersion != 1 || st.PartitionCount != 4 {
		t.Fatalf("replayed state = %v", st)
	}
	waitFor(t, "the replica to lead again", r.g.IsLeader)
	if err := r.g.Propose(ctx, 1, &peerv1.ClusterState{MapVersion: 2}); err != nil {
		t.Fatalf("Propose at the replayed revision: %v", err)
	}
	if st, _ := r.g.Current(); st.Revision != 2 || st.MapVersion != 2 {
		t.Fatalf("Current = %v, want revision 2", st)
	}
}

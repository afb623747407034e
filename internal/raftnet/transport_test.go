package raftnet

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// Transport tests run real hashicorp/raft groups over real gRPC servers on
// 127.0.0.1, several groups sharing each node's port. Set
// ELCACHE_TEST_RAFT_LOG=1 to see raft's log.

func TestTransportReplication(t *testing.T) {
	c := newTCluster(t, 3)
	start := time.Now()
	groups := []uint64{1, 2}
	for _, g := range groups {
		c.bootstrap(g, c.nodes, nil)
	}
	const n = 200
	errs := make(chan error, len(groups))
	for _, g := range groups {
		go func() { errs <- c.tryApplyAll(g, setCommands(fmt.Sprintf("g%d-", g), n, 16)) }()
	}
	for range groups {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}

	for _, g := range groups {
		want := map[string]string{}
		for _, cmd := range setCommands(fmt.Sprintf("g%d-", g), n, 16) {
			k, v, _ := strings.Cut(cmd, "=")
			want[k] = v
		}
		for _, nd := range c.nodes {
			transportWait(t, 10*time.Second, fmt.Sprintf("group %d on %s has every key", g, nd.id), func() bool {
				return nd.fsm(g).equal(want)
			})
		}

		// Heartbeats follow the appends within a heartbeat interval, or
		// later on a loaded machine.
		transportWait(t, 10*time.Second, fmt.Sprintf("group %d sent pipelined appends and heartbeats", g), func() bool {
			s := c.stats(g)
			return s.Pipelined > 0 && s.Heartbeats > 0
		})
		// The leader's Match of every follower reaches its last index.
		var leader *tnode
		transportWait(t, 10*time.Second, fmt.Sprintf("group %d Match reaches the leader's last index", g), func() bool {
			leader = c.waitLeader(g)
			lt, last := leader.rn.Transport(g), leader.raft(g).LastIndex()
			for _, f := range c.nodes {
				if f == leader {
					continue
				}
				idx, ack := lt.Match(f.id)
				if idx < last {
					return false
				}
				if ack.Before(start) || ack.After(time.Now()) {
					t.Fatalf("group %d Match(%s) ack sent at %v, want between test start and now", g, f.id, ack)
				}
			}
			return true
		})
		commit := leader.raft(g).CommitIndex()
		for _, f := range c.nodes {
			if f == leader {
				continue
			}
			ft := f.rn.Transport(g)
			transportWait(t, 5*time.Second, fmt.Sprintf("group %d LeaderCommit on %s reaches %d", g, f.id, commit), func() bool {
				idx, _ := ft.LeaderCommit()
				return idx >= commit
			})
			if _, at := ft.LeaderCommit(); at.Before(start) || at.After(time.Now()) {
				t.Errorf("group %d LeaderCommit on %s at %v, want between test start and now", g, f.id, at)
			}
			transportWait(t, 5*time.Second, fmt.Sprintf("group %d heartbeats on the fast path on %s", g, f.id), func() bool {
				return ft.Stats().HeartbeatsFast > 0
			})
		}
		if idx, at := leader.rn.Transport(g).Match("no-such-node"); idx != 0 || !at.IsZero() {
			t.Errorf("Match of an unknown peer = %d, %v; want zero", idx, at)
		}
	}
}

func TestTransportSnapshotInstall(t *testing.T) {
	c := newTCluster(t, 3)
	small := func(rc *raft.Config) {
		rc.TrailingLogs = 8
		rc.SnapshotThreshold = 16
	}
	// Group 1 starts on two nodes; group 2 runs on all three meanwhile.
	c.bootstrap(1, c.nodes[:2], small)
	c.bootstrap(2, c.nodes, small)
	other := make(chan error, 1)
	go func() { other <- c.tryApplyAll(2, setCommands("g2-", 100, 16)) }()
	// Over 1 MiB of state, so the snapshot travels in several chunks.
	cmds := append(setCommands("g1-", 100, 16), setCommands("big-", 3, 600<<10)...)
	c.applyAll(1, cmds)
	if err := <-other; err != nil {
		t.Fatal(err)
	}

	// Both members snapshot, so whichever leads has a compacted log.
	for _, nd := range c.nodes[:2] {
		// Nothing new: it installed the other's snapshot while lagging.
		if err := nd.raft(1).Snapshot().Error(); err != nil && !errors.Is(err, raft.ErrNothingNewToSnapshot) {
			t.Fatalf("snapshot: %v", err)
		}
		if first, _ := nd.logs(1).FirstIndex(); first <= 1 {
			t.Fatalf("log starts at %d after the snapshot: want it compacted", first)
		}
	}

	joiner := c.nodes[2]
	c.start(joiner, 1, nil, small)
	// The joiner knows no leader until it is added: leave it out.
	c.onLeader(1, "add voter", func(r *raft.Raft) error {
		return r.AddVoter(raft.ServerID(joiner.id), raft.ServerAddress(joiner.id), 0, 10*time.Second).Error()
	}, joiner)
	want := map[string]string{}
	for _, cmd := range cmds {
		k, v, _ := strings.Cut(cmd, "=")
		want[k] = v
	}
	transportWait(t, 15*time.Second, "the new replica restores the snapshot", func() bool {
		return joiner.fsm(1).equal(want)
	})
	if r := joiner.fsm(1).restoreCount(); r == 0 {
		t.Errorf("the new replica caught up without restoring a snapshot")
	}
	if s := c.stats(1); s.Snapshots == 0 {
		t.Errorf("group stats %+v: want a snapshot sent", s)
	}

	// It keeps replicating after the install.
	c.applyAll(1, []string{"after=snapshot"})
	want["after"] = "snapshot"
	for _, nd := range c.nodes {
		transportWait(t, 10*time.Second, "every replica has the entry after the snapshot", func() bool {
			return nd.fsm(1).equal(want)
		})
	}
}

func TestTransportIsolatedLeader(t *testing.T) {
	c := newTCluster(t, 3)
	for _, g := range []uint64{1, 2} {
		c.bootstrap(g, c.nodes, nil)
	}
	old := c.waitLeader(1)
	c.applyAll(1, []string{"before=isolation"})

	c.isolate(old)
	var others []*tnode
	for _, nd := range c.nodes {
		if nd != old {
			others = append(others, nd)
		}
	}

	// Blocked traffic fails at once, naming the peer.
	var resp raft.RequestVoteResponse
	began := time.Now()
	err := old.rn.Transport(1).RequestVote(raft.ServerID(others[0].id), raft.ServerAddress(others[0].id), &raft.RequestVoteRequest{Term: 1}, &resp)
	if !errors.Is(err, ErrPeerBlocked) || !strings.Contains(err.Error(), others[0].id) {
		t.Errorf("RequestVote to a blocked peer: %v; want ErrPeerBlocked naming %s", err, others[0].id)
	}
	if d := time.Since(began); d > time.Second {
		t.Errorf("RequestVote to a blocked peer took %v", d)
	}

	transportWait(t, 10*time.Second, "the isolated leader steps down", func() bool {
		return old.raft(1).State() != raft.Leader && old.raft(2).State() != raft.Leader
	})
	for _, g := range []uint64{1, 2} {
		nl := c.waitLeader(g, old)
		if nl == old {
			t.Fatalf("group %d: the isolated node still leads", g)
		}
	}
	c.applyAll(1, []string{"during=isolation"}, old)
	if _, ok := old.fsm(1).get("during"); ok {
		t.Fatalf("the isolated node applied an entry written during its isolation")
	}

	c.heal()
	want := map[string]string{"before": "isolation", "during": "isolation"}
	transportWait(t, 10*time.Second, "the healed node catches up", func() bool {
		return old.fsm(1).equal(want)
	})
	c.waitLeader(1)
}

func TestTransportLeadershipTransfer(t *testing.T) {
	c := newTCluster(t, 3)
	for _, g := range []uint64{1, 2} {
		c.bootstrap(g, c.nodes, nil)
	}
	for _, g := range []uint64{1, 2} {
		// Retried: an election of its own may overtake a transfer on a
		// loaded machine.
		var target *tnode
		transportWait(t, 20*time.Second, fmt.Sprintf("group %d: leadership moves where it was sent", g), func() bool {
			old := c.waitLeader(g)
			target = c.nodes[(nodeIndex(c.nodes, old)+1)%len(c.nodes)]
			if err := old.raft(g).LeadershipTransferToServer(raft.ServerID(target.id), raft.ServerAddress(target.id)).Error(); err != nil {
				t.Logf("group %d transfer: %v", g, err)
				return false
			}
			return c.waitLeader(g) == target
		})
		if s := c.stats(g); s.TimeoutNows == 0 {
			t.Errorf("group %d stats %+v: want a TimeoutNow sent", g, s)
		}
		c.applyAll(g, []string{"after=transfer"})
	}
}

// from appends their leader sent under a lease, and a leadership transfer
// is recorded for the lease rule.
func TestTransportLeaseProofs(t *testing.T) {
	c := newTCluster(t, 3)
	c.bootstrap(1, c.nodes, nil)
	leader := c.waitLeader(1)
	c.applyAll(1, setCommands("a", 5, 10))
	for _, nd := range c.nodes {
		if idx, at := nd.groupOf(t, 1).FreshCommit(); idx != 0 || !at.IsZero() {
			t.Fatalf("without a lease, follower recorded fresh commit %d at %v", idx, at)
		}
	}
	leader.groupOf(t, 1).SetLeaseCheck(func() bool { return true })
	c.applyAll(1, setCommands("b", 5, 10))
	commit := leader.raft(1).CommitIndex()
	for _, nd := range c.nodes {
		if nd == leader {
			continue
		}
		transportWait(t, 10*time.Second, "a follower records the leader's commit index under lease", func() bool {
			idx, at := nd.groupOf(t, 1).FreshCommit()
			return idx >= commit && time.Since(at) < 5*time.Second
		})
	}

	if at := leader.groupOf(t, 1).TransferAt(); !at.IsZero() {
		t.Fatalf("TransferAt = %v before any transfer", at)
	}
	before := time.Now()
	target := c.nodes[(nodeIndex(c.nodes, leader)+1)%len(c.nodes)]
	transportWait(t, 20*time.Second, "a transfer sends TimeoutNow", func() bool {
		err := leader.raft(1).LeadershipTransferToServer(raft.ServerID(target.id), raft.ServerAddress(target.id)).Error()
		return err == nil || !leader.groupOf(t, 1).TransferAt().IsZero()
	})
	if at := leader.groupOf(t, 1).TransferAt(); at.Before(before) {
		t.Errorf("TransferAt = %v, want after %v", at, before)
	}
}

// TestTransportVoteQuiet: nodes that started less than VoteAfter ago deny
// every vote, so no leader is elected among them until it passes.
func TestTransportVoteQuiet(t *testing.T) {
	c := newTCluster(t, 3)
	quietUntil := time.Now().Add(1500 * time.Millisecond)
	for _, nd := range c.nodes {
		// Set before any group runs: nothing reads it yet.
		nd.rn.cfg.VoteAfter = quietUntil
	}
	c.bootstrap(1, c.nodes, nil)
	for time.Until(quietUntil) > 200*time.Millisecond {
		for _, nd := range c.nodes {
			if nd.raft(1).State() == raft.Leader {
				t.Fatalf("%s was elected %v before the quiet period ended", nd.id, time.Until(quietUntil))
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	c.waitLeader(1)
	if time.Now().Before(quietUntil) {
		t.Fatalf("a leader was elected before the quiet period ended")
	}
}

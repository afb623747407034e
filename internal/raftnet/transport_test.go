package raftnet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	peerv1 "github.com/elcache/elcache/proto/peer/v1"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"
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

		if s := c.stats(g); s.Pipelined == 0 || s.Heartbeats == 0 {
			t.Errorf("group %d stats %+v: want pipelined appends and heartbeats", g, s)
		}
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

func TestTransportUnknownGroup(t *testing.T) {
	c := newTCluster(t, 2)
	a, b := c.nodes[0], c.nodes[1]
	bAddr := raft.ServerAddress(b.id)
	bID := raft.ServerID(b.id)

	// A group b never had, and one whose transport b has closed.
	b.rn.Transport(7).Close()
	for _, g := range []uint64{99, 7} {
		tr := a.rn.Transport(g)
		cases := []struct {
			name string
			call func() error
		}{
			{"AppendEntries", func() error {
				return tr.AppendEntries(bID, bAddr, &raft.AppendEntriesRequest{Term: 1, PrevLogEntry: 1}, &raft.AppendEntriesResponse{})
			}},
			{"Heartbeat", func() error {
				return tr.AppendEntries(bID, bAddr, &raft.AppendEntriesRequest{Term: 1, RPCHeader: raft.RPCHeader{Addr: []byte(a.id)}}, &raft.AppendEntriesResponse{})
			}},
			{"RequestVote", func() error {
				return tr.RequestVote(bID, bAddr, &raft.RequestVoteRequest{Term: 1}, &raft.RequestVoteResponse{})
			}},
			{"RequestPreVote", func() error {
				return tr.RequestPreVote(bID, bAddr, &raft.RequestPreVoteRequest{Term: 1}, &raft.RequestPreVoteResponse{})
			}},
			{"TimeoutNow", func() error {
				return tr.TimeoutNow(bID, bAddr, &raft.TimeoutNowRequest{}, &raft.TimeoutNowResponse{})
			}},
			{"InstallSnapshot", func() error {
				data := strings.Repeat("x", 3*snapshotChunkBytes+5)
				return tr.InstallSnapshot(bID, bAddr, &raft.InstallSnapshotRequest{Term: 1, SnapshotVersion: 1, Size: int64(len(data))},
					&raft.InstallSnapshotResponse{}, strings.NewReader(data))
			}},
			{"Pipeline", func() error {
				p, err := tr.AppendEntriesPipeline(bID, bAddr)
				if err != nil {
					return err
				}
				defer p.Close()
				f, err := p.AppendEntries(&raft.AppendEntriesRequest{Term: 1, PrevLogEntry: 1}, &raft.AppendEntriesResponse{})
				if err != nil {
					return err
				}
				got := <-p.Consumer()
				if got != f {
					t.Errorf("pipeline delivered another future")
				}
				return got.Error()
			}},
		}
		for _, tc := range cases {
			t.Run(fmt.Sprintf("group%d/%s", g, tc.name), func(t *testing.T) {
				err := tc.call()
				if status.Code(err) != codes.NotFound {
					t.Fatalf("got %v (code %v), want NotFound", err, status.Code(err))
				}
				if want := fmt.Sprintf("no replica of group %d on this node", g); !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
				if !strings.HasPrefix(err.Error(), "raftnet: ") {
					t.Errorf("error %q does not start with raftnet: ", err)
				}
			})
		}
	}

	// A raw client gets the same.
	cc, err := a.rn.Conn(b.id, ClassRaft)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = peerv1.NewRaftClient(cc).RequestVote(ctx, &peerv1.RequestVoteRequest{Group: 12345})
	if status.Code(err) != codes.NotFound {
		t.Fatalf("raw RequestVote: %v, want NotFound", err)
	}
}

// TestTransportLargeAppends makes appends that do not fit in one message
// (the limit lowered to 16 KiB) and checks they arrive split and whole.
func TestTransportLargeAppends(t *testing.T) {
	c := newTCluster(t, 3)
	for _, nd := range c.nodes {
		nd.rn.maxAppendBytes = 16 << 10
	}
	c.bootstrap(1, c.nodes, nil)
	cmds := setCommands("k", 300, 2<<10)
	c.applyAll(1, cmds)
	want := map[string]string{}
	for _, cmd := range cmds {
		k, v, _ := strings.Cut(cmd, "=")
		want[k] = v
	}
	for _, nd := range c.nodes {
		transportWait(t, 10*time.Second, "every replica has every entry", func() bool {
			return nd.fsm(1).equal(want)
		})
	}
	if s := c.stats(1); s.Splits == 0 {
		t.Errorf("stats %+v: want split appends", s)
	}
}

func TestTransportSplitAppend(t *testing.T) {
	rn := New(Config{LocalID: "n0", Logger: slog.New(slog.DiscardHandler)})
	defer rn.Close()
	rn.maxAppendBytes = 4<<10 + 1000
	tr := rn.Transport(1)
	entries := func(sizes ...int) []*raft.Log {
		var es []*raft.Log
		for i, n := range sizes {
			es = append(es, &raft.Log{Index: uint64(11 + i), Term: 2 + uint64(i%2), Data: make([]byte, n)})
		}
		return es
	}
	for _, tc := range []struct {
		name  string
		sizes []int
		parts int
	}{
		{"empty", nil, 1},
		{"fits", []int{100, 100, 100}, 1},
		{"one too big", []int{5000}, 1},
		{"two parts", []int{400, 400, 400}, 2},
		{"big in the middle", []int{100, 5000, 100}, 3},
		{"many", []int{300, 300, 300, 300, 300, 300, 300}, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := &raft.AppendEntriesRequest{Term: 3, PrevLogEntry: 10, PrevLogTerm: 1, LeaderCommitIndex: 9, Entries: entries(tc.sizes...)}
			parts := tr.splitAppend(args)
			if len(parts) != tc.parts {
				t.Fatalf("%d parts, want %d", len(parts), tc.parts)
			}
			var all []*raft.Log
			prev, prevTerm := args.PrevLogEntry, args.PrevLogTerm
			for i, p := range parts {
				if p.PrevLogEntry != prev || p.PrevLogTerm != prevTerm {
					t.Errorf("part %d follows %d/%d, want %d/%d", i, p.PrevLogEntry, p.PrevLogTerm, prev, prevTerm)
				}
				if p.Term != args.Term || p.LeaderCommitIndex != args.LeaderCommitIndex {
					t.Errorf("part %d lost the term or commit index", i)
				}
				if n := len(p.Entries); n > 0 {
					prev, prevTerm = p.Entries[n-1].Index, p.Entries[n-1].Term
				}
				all = append(all, p.Entries...)
			}
			if len(all) != len(args.Entries) {
				t.Fatalf("parts carry %d entries, want %d", len(all), len(args.Entries))
			}
			for i := range all {
				if all[i] != args.Entries[i] {
					t.Fatalf("entry %d out of place", i)
				}
			}
		})
	}
}

// TestTransportPipeline drives one pipeline by hand: the receiving side's
// consumer channel is read by the test instead of a raft.
func TestTransportPipeline(t *testing.T) {
	c := newTCluster(t, 2)
	a, b := c.nodes[0], c.nodes[1]
	const group = 5
	ta, tb := a.rn.Transport(group), b.rn.Transport(group)

	p, err := ta.AppendEntriesPipeline(raft.ServerID(b.id), raft.ServerAddress(b.id))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	req := func(i uint64) *raft.AppendEntriesRequest {
		return &raft.AppendEntriesRequest{
			RPCHeader:         raft.RPCHeader{ID: []byte(a.id), Addr: []byte(a.id)},
			Term:              3,
			PrevLogEntry:      i,
			PrevLogTerm:       3,
			Entries:           []*raft.Log{{Index: i + 1, Term: 3, Type: raft.LogCommand, Data: []byte(fmt.Sprint(i)), Extensions: []byte("ext"), AppendedAt: time.Now()}},
			LeaderCommitIndex: i,
		}
	}
	// serve answers the next append that reaches b's consumer with
	// LastLog set to its last entry's index.
	serve := func(success bool) *raft.AppendEntriesRequest {
		t.Helper()
		select {
		case rpc := <-tb.Consumer():
			r := rpc.Command.(*raft.AppendEntriesRequest)
			rpc.Respond(&raft.AppendEntriesResponse{Term: r.Term, LastLog: r.Entries[len(r.Entries)-1].Index, Success: success}, nil)
			return r
		case <-time.After(5 * time.Second):
			t.Fatal("no append reached the peer")
			return nil
		}
	}
	serveOne := func() *raft.AppendEntriesRequest { t.Helper(); return serve(true) }

	var sent []*raft.AppendEntriesRequest
	var futures []raft.AppendFuture
	for i := uint64(1); i <= 2; i++ {
		r := req(i)
		f, err := p.AppendEntries(r, &raft.AppendEntriesResponse{})
		if err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
		sent, futures = append(sent, r), append(futures, f)
	}
	// Two are in flight: the third waits for an answer.
	third := make(chan error, 1)
	r3 := req(3)
	var f3 raft.AppendFuture
	go func() {
		var err error
		f3, err = p.AppendEntries(r3, &raft.AppendEntriesResponse{})
		third <- err
	}()
	select {
	case err := <-third:
		t.Fatalf("a third append went out with two unanswered (err %v)", err)
	case <-time.After(200 * time.Millisecond):
	}
	got := serveOne()
	if got.PrevLogEntry != 1 || string(got.Entries[0].Data) != "1" || string(got.Entries[0].Extensions) != "ext" ||
		!got.Entries[0].AppendedAt.Equal(sent[0].Entries[0].AppendedAt) || string(got.Addr) != a.id {
		t.Errorf("peer got %+v, want a copy of %+v", got, sent[0])
	}
	select {
	case err := <-third:
		if err != nil {
			t.Fatalf("third append: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the third append stayed blocked after an answer")
	}
	sent, futures = append(sent, r3), append(futures, f3)
	serveOne()
	serveOne()
	for i, want := range futures {
		select {
		case f := <-p.Consumer():
			if f != want || f.Request() != sent[i] {
				t.Fatalf("future %d out of order", i)
			}
			if err := f.Error(); err != nil || !f.Response().Success || f.Response().LastLog != sent[i].Entries[0].Index {
				t.Fatalf("future %d: err %v, response %+v", i, err, f.Response())
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("future %d never delivered", i)
		}
	}
	if idx, at := ta.Match(b.id); idx != 4 || at.IsZero() {
		t.Errorf("Match = %d, %v; want 4 and a send time", idx, at)
	}
	if idx, at := tb.LeaderCommit(); idx != 3 || at.IsZero() {
		t.Errorf("LeaderCommit = %d, %v; want 3 and a time", idx, at)
	}
	if s := ta.Stats(); s.Pipelined != 3 {
		t.Errorf("stats %+v: want 3 pipelined", s)
	}

	// An append too large for one message goes in parts (two 1 KiB
	// entries each here); its future completes once, with the last part's
	// answer or the first failed one's.
	a.rn.maxAppendBytes = 4<<10 + 100 + 2*(1<<10+64) // header, ids, two entries
	big := func(prev uint64) *raft.AppendEntriesRequest {
		r := req(prev)
		r.Entries = nil
		for i := uint64(1); i <= 5; i++ {
			r.Entries = append(r.Entries, &raft.Log{Index: prev + i, Term: 3, Data: make([]byte, 1<<10)})
		}
		return r
	}
	for _, fail := range []bool{false, true} {
		r := big(20)
		type sent struct {
			f   raft.AppendFuture
			err error
		}
		done := make(chan sent, 1)
		go func() {
			f, err := p.AppendEntries(r, &raft.AppendEntriesResponse{})
			done <- sent{f, err}
		}()
		for i, wantPrev := range []uint64{20, 22, 24} {
			if got := serve(!(fail && i == 0)); got.PrevLogEntry != wantPrev || got.PrevLogTerm != 3 {
				t.Fatalf("part %d follows %d/%d, want %d/3", i, got.PrevLogEntry, got.PrevLogTerm, wantPrev)
			}
		}
		s := <-done
		if s.err != nil {
			t.Fatal(s.err)
		}
		select {
		case f := <-p.Consumer():
			wantLast := uint64(25)
			if fail {
				wantLast = 22
			}
			if f != s.f || f.Error() != nil || f.Response().Success == fail || f.Response().LastLog != wantLast {
				t.Fatalf("split append (first part fails: %v): response %+v, err %v", fail, f.Response(), f.Error())
			}
		case <-time.After(5 * time.Second):
			t.Fatal("split append never completed")
		}
	}
	a.rn.maxAppendBytes = MaxMsgBytes

	// A blocked peer fails the send at once and the pipeline with it.
	a.block(b.id)
	_, err = p.AppendEntries(req(4), &raft.AppendEntriesResponse{})
	if !errors.Is(err, ErrPeerBlocked) || !strings.Contains(err.Error(), b.id) {
		t.Fatalf("append to a blocked peer: %v", err)
	}
	a.unblock(b.id)
	if _, err := p.AppendEntries(req(5), &raft.AppendEntriesResponse{}); err == nil {
		t.Fatal("a failed pipeline accepted an append")
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}

	// A stream error fails the outstanding futures, in order.
	p2, err := ta.AppendEntriesPipeline(raft.ServerID(b.id), raft.ServerAddress(b.id))
	if err != nil {
		t.Fatal(err)
	}
	defer p2.Close()
	f1, err := p2.AppendEntries(req(10), &raft.AppendEntriesResponse{})
	if err != nil {
		t.Fatal(err)
	}
	f2, err := p2.AppendEntries(req(11), &raft.AppendEntriesResponse{})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-tb.Consumer(): // taken, never answered
	case <-time.After(5 * time.Second):
		t.Fatal("no append reached the peer")
	}
	tb.Close()
	for i, want := range []raft.AppendFuture{f1, f2} {
		select {
		case f := <-p2.Consumer():
			if f != want {
				t.Fatalf("failed future %d out of order", i)
			}
			if f.Error() == nil || f.Response().Success {
				t.Fatalf("future %d succeeded after the peer closed", i)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("failed future %d never delivered", i)
		}
	}
	// Closing the transport closes what is left.
	ta.Close()
	if _, err := ta.AppendEntriesPipeline(raft.ServerID(b.id), raft.ServerAddress(b.id)); !errors.Is(err, raft.ErrTransportShutdown) {
		t.Fatalf("pipeline on a closed transport: %v", err)
	}
}

func TestTransportConns(t *testing.T) {
	addrs := map[string]string{"n1": "127.0.0.1:1"}
	var mu sync.Mutex
	rn := New(Config{
		LocalID: "n0",
		Resolve: func(id string) (string, bool) {
			mu.Lock()
			defer mu.Unlock()
			a, ok := addrs[id]
			return a, ok
		},
		Logger: slog.New(slog.DiscardHandler),
	})
	defer rn.Close()

	raftConn, err := rn.Conn("n1", ClassRaft)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := rn.Conn("n1", ClassRaft)
	snap, _ := rn.Conn("n1", ClassSnapshot)
	fwd, _ := rn.Conn("n1", ClassForward)
	if again != raftConn {
		t.Error("the same (peer, class) got a second connection")
	}
	if snap == raftConn || fwd == raftConn || snap == fwd {
		t.Error("traffic classes share a connection")
	}

	mu.Lock()
	addrs["n1"] = "127.0.0.1:2"
	mu.Unlock()
	moved, _ := rn.Conn("n1", ClassRaft)
	if moved == raftConn || moved.CanonicalTarget() == raftConn.CanonicalTarget() {
		t.Error("no redial after the address changed")
	}
	if s := raftConn.GetState(); s != connectivity.Shutdown {
		t.Errorf("old connection is %v, want shut down", s)
	}

	if _, err := rn.Conn("n9", ClassRaft); err == nil || !strings.HasPrefix(err.Error(), "raftnet: ") {
		t.Errorf("unknown node: %v", err)
	}
	tr := rn.Transport(1)
	if tr != rn.Transport(1) {
		t.Error("Transport returned a second transport for a group")
	}
	if err := rn.Close(); err != nil {
		t.Fatal(err)
	}
	if err := rn.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	if _, err := rn.Conn("n1", ClassRaft); err == nil {
		t.Error("Conn after Close succeeded")
	}
	if err := tr.RequestVote("n1", "n1", &raft.RequestVoteRequest{}, &raft.RequestVoteResponse{}); !errors.Is(err, raft.ErrTransportShutdown) {
		t.Errorf("RPC after Close: %v", err)
	}
	if tr2 := rn.Transport(2); tr2.ctx.Err() == nil {
		t.Error("Transport after Close returned an open transport")
	}
}

// ---- a cluster of in-process nodes ----

type tcluster struct {
	t     *testing.T
	nodes []*tnode

	mu    sync.Mutex
	addrs map[string]string
}

// tnode is one node: a gRPC server, its Net and its raft groups.
type tnode struct {
	c      *tcluster
	id     string
	dir    string
	rn     *Net
	srv    *grpc.Server
	served chan struct{}

	blockMu sync.Mutex
	blocked map[string]bool

	mu     sync.Mutex
	groups map[uint64]*tgroup
}

type tgroup struct {
	raft *raft.Raft
	fsm  *kvFSM
	logs *raft.InmemStore
}

func newTCluster(t *testing.T, n int) *tcluster {
	c := &tcluster{t: t, addrs: map[string]string{}}
	t.Cleanup(c.shutdown)
	for range n {
		c.addNode()
	}
	return c
}

func (c *tcluster) addNode() *tnode {
	c.t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		c.t.Fatal(err)
	}
	nd := &tnode{
		c:       c,
		id:      fmt.Sprintf("%016x", rand.Uint64()),
		dir:     c.t.TempDir(),
		served:  make(chan struct{}),
		blocked: map[string]bool{},
		groups:  map[uint64]*tgroup{},
	}
	nd.rn = New(Config{
		LocalID:    nd.id,
		Resolve:    c.resolve,
		Allow:      nd.allow,
		Logger:     slog.New(slog.DiscardHandler),
		RPCTimeout: 2 * time.Second,
	})
	nd.srv = grpc.NewServer(
		grpc.MaxRecvMsgSize(MaxMsgBytes),
		grpc.MaxSendMsgSize(MaxMsgBytes),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
	)
	nd.rn.Register(nd.srv)
	c.mu.Lock()
	c.addrs[nd.id] = lis.Addr().String()
	c.mu.Unlock()
	go func() {
		defer close(nd.served)
		nd.srv.Serve(lis)
	}()
	c.nodes = append(c.nodes, nd)
	return nd
}

func (c *tcluster) resolve(id string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	a, ok := c.addrs[id]
	return a, ok
}

// shutdown stops every raft (all at once, so none waits on a peer that
// already left), then the transports and servers.
func (c *tcluster) shutdown() {
	var wg sync.WaitGroup
	for _, nd := range c.nodes {
		nd.mu.Lock()
		for _, g := range nd.groups {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := g.raft.Shutdown().Error(); err != nil {
					c.t.Errorf("raft shutdown: %v", err)
				}
			}()
		}
		nd.mu.Unlock()
	}
	wg.Wait()
	for _, nd := range c.nodes {
		if err := nd.rn.Close(); err != nil {
			c.t.Errorf("close Net: %v", err)
		}
		nd.srv.Stop()
		<-nd.served
	}
}

func transportRaftConfig(id string) *raft.Config {
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(id)
	rc.HeartbeatTimeout = 150 * time.Millisecond
	rc.ElectionTimeout = 150 * time.Millisecond
	rc.LeaderLeaseTimeout = 100 * time.Millisecond
	rc.CommitTimeout = 5 * time.Millisecond
	rc.Logger = hclog.NewNullLogger()
	if os.Getenv("ELCACHE_TEST_RAFT_LOG") != "" {
		rc.Logger = hclog.New(&hclog.LoggerOptions{Name: "raft-" + id[:6], Level: hclog.Debug, Output: os.Stderr})
	}
	return rc
}

// start runs group on nd; bootstrap, when set, is the initial membership.
func (c *tcluster) start(nd *tnode, group uint64, bootstrap []*tnode, tweak func(*raft.Config)) {
	c.t.Helper()
	rc := transportRaftConfig(nd.id)
	if tweak != nil {
		tweak(rc)
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(filepath.Join(nd.dir, fmt.Sprint(group)), 2, rc.Logger)
	if err != nil {
		c.t.Fatal(err)
	}
	g := &tgroup{fsm: &kvFSM{kv: map[string]string{}}, logs: raft.NewInmemStore()}
	g.raft, err = raft.NewRaft(rc, g.fsm, g.logs, g.logs, snaps, nd.rn.Transport(group))
	if err != nil {
		c.t.Fatal(err)
	}
	nd.mu.Lock()
	nd.groups[group] = g
	nd.mu.Unlock()
	if bootstrap != nil {
		var conf raft.Configuration
		for _, m := range bootstrap {
			conf.Servers = append(conf.Servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(m.id), Address: raft.ServerAddress(m.id)})
		}
		if err := g.raft.BootstrapCluster(conf).Error(); err != nil {
			c.t.Fatal(err)
		}
	}
}

func (c *tcluster) bootstrap(group uint64, members []*tnode, tweak func(*raft.Config)) {
	for _, nd := range members {
		c.start(nd, group, members, tweak)
	}
}

// waitLeader returns the node that leads group, once every node running
// the group and not in skip agrees on it.
func (c *tcluster) waitLeader(group uint64, skip ...*tnode) *tnode {
	c.t.Helper()
	leader, err := c.findLeader(group, skip...)
	if err != nil {
		c.t.Fatal(err)
	}
	return leader
}

// findLeader is waitLeader for any goroutine: it returns an error.
func (c *tcluster) findLeader(group uint64, skip ...*tnode) (*tnode, error) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		if leader := c.agreedLeader(group, skip); leader != nil {
			return leader, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("group %d has no leader all agree on after 10s", group)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (c *tcluster) agreedLeader(group uint64, skip []*tnode) *tnode {
	var leader *tnode
	var members []*tnode
	for _, nd := range c.nodes {
		if nd.group(group) == nil || hasNode(skip, nd) {
			continue
		}
		members = append(members, nd)
		if nd.raft(group).State() == raft.Leader {
			if leader != nil {
				return nil
			}
			leader = nd
		}
	}
	if leader == nil {
		return nil
	}
	for _, nd := range members {
		if _, id := nd.raft(group).LeaderWithID(); string(id) != leader.id {
			return nil
		}
	}
	return leader
}

// applyAll applies cmds to group through its leader, retrying what fails
// across leader changes (the commands are idempotent).
func (c *tcluster) applyAll(group uint64, cmds []string, skip ...*tnode) {
	c.t.Helper()
	if err := c.tryApplyAll(group, cmds, skip...); err != nil {
		c.t.Fatal(err)
	}
}

// tryApplyAll is applyAll for any goroutine: it returns an error.
func (c *tcluster) tryApplyAll(group uint64, cmds []string, skip ...*tnode) error {
	deadline := time.Now().Add(20 * time.Second)
	pending := cmds
	for len(pending) > 0 {
		if time.Now().After(deadline) {
			return fmt.Errorf("group %d: %d of %d commands not applied", group, len(pending), len(cmds))
		}
		leader, err := c.findLeader(group, skip...)
		if err != nil {
			return err
		}
		r := leader.raft(group)
		futures := make([]raft.ApplyFuture, len(pending))
		for i, cmd := range pending {
			futures[i] = r.Apply([]byte(cmd), 5*time.Second)
		}
		var failed []string
		for i, f := range futures {
			if f.Error() != nil {
				failed = append(failed, pending[i])
			}
		}
		pending = failed
	}
	return nil
}

// onLeader runs fn on group's leader, again on the next leader while it
// fails because leadership moved.
func (c *tcluster) onLeader(group uint64, what string, fn func(*raft.Raft) error, skip ...*tnode) {
	c.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := fn(c.waitLeader(group, skip...).raft(group))
		if err == nil {
			return
		}
		if !errors.Is(err, raft.ErrNotLeader) && !errors.Is(err, raft.ErrLeadershipLost) || time.Now().After(deadline) {
			c.t.Fatalf("group %d %s: %v", group, what, err)
		}
	}
}

// stats sums group's transport counters over every node.
func (c *tcluster) stats(group uint64) Stats {
	var sum Stats
	for _, nd := range c.nodes {
		if nd.group(group) == nil {
			continue
		}
		s := nd.rn.Transport(group).Stats()
		sum.Heartbeats += s.Heartbeats
		sum.Appends += s.Appends
		sum.Pipelined += s.Pipelined
		sum.Splits += s.Splits
		sum.Votes += s.Votes
		sum.PreVotes += s.PreVotes
		sum.Snapshots += s.Snapshots
		sum.TimeoutNows += s.TimeoutNows
		sum.HeartbeatsFast += s.HeartbeatsFast
	}
	return sum
}

// isolate cuts nd off from every other node, both ways.
func (c *tcluster) isolate(nd *tnode) {
	for _, o := range c.nodes {
		if o != nd {
			nd.block(o.id)
			o.block(nd.id)
		}
	}
}

func (c *tcluster) heal() {
	for _, nd := range c.nodes {
		nd.blockMu.Lock()
		clear(nd.blocked)
		nd.blockMu.Unlock()
	}
}

func (nd *tnode) allow(id string) bool {
	nd.blockMu.Lock()
	defer nd.blockMu.Unlock()
	return !nd.blocked[id]
}

func (nd *tnode) block(id string) {
	nd.blockMu.Lock()
	nd.blocked[id] = true
	nd.blockMu.Unlock()
}

func (nd *tnode) unblock(id string) {
	nd.blockMu.Lock()
	delete(nd.blocked, id)
	nd.blockMu.Unlock()
}

func (nd *tnode) group(g uint64) *tgroup {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	return nd.groups[g]
}

func (nd *tnode) raft(g uint64) *raft.Raft       { return nd.group(g).raft }
func (nd *tnode) fsm(g uint64) *kvFSM            { return nd.group(g).fsm }
func (nd *tnode) logs(g uint64) *raft.InmemStore { return nd.group(g).logs }
func hasNode(nodes []*tnode, nd *tnode) bool     { return nodeIndex(nodes, nd) >= 0 }

func nodeIndex(nodes []*tnode, nd *tnode) int {
	for i, n := range nodes {
		if n == nd {
			return i
		}
	}
	return -1
}

// setCommands returns n "key=value" commands with values of size bytes.
func setCommands(prefix string, n, size int) []string {
	cmds := make([]string, n)
	for i := range cmds {
		v := fmt.Sprintf("v%d-", i)
		v += strings.Repeat("x", max(0, size-len(v)))
		cmds[i] = fmt.Sprintf("%s%d=%s", prefix, i, v)
	}
	return cmds
}

// transportWait polls cond until it holds or timeout passes.
func transportWait(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting until %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// kvFSM is a key-value map that applies "key=value" commands and can
// snapshot and restore itself.
type kvFSM struct {
	mu       sync.Mutex
	kv       map[string]string
	restores int
}

func (f *kvFSM) Apply(l *raft.Log) any {
	if l.Type != raft.LogCommand {
		return nil
	}
	k, v, _ := strings.Cut(string(l.Data), "=")
	f.mu.Lock()
	f.kv[k] = v
	f.mu.Unlock()
	return nil
}

func (f *kvFSM) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	kv := make(map[string]string, len(f.kv))
	for k, v := range f.kv {
		kv[k] = v
	}
	return kvSnapshot(kv), nil
}

func (f *kvFSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	kv := map[string]string{}
	if err := json.NewDecoder(rc).Decode(&kv); err != nil {
		return err
	}
	f.mu.Lock()
	f.kv = kv
	f.restores++
	f.mu.Unlock()
	return nil
}

func (f *kvFSM) get(k string) (string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.kv[k]
	return v, ok
}

func (f *kvFSM) equal(want map[string]string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.kv) != len(want) {
		return false
	}
	for k, v := range want {
		if f.kv[k] != v {
			return false
		}
	}
	return true
}

func (f *kvFSM) restoreCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.restores
}

type kvSnapshot map[string]string

func (s kvSnapshot) Persist(sink raft.SnapshotSink) error {
	if err := json.NewEncoder(sink).Encode(map[string]string(s)); err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

func (s kvSnapshot) Release() {}

// groupOf returns nd's transport for group g.
func (nd *tnode) groupOf(t *testing.T, g uint64) *Transport {
	t.Helper()
	gt, err := nd.rn.lookup(g)
	if err != nil {
		t.Fatal(err)
	}
	return gt
}

// TestTransportLeaseProofs: followers record a fresh commit index only
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

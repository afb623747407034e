package raftnet

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	peerv1 "github.com/elcache/elcache/proto/peer/v1"
	"github.com/hashicorp/raft"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Outgoing RPCs: calls to a group the peer does not host, and appends
// too large for one message.

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

package raftnet

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// The append pipeline, driven by hand.

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

package raftnet

import (
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/raft"
	"google.golang.org/grpc/connectivity"
)

// Pooled peer connections.

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

package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	cachev1 "github.com/elcache/elcache/proto/cache/v1"
)

// startServer starts a single-node server on dataDir and addr and waits
// until it serves. Gossip gets a free port too: the default one may be
// taken by a local cluster.
func startServer(t *testing.T, dataDir, addr string) *proc {
	t.Helper()
	s := newProc(t, "sys", addr, []string{"--data-dir", dataDir, "--grpc-addr", addr, "--gossip-addr", freeAddr(t),
		"--partitions", "8", "--node-name", "sys",
		"--raft-heartbeat-timeout", "100ms", "--raft-election-timeout", "100ms", "--raft-lease-timeout", "50ms", "--raft-commit-timeout", "5ms",
		// Snapshot and truncate the logs often, so that restarts go
		// through snapshot metadata and log tails, not a full replay.
		"--raft-snapshot-interval", "50ms", "--raft-snapshot-threshold", "16", "--raft-trailing-logs", "8"})
	s.start()
	s.waitServing(60 * time.Second)
	return s
}

// Every write acknowledged before a kill -9 is there after a restart on the
// same data directory.
func TestKill9KeepsAcknowledgedWrites(t *testing.T) {
	dir := t.TempDir()
	addr := freeAddr(t)
	s := startServer(t, dir, addr)
	c := dialCache(t, addr)

	// Writers run until the kill; a write counts only once acknowledged.
	var mu sync.Mutex
	acked := map[string]uint64{}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				key := fmt.Sprintf("w%d-%d", w, i)
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				r, err := c.Put(ctx, &cachev1.PutRequest{Key: []byte(key), Value: []byte("value-" + key)})
				cancel()
				if err != nil {
					return // the server died under us
				}
				mu.Lock()
				acked[key] = r.Version
				mu.Unlock()
			}
		}()
	}
	for {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= 500 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	s.kill()
	close(stop)
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	snaps, _ := filepath.Glob(filepath.Join(dir, "snapshots", "*", "*.snap"))
	t.Logf("%d writes acknowledged before kill -9; %d partitions had snapshotted and truncated their logs", len(acked), len(snaps))
	if len(snaps) == 0 {
		t.Fatal("no partition took a snapshot: the restart would not exercise log truncation")
	}

	s.start()
	s.waitServing(60 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for key, version := range acked {
		r, err := c.Get(ctx, &cachev1.GetRequest{Key: []byte(key)})
		if err != nil {
			t.Fatalf("get %s after restart: %v", key, err)
		}
		if !r.Found || string(r.Entry.Value) != "value-"+key || r.Entry.Version != version {
			t.Fatalf("acknowledged write %s (version %d) lost after kill -9: %v", key, version, r)
		}
	}
}

// SIGTERM shuts the server down cleanly and data persists.
func TestGracefulShutdownAndRestart(t *testing.T) {
	dir := t.TempDir()
	addr := freeAddr(t)
	s := startServer(t, dir, addr)
	c := dialCache(t, addr)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := c.Put(ctx, &cachev1.PutRequest{Key: []byte("k"), Value: []byte("v")}); err != nil {
		t.Fatal(err)
	}
	if err := s.stop(syscall.SIGTERM, 30*time.Second); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
	if !strings.Contains(s.logText(), "node stopped") {
		t.Fatal("no clean stop in the log")
	}
	s.start()
	s.waitServing(60 * time.Second)
	r, err := c.Get(ctx, &cachev1.GetRequest{Key: []byte("k")})
	if err != nil || string(r.Entry.GetValue()) != "v" {
		t.Fatalf("after restart: %v, %v", r, err)
	}
}

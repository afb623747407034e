package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	cachev1 "github.com/elcache/elcache/proto/cache/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// buildServer compiles the elcache binary once per test binary run.
var buildServer = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "elcache-bin-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "elcache")
	out, err := exec.Command("go", "build", "-race", "-o", bin, ".").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// server is a real elcache process.
type server struct {
	cmd  *exec.Cmd
	addr string
	log  *strings.Builder
}

func startServer(t *testing.T, dataDir, addr string) *server {
	t.Helper()
	bin, err := buildServer()
	if err != nil {
		t.Fatal(err)
	}
	s := &server{addr: addr, log: &strings.Builder{}}
	s.cmd = exec.Command(bin, "--data-dir", dataDir, "--grpc-addr", addr, "--partitions", "8", "--node-name", "sys",
		"--raft-heartbeat-timeout", "100ms", "--raft-election-timeout", "100ms", "--raft-lease-timeout", "50ms", "--raft-commit-timeout", "5ms",
		// Snapshot and truncate the logs often, so that restarts go
		// through snapshot metadata and log tails, not a full replay.
		"--raft-snapshot-interval", "50ms", "--raft-snapshot-threshold", "16", "--raft-trailing-logs", "8")
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.cmd.Process.Kill(); s.cmd.Wait() })
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	h := healthpb.NewHealthClient(conn)
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		r, err := h.Check(ctx, &healthpb.HealthCheckRequest{})
		cancel()
		if err == nil && r.Status == healthpb.HealthCheckResponse_SERVING {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("server not serving after 60s: %v\n%s", err, s.log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// dialCache returns a Cache client for addr, closed when the test ends.
func dialCache(t *testing.T, addr string) cachev1.CacheClient {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return cachev1.NewCacheClient(conn)
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
	if err := s.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	s.cmd.Wait()
	close(stop)
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	snaps, _ := filepath.Glob(filepath.Join(dir, "snapshots", "*", "*.snap"))
	t.Logf("%d writes acknowledged before kill -9; %d partitions had snapshotted and truncated their logs", len(acked), len(snaps))
	if len(snaps) == 0 {
		t.Fatal("no partition took a snapshot: the restart would not exercise log truncation")
	}

	startServer(t, dir, addr)
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
	s.cmd.Process.Signal(syscall.SIGTERM)
	if err := s.cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, s.log)
	}
	if !strings.Contains(s.log.String(), "node stopped") {
		t.Fatalf("no clean stop in the log:\n%s", s.log)
	}
	startServer(t, dir, addr)
	r, err := c.Get(ctx, &cachev1.GetRequest{Key: []byte("k")})
	if err != nil || string(r.Entry.GetValue()) != "v" {
		t.Fatalf("after restart: %v, %v", r, err)
	}
}

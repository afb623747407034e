package main

import (
	"context"
	"errors"
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
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// Helpers shared by the system tests: they run the real elcache binary as
// child processes and talk to it over gRPC.

// binDir is where buildServer puts the binary; TestMain creates it and
// removes it when the tests are done.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "elcache-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// buildServer compiles the elcache binary (with -race) once per test
// binary run. ELCACHE_SYSTEM_BIN names a binary to use instead, e.g. one
// built from another commit to compare it.
var buildServer = sync.OnceValues(func() (string, error) { return goBuild("elcache", "-race") })

// buildServerNoRace compiles the elcache binary without the race
// detector, once: for a test whose load a race-built server, several
// times slower, could not carry in the test's time (redis-benchmark's).
// ELCACHE_SYSTEM_BIN names a binary to use instead.
var buildServerNoRace = sync.OnceValues(func() (string, error) { return goBuild("elcache-norace") })

// goBuild builds this package as binDir/name with the extra build flags,
// or returns $ELCACHE_SYSTEM_BIN when it is set.
func goBuild(name string, flags ...string) (string, error) {
	if bin := os.Getenv("ELCACHE_SYSTEM_BIN"); bin != "" {
		return bin, nil
	}
	bin := filepath.Join(binDir, name)
	args := append(append([]string{"build"}, flags...), "-o", bin, ".")
	out, err := exec.Command("go", args...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// proc is one elcache server process. It can be stopped and started again
// with the same flags, so on the same data directory and addresses. Its
// output goes to a log file in the test's temp dir that grows across
// restarts; when the test fails, the tail of the log is printed. Set
// ELCACHE_SYSTEM_LOG_DIR to keep the logs there instead (in a folder per
// test; a rerun appends).
type proc struct {
	t       *testing.T
	name    string
	addr    string // gRPC address
	args    []string
	logPath string
	// build returns the binary to run: buildServer unless the test
	// chose another.
	build func() (string, error)

	// Set by start, read by the test goroutine only.
	cmd    *exec.Cmd
	exited chan struct{} // closed once the process has exited
	// exitErr is the result of Wait, set before exited closes.
	exitErr error
}

// newProc describes a process without starting it. The process is killed
// when the test ends.
func newProc(t *testing.T, name, addr string, args []string) *proc {
	t.Helper()
	logDir := t.TempDir()
	if d := os.Getenv("ELCACHE_SYSTEM_LOG_DIR"); d != "" {
		logDir = filepath.Join(d, t.Name())
		if err := os.MkdirAll(logDir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	p := &proc{t: t, name: name, addr: addr, args: args, logPath: filepath.Join(logDir, name+".log"), build: buildServer}
	t.Cleanup(func() {
		p.kill()
		// A process killed at the end reports its data races only in
		// its log.
		if _, race, ok := strings.Cut(p.logText(), "WARNING: DATA RACE"); ok {
			lines := strings.SplitN(race, "\n", 60)
			t.Errorf("%s: data race in the server:%s", name, strings.Join(lines[:min(59, len(lines))], "\n"))
		}
		if t.Failed() {
			t.Logf("--- %s: last lines of %s\n%s", name, p.logPath, p.tail(60))
		}
	})
	return p
}

// start starts the process; it must not be running.
func (p *proc) start() {
	p.t.Helper()
	if p.running() {
		p.t.Fatalf("%s: start while running", p.name)
	}
	bin, err := p.build()
	if err != nil {
		p.t.Fatal(err)
	}
	f, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		p.t.Fatal(err)
	}
	defer f.Close() // the child has its own descriptor
	fmt.Fprintf(f, "=== test: start %s at %s\n", p.name, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(bin, p.args...)
	cmd.Stdout, cmd.Stderr = f, f
	if os.Getenv("GORACE") == "" {
		// The race detector waits a second before exiting by default,
		// which would count as shutdown time.
		cmd.Env = append(os.Environ(), "GORACE=atexit_sleep_ms=0")
	}
	if err := cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() {
		p.exitErr = cmd.Wait()
		close(exited)
	}()
	p.cmd, p.exited = cmd, exited
}

func (p *proc) running() bool {
	if p.cmd == nil {
		return false
	}
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// stop sends sig and waits up to timeout for the process to exit. It
// returns the exit status (nil for exit code 0), or an error if the process
// is still running at the timeout.
func (p *proc) stop(sig syscall.Signal, timeout time.Duration) error {
	if p.cmd == nil {
		return errors.New("never started")
	}
	p.cmd.Process.Signal(sig)
	select {
	case <-p.exited:
		return p.exitErr
	case <-time.After(timeout):
		return fmt.Errorf("%s still running %v after %v", p.name, timeout, sig)
	}
}

// kill stops the process with SIGKILL, if it runs, and waits for it.
func (p *proc) kill() {
	if p.running() {
		p.cmd.Process.Kill()
		<-p.exited
	}
}

// logText returns everything the process (across restarts) has written.
func (p *proc) logText() string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return err.Error()
	}
	return string(b)
}

// tail returns the last n lines of the log.
func (p *proc) tail(n int) string {
	lines := strings.Split(strings.TrimRight(p.logText(), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// waitServing polls grpc health until the process reports SERVING. It
// fails the test at the timeout or if the process exits.
func (p *proc) waitServing(timeout time.Duration) {
	p.t.Helper()
	h := healthpb.NewHealthClient(dial(p.t, p.addr))
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		r, err := h.Check(ctx, &healthpb.HealthCheckRequest{})
		cancel()
		if err == nil && r.Status == healthpb.HealthCheckResponse_SERVING {
			return
		}
		if !p.running() {
			p.t.Fatalf("%s exited before serving: %v", p.name, p.exitErr)
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("%s not serving after %v: %v, %v", p.name, timeout, r.GetStatus(), err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// dial returns a client connection to addr, closed when the test ends. It
// reconnects within half a second of a restarted server listening again
// (gRPC's default backoff grows to two minutes).
func dial(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	bo := backoff.DefaultConfig
	bo.BaseDelay, bo.MaxDelay = 50*time.Millisecond, 500*time.Millisecond
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithConnectParams(grpc.ConnectParams{Backoff: bo, MinConnectTimeout: time.Second}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// dialCache returns a Cache client for addr, closed when the test ends.
func dialCache(t *testing.T, addr string) cachev1.CacheClient {
	t.Helper()
	return cachev1.NewCacheClient(dial(t, addr))
}

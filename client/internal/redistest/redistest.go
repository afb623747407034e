// Package redistest starts a throwaway Redis server for benchmarks and
// tests, from the redis-server installed on the machine (`make deps`
// installs it).
//
// Each Server listens on 127.0.0.1 on a free port, keeps nothing on disk
// (no RDB snapshots, no append-only file) and works in a temporary
// directory; it is stopped, and the directory removed, when the test ends.
// The package speaks just enough RESP to see the server answer PING, so it
// needs no Redis client library.
package redistest

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const (
	// startTimeout bounds a start: until the server answers PING.
	startTimeout = 30 * time.Second
	// stopTimeout is how long a stop waits after SIGTERM before a kill.
	stopTimeout = 10 * time.Second
	// attempts is how many free ports Start tries, since one can be taken
	// by someone else before redis-server binds it.
	attempts = 3
)

// Server is a running redis-server.
type Server struct {
	tb   testing.TB
	bin  string // the redis-server binary
	dir  string // the working directory, holding redis.log
	addr string // 127.0.0.1:port

	cmd    *exec.Cmd
	exited chan struct{} // closed when the process has exited
	err    error         // its exit status, set before exited is closed
}

// Start starts a redis-server and waits until it answers PING. The server
// stops when the test ends. Start fails the test if redis-server is not
// installed.
func Start(tb testing.TB) *Server {
	tb.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		tb.Fatalf("redistest: redis-server is not in PATH (%v): run `make deps` to install Redis", err)
	}
	// TempDir before Cleanup: cleanups run last first, so the server
	// stops before its directory goes.
	s := &Server{tb: tb, bin: bin, dir: tb.TempDir()}
	for attempt := 1; ; attempt++ {
		s.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(tb)))
		err := s.start()
		if err == nil {
			break
		}
		if attempt == attempts || !strings.Contains(s.logTail(), "Address already in use") {
			tb.Fatalf("redistest: %v", err)
		}
	}
	tb.Cleanup(s.stop)
	return s
}

// Addr returns the server's host:port.
func (s *Server) Addr() string { return s.addr }

func freePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("redistest: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func (s *Server) logPath() string { return filepath.Join(s.dir, "redis.log") }

// start runs redis-server on s.addr and waits until it answers PING. On
// failure the process has exited.
func (s *Server) start() error {
	host, port, _ := net.SplitHostPort(s.addr)
	// A fresh log for each attempt, so that Start reads this one's
	// bind failure and not an earlier one's.
	log, err := os.Create(s.logPath())
	if err != nil {
		return err
	}
	cmd := exec.Command(s.bin,
		"--bind", host, "--port", port,
		"--save", "", "--appendonly", "no",
		"--dir", s.dir, "--daemonize", "no", "--logfile", "")
	cmd.Dir = s.dir
	cmd.Stdout, cmd.Stderr = log, log
	// If the test binary dies without cleaning up (a timeout panic), the
	// server goes with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	s.cmd = cmd
	s.exited = make(chan struct{})
	// Pdeathsig fires when the thread that forked the child exits, not
	// the process: fork from a goroutine locked to its thread until the
	// child exits.
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		defer close(s.exited)
		if err := cmd.Start(); err != nil {
			s.err = err
			started <- err
			return
		}
		started <- nil
		s.err = cmd.Wait()
	}()
	err = <-started
	log.Close() // the child has its own copy
	if err != nil {
		return fmt.Errorf("start redis-server: %v", err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	for {
		err := ping(ctx, s.addr)
		if err == nil {
			return nil
		}
		select {
		case <-s.exited:
			return fmt.Errorf("redis-server exited at start (%v):\n%s", s.err, s.logTail())
		case <-ctx.Done():
			s.kill()
			return fmt.Errorf("redis-server did not answer PING within %v (last error: %v):\n%s", startTimeout, err, s.logTail())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// ping sends a RESP PING on a new connection and checks for +PONG.
func ping(ctx context.Context, addr string) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	if deadline, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(deadline)
	}
	if _, err := conn.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	if line != "+PONG\r\n" {
		return fmt.Errorf("PING answered %q", line)
	}
	return nil
}

// stop sends SIGTERM, waits for the exit, and kills the server if it takes
// longer than stopTimeout.
func (s *Server) stop() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
		return
	case <-time.After(stopTimeout):
	}
	s.kill()
	s.tb.Errorf("redistest: redis-server did not stop within %v of SIGTERM, killed:\n%s", stopTimeout, s.logTail())
}

func (s *Server) kill() {
	_ = s.cmd.Process.Kill()
	<-s.exited
}

// logTail returns the end of redis.log, for error messages.
func (s *Server) logTail() string {
	b, err := os.ReadFile(s.logPath())
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	const max = 4 << 10
	if len(b) > max {
		b = b[len(b)-max:]
	}
	return string(b)
}

// Package pgtest starts a throwaway PostgreSQL server for tests, from the
// PostgreSQL binaries installed on the machine (`make deps` installs them).
//
// Each Server is its own cluster in a temporary directory, listening on
// 127.0.0.1 on a free port, with trust authentication, fsync on, and
// pg_stat_statements loaded so that tests can count the statements the code
// under test ran (Calls). Stop, Restart and StopFor simulate outages; the
// server is stopped and its directory removed when the test ends.
//
// PostgreSQL refuses to run as root. When the tests run as root, initdb and
// postgres run as the "postgres" user, which owns the directory.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

const (
	// database is the name of the fresh database a Server's URL points to.
	database = "elcache_test"
	// superuser owns the cluster; trust authentication needs no password.
	superuser = "postgres"
	// startTimeout bounds initdb, a start and a stop.
	startTimeout = 60 * time.Second
)

// proc is a started postmaster.
type proc struct {
	cmd    *exec.Cmd
	exited chan struct{} // closed when it has exited
	err    error         // its exit status, set before exited is closed
}

// Server is a running (or deliberately stopped) PostgreSQL cluster.
type Server struct {
	t    testing.TB
	bin  string // the directory of initdb and postgres
	dir  string // holds data/, the sockets and postgres.log
	port int
	cred *syscall.Credential // nil unless running as root

	mu sync.Mutex
	// proc is the postmaster, nil while stopped.
	proc *proc
	// outages counts StopFor goroutines; Cleanup waits for them.
	outages sync.WaitGroup
}

// Start initializes a cluster, starts it and creates a fresh database with
// the pg_stat_statements extension. The server stops, and its files are
// removed, when the test ends. Start fails the test if PostgreSQL is not
// installed.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := findBin()
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	s := &Server{t: t, bin: bin}
	if os.Geteuid() == 0 {
		s.cred, err = postgresUser()
		if err != nil {
			t.Fatalf("pgtest: %v", err)
		}
	}
	// Not t.TempDir: its parents are private to root, and the socket
	// path must stay under 108 bytes.
	s.dir, err = os.MkdirTemp("", "pgtest-")
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(s.cleanup)
	if s.cred != nil {
		if err := os.Chown(s.dir, int(s.cred.Uid), int(s.cred.Gid)); err != nil {
			t.Fatalf("pgtest: %v", err)
		}
	}
	s.initdb()
	// A free port can be taken by someone else before postgres binds it:
	// try a few.
	for attempt := 1; ; attempt++ {
		s.port = freePort(t)
		err := s.start()
		if err == nil {
			break
		}
		if attempt == 3 || !strings.Contains(s.logTail(), "could not bind") {
			t.Fatalf("pgtest: %v", err)
		}
	}
	s.setup()
	return s
}

// findBin returns the directory holding initdb and postgres: that of the
// initdb in PATH (through symlinks), else the newest
// /usr/lib/postgresql/*/bin.
func findBin() (string, error) {
	if dir := os.Getenv("PGTEST_BINDIR"); dir != "" {
		return dir, checkBin(dir)
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			p = real
		}
		if dir := filepath.Dir(p); checkBin(dir) == nil {
			return dir, nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return pgVersion(dirs[i]) > pgVersion(dirs[j]) })
	for _, dir := range dirs {
		if checkBin(dir) == nil {
			return dir, nil
		}
	}
	return "", errors.New("PostgreSQL's initdb and postgres are in neither PATH nor /usr/lib/postgresql/*/bin: run `make deps` to install PostgreSQL")
}

func checkBin(dir string) error {
	for _, name := range []string{"initdb", "postgres"} {
		if fi, err := os.Stat(filepath.Join(dir, name)); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
			return fmt.Errorf("no executable %s in %s: run `make deps` to install PostgreSQL", name, dir)
		}
	}
	return nil
}

// pgVersion returns the major version in /usr/lib/postgresql/N/bin.
func pgVersion(dir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
	return n
}

// postgresUser returns the credential of the "postgres" user.
func postgresUser() (*syscall.Credential, error) {
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root, PostgreSQL must run as the postgres user, which is missing (%v): run `make deps` to install PostgreSQL", err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err := errors.Join(err1, err2); err != nil {
		return nil, fmt.Errorf("user postgres: %v", err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func (s *Server) dataDir() string { return filepath.Join(s.dir, "data") }
func (s *Server) logPath() string { return filepath.Join(s.dir, "postgres.log") }

// command returns a command that runs as the postgres user when needed,
// with its output appended to postgres.log. The caller closes the file.
func (s *Server) command(name string, args ...string) (*exec.Cmd, *os.File, error) {
	log, err := os.OpenFile(s.logPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, nil, err
	}
	cmd := exec.Command(filepath.Join(s.bin, name), args...)
	cmd.Dir = s.dir
	cmd.Env = append(os.Environ(), "LC_ALL=C", "LANG=C")
	cmd.Stdout, cmd.Stderr = log, log
	// If the test binary dies without cleaning up (a timeout panic), the
	// server goes with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred, Pdeathsig: syscall.SIGQUIT}
	return cmd, log, nil
}

// initdb creates the cluster and writes its configuration.
func (s *Server) initdb() {
	s.t.Helper()
	// --no-sync only skips the final sync of a throwaway directory; the
	// server itself runs with fsync on.
	cmd, log, err := s.command("initdb", "-D", s.dataDir(), "-U", superuser, "--auth=trust",
		"--encoding=UTF8", "--locale=C", "--no-sync")
	if err != nil {
		s.t.Fatalf("pgtest: %v", err)
	}
	err = cmd.Run()
	log.Close()
	if err != nil {
		s.t.Fatalf("pgtest: initdb: %v\n%s", err, s.logTail())
	}
	conf := strings.Join([]string{
		"",
		"# pgtest",
		"listen_addresses = '127.0.0.1'",
		fmt.Sprintf("unix_socket_directories = '%s'", s.dir),
		"fsync = on",
		"synchronous_commit = on",
		"max_connections = 100",
		"shared_preload_libraries = 'pg_stat_statements'",
		"pg_stat_statements.track = all",
		"pg_stat_statements.max = 10000",
		"logging_collector = off",
		"log_min_messages = warning",
		"",
	}, "\n")
	f, err := os.OpenFile(filepath.Join(s.dataDir(), "postgresql.conf"), os.O_WRONLY|os.O_APPEND, 0)
	if err == nil {
		_, err = f.WriteString(conf)
		err = errors.Join(err, f.Close())
	}
	if err != nil {
		s.t.Fatalf("pgtest: configure: %v", err)
	}
}

// start starts postgres on s.port and waits until it accepts connections.
func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil {
		return nil
	}
	cmd, log, err := s.command("postgres", "-D", s.dataDir(), "-p", strconv.Itoa(s.port))
	if err != nil {
		return err
	}
	// Pdeathsig fires when the thread that forked the child exits, not
	// the process: fork from a goroutine locked to its thread until the
	// child exits, so that no other goroutine's LockOSThread (network
	// namespaces in tests) can take the thread down with the server.
	p := &proc{cmd: cmd, exited: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		defer close(p.exited)
		if err := cmd.Start(); err != nil {
			p.err = err
			started <- err
			return
		}
		started <- nil
		p.err = cmd.Wait()
	}()
	err = <-started
	log.Close() // the child has its own copy
	if err != nil {
		return fmt.Errorf("start postgres: %v", err)
	}
	s.proc = p

	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	for {
		conn, err := pgx.Connect(ctx, s.urlFor("postgres"))
		if err == nil {
			return conn.Close(ctx)
		}
		select {
		case <-p.exited:
			s.proc = nil
			return fmt.Errorf("postgres exited at start (%v):\n%s", p.err, s.logTail())
		case <-ctx.Done():
			s.stopLocked()
			return fmt.Errorf("postgres did not accept connections within %v (last error: %v):\n%s", startTimeout, err, s.logTail())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// stopLocked makes a fast shutdown (clients are disconnected, the data is
// checkpointed) and waits for the postmaster to exit.
func (s *Server) stopLocked() error {
	p := s.proc
	if p == nil {
		return nil
	}
	s.proc = nil
	_ = p.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-p.exited:
		return nil
	case <-time.After(startTimeout):
	}
	// An immediate shutdown, then a kill.
	_ = p.cmd.Process.Signal(syscall.SIGQUIT)
	select {
	case <-p.exited:
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
	return fmt.Errorf("postgres did not stop within %v:\n%s", startTimeout, s.logTail())
}

// setup creates the test database with pg_stat_statements.
func (s *Server) setup() {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	for _, step := range []struct{ db, sql string }{
		{"postgres", "CREATE DATABASE " + database},
		{database, "CREATE EXTENSION pg_stat_statements"},
	} {
		conn, err := pgx.Connect(ctx, s.urlFor(step.db))
		if err != nil {
			s.t.Fatalf("pgtest: %v", err)
		}
		_, err = conn.Exec(ctx, step.sql)
		conn.Close(ctx)
		if err != nil {
			s.t.Fatalf("pgtest: %s: %v\n%s", step.sql, err, s.logTail())
		}
	}
}

func (s *Server) urlFor(db string) string {
	return fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable", superuser, s.port, db)
}

// URL returns the postgres:// URL of the server's test database.
func (s *Server) URL() string { return s.urlFor(database) }

// Port returns the TCP port, which stays the same across restarts.
func (s *Server) Port() int { return s.port }

// Stop stops the server (a fast shutdown: sessions are terminated with
// admin_shutdown) until Restart. It is a no-op on a stopped server. Call it
// from the test's goroutine.
func (s *Server) Stop() {
	s.t.Helper()
	s.mu.Lock()
	err := s.stopLocked()
	s.mu.Unlock()
	if err != nil {
		s.t.Fatalf("pgtest: %v", err)
	}
}

// Restart stops the server if it runs, starts it again on the same port
// and data directory, and waits until it accepts connections. Call it from
// the test's goroutine.
func (s *Server) Restart() {
	s.t.Helper()
	s.mu.Lock()
	err := s.stopLocked()
	s.mu.Unlock()
	if err == nil {
		err = s.start()
	}
	if err != nil {
		s.t.Fatalf("pgtest: restart: %v", err)
	}
}

// StopFor stops the server now and starts it again after d, in the
// background. The returned channel is closed once the server accepts
// connections again (or failed to start, which fails the test).
func (s *Server) StopFor(d time.Duration) <-chan struct{} {
	s.t.Helper()
	s.Stop()
	back := make(chan struct{})
	s.outages.Add(1)
	go func() {
		defer s.outages.Done()
		defer close(back)
		time.Sleep(d) // the outage itself, not a wait for a condition
		if err := s.start(); err != nil {
			s.t.Errorf("pgtest: start after an outage of %v: %v", d, err)
		}
	}()
	return back
}

// Calls returns how many times statements whose text contains substring
// ran in the test database, as counted by pg_stat_statements (over every
// user and nesting level). Constants in the counted statements' text are
// normalized to $1, $2...; comments are kept, so a marker comment matches.
// The server must be running.
func (s *Server) Calls(t testing.TB, substring string) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.URL())
	if err != nil {
		t.Fatalf("pgtest: calls: %v", err)
	}
	defer conn.Close(ctx)
	var n int64
	err = conn.QueryRow(ctx, `SELECT COALESCE(sum(calls), 0)::bigint FROM pg_stat_statements
		WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
		AND strpos(query, $1) > 0 AND strpos(query, 'pg_stat_statements') = 0`, substring).Scan(&n)
	if err != nil {
		t.Fatalf("pgtest: calls: %v", err)
	}
	return n
}

// logTail returns the end of postgres.log, for error messages.
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

func (s *Server) cleanup() {
	s.outages.Wait()
	s.mu.Lock()
	err := s.stopLocked()
	s.mu.Unlock()
	if err != nil {
		s.t.Errorf("pgtest: %v", err)
	}
	if err := os.RemoveAll(s.dir); err != nil {
		s.t.Errorf("pgtest: %v", err)
	}
}

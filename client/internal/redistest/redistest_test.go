package redistest_test

import (
	"bufio"
	"fmt"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/elcache/elcache/client/internal/redistest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// do sends one command in RESP and returns the first line of the reply.
func do(addr string, args ...string) (string, error) {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	req := fmt.Sprintf("*%d\r\n", len(args))
	for _, a := range args {
		req += fmt.Sprintf("$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := conn.Write([]byte(req)); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	return strings.TrimSuffix(line, "\r\n"), err
}

// TestServer: the server answers on its address, keeps nothing on disk,
// and is gone once its test has ended.
func TestServer(t *testing.T) {
	var addr string
	t.Run("server", func(t *testing.T) {
		srv := redistest.Start(t)
		addr = srv.Addr()
		if !strings.HasPrefix(addr, "127.0.0.1:") {
			t.Errorf("Addr() = %q, want 127.0.0.1:port", addr)
		}
		for _, c := range []struct {
			args []string
			want string
		}{
			{[]string{"PING"}, "+PONG"},
			{[]string{"SET", "k", "v"}, "+OK"},
			{[]string{"GET", "k"}, "$1"},
		} {
			got, err := do(addr, c.args...)
			if err != nil || got != c.want {
				t.Errorf("%v = %q, %v; want %q", c.args, got, err, c.want)
			}
		}
	})
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Errorf("something still listens on the server's address %s", addr)
	}
}

// TestPersistenceOff: neither RDB snapshots nor the append-only file.
func TestPersistenceOff(t *testing.T) {
	srv := redistest.Start(t)
	conn, err := net.DialTimeout("tcp", srv.Addr(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(conn)
	for _, c := range []struct{ param, want string }{{"save", ""}, {"appendonly", "no"}} {
		fmt.Fprintf(conn, "CONFIG GET %s\r\n", c.param)
		// *2, $len, name, $len, value
		var lines []string
		for range 5 {
			line, err := r.ReadString('\n')
			if err != nil {
				t.Fatal(err)
			}
			lines = append(lines, strings.TrimSuffix(line, "\r\n"))
		}
		if got := lines[4]; got != c.want {
			t.Errorf("CONFIG GET %s = %q, want %q (reply %q)", c.param, got, c.want, lines)
		}
	}
}

// fatalTB records the message of a Fatalf and ends its goroutine, as
// testing.T does.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// TestNotInstalled: without redis-server, Start fails the test and says
// how to install it.
func TestNotInstalled(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	tb := &fatalTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		redistest.Start(tb)
		t.Error("Start returned without redis-server in PATH")
	}()
	<-done
	if !strings.Contains(tb.msg, "make deps") {
		t.Errorf("Start failed with %q, which does not say to run make deps", tb.msg)
	}
}

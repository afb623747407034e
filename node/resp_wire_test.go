package node_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/elcache/elcache/node/nodetest"
)

// respWire checks, on bare connections, the exact bytes of the replies in
// RESP2 and RESP3, QUIT, RESET, inline commands and protocol errors.
func respWire(t *testing.T, c *nodetest.Cluster) {
	addr := c.Nodes[1].RESPAddr()
	t.Run("replies", func(t *testing.T) {
		rc := dialRaw(t, addr)
		k, f := "wire/k", "wire/f"
		rc.do("DEL", k, "wire/c", f)
		// want ends in "..." when only its start is known.
		tests := []struct {
			cmd  []string
			want string
		}{
			{[]string{"PING"}, "+PONG\r\n"},
			{[]string{"PING", "hi"}, "$2\r\nhi\r\n"},
			{[]string{"SET", k, "v"}, "+OK\r\n"},
			{[]string{"GET", k}, "$1\r\nv\r\n"},
			{[]string{"GET", "wire/missing"}, "$-1\r\n"},
			{[]string{"SET", k, "w", "NX"}, "$-1\r\n"},
			{[]string{"INCR", "wire/c"}, ":1\r\n"},
			{[]string{"MGET", k, "wire/missing"}, "*2\r\n$1\r\nv\r\n$-1\r\n"},
			{[]string{"TYPE", k}, "+string\r\n"},
			{[]string{"TTL", "wire/missing"}, ":-2\r\n"},
			{[]string{"INCRBYFLOAT", f, "1.5"}, "$3\r\n1.5\r\n"},
			{[]string{"GET"}, "-ERR wrong number of arguments for 'get' command\r\n"},
			{[]string{"COMMAND", "DOCS"}, "*0\r\n"},
			{[]string{"COMMAND", "INFO", "get", "nosuch"}, "*2\r\n*6\r\n$3\r\nget\r\n:2\r\n*2\r\n+readonly\r\n+fast\r\n:1\r\n:1\r\n:1\r\n*-1\r\n"},
			{[]string{"CLIENT", "GETNAME"}, "$-1\r\n"},
			{[]string{"INFO", "server"}, "$..."},
			{[]string{"CLIENT", "INFO"}, "$..."},
			{[]string{"SCAN", "0", "MATCH", "wire/nothing*", "COUNT", "1000"}, "*2\r\n$..."},
			{[]string{"GET", k}, "$1\r\nv\r\n"},
			{[]string{"ELCACHE.META"}, "*16\r\n$9\r\npartition\r\n:..."},
			{[]string{"HELLO", "3"}, "%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$5\r\n7.2.0\r\n$5\r\nproto\r\n:3\r\n$2\r\nid\r\n:..."},
			{[]string{"GET", "wire/missing"}, "_\r\n"},
			{[]string{"SET", k, "w", "NX"}, "_\r\n"},
			{[]string{"MGET", k, "wire/missing"}, "*2\r\n$1\r\nv\r\n_\r\n"},
			{[]string{"COMMAND", "DOCS"}, "%0\r\n"},
			{[]string{"COMMAND", "INFO", "get", "nosuch"}, "*2\r\n*6\r\n$3\r\nget\r\n:2\r\n~2\r\n+readonly\r\n+fast\r\n:1\r\n:1\r\n:1\r\n_\r\n"},
			{[]string{"CLIENT", "GETNAME"}, "_\r\n"},
			{[]string{"INFO", "server"}, "=...txt:# Server\r\n..."},
			{[]string{"CLIENT", "INFO"}, "=...txt:id=..."},
			{[]string{"GET", k}, "$1\r\nv\r\n"},
			{[]string{"ELCACHE.META"}, "%8\r\n$9\r\npartition\r\n:..."},
			{[]string{"HELLO", "2"}, "*14\r\n$6\r\nserver\r\n..."},
			{[]string{"GET", "wire/missing"}, "$-1\r\n"},
		}
		for _, tc := range tests {
			if got := rc.do(tc.cmd...); !wireMatch(got, tc.want) {
				t.Errorf("%q: got %q, want %q", tc.cmd, got, tc.want)
			}
		}
	})
	t.Run("META_types", func(t *testing.T) {
		rc := dialRaw(t, addr)
		rc.do("HELLO", "3")
		rc.do("GET", "wire/k")
		got := rc.do("ELCACHE.META")
		for _, s := range []string{"$9\r\nserved_by\r\n$2\r\nn", "$4\r\nrole\r\n$", "$11\r\nconsistency\r\n$12\r\nlinearizable\r\n",
			"$13\r\napplied_index\r\n:", "$19\r\nleader_commit_index\r\n:", "$12\r\nstaleness_ms\r\n,", "$5\r\nstale\r\n#f\r\n"} {
			if !strings.Contains(got, s) {
				t.Errorf("ELCACHE.META = %q, has no %q", got, s)
			}
		}
	})
	t.Run("QUIT", func(t *testing.T) {
		rc := dialRaw(t, addr)
		if got := rc.do("QUIT"); got != "+OK\r\n" {
			t.Fatalf("QUIT = %q", got)
		}
		rc.closed()
		// What follows QUIT in a pipeline is not run.
		rc = dialRaw(t, addr)
		rc.send(multibulk("PING") + multibulk("QUIT") + multibulk("SET", "wire/after-quit", "v"))
		if got := rc.reply() + rc.reply(); got != "+PONG\r\n+OK\r\n" {
			t.Fatalf("PING, QUIT = %q", got)
		}
		rc.closed()
		if got := dialRaw(t, addr).do("EXISTS", "wire/after-quit"); got != ":0\r\n" {
			t.Fatalf("EXISTS of a key set after QUIT = %q, want :0", got)
		}
	})
	t.Run("RESET", func(t *testing.T) {
		rc := dialRaw(t, addr)
		for _, cmd := range [][]string{{"HELLO", "3", "SETNAME", "before-reset"}, {"ELCACHE.CONSISTENCY", "eventual"},
			{"ELCACHE.WRITEMODE", "none"}, {"GET", "wire/k"}} {
			if got := rc.do(cmd...); strings.HasPrefix(got, "-") {
				t.Fatalf("%q: %q", cmd, got)
			}
		}
		tests := []struct {
			cmd  []string
			want string
		}{
			{[]string{"RESET"}, "+RESET\r\n"},
			{[]string{"CLIENT", "GETNAME"}, "$-1\r\n"},
			{[]string{"ELCACHE.CONSISTENCY"}, "$12\r\nlinearizable\r\n"},
			{[]string{"ELCACHE.WRITEMODE"}, "$7\r\ndefault\r\n"},
			{[]string{"ELCACHE.META"}, "$-1\r\n"},
			{[]string{"RESET", "x"}, "-ERR wrong number of arguments for 'reset' command\r\n"},
		}
		for _, tc := range tests {
			if got := rc.do(tc.cmd...); got != tc.want {
				t.Errorf("%q: got %q, want %q", tc.cmd, got, tc.want)
			}
		}
	})
	t.Run("inline", func(t *testing.T) {
		rc := dialRaw(t, addr)
		tests := []struct{ send, want string }{
			{"PING\r\n", "+PONG\r\n"},
			{"ping\n", "+PONG\r\n"},
			{"\r\n\r\nPING\r\n", "+PONG\r\n"},
			{"SET wire/inline b\r\n", "+OK\r\n"},
			{"GET wire/inline\r\n", "$1\r\nb\r\n"},
			{"SET wire/inline \"a b\\x41\\n\"\r\n", "+OK\r\n"},
			{"GET wire/inline\r\n", "$5\r\na bA\n\r\n"},
			{"  ECHO   'it''s'  \r\n", "-ERR Protocol error: unbalanced quotes in request\r\n"},
		}
		for _, tc := range tests[:len(tests)-1] {
			rc.send(tc.send)
			if got := rc.reply(); got != tc.want {
				t.Errorf("%q: got %q, want %q", tc.send, got, tc.want)
			}
		}
		// Inline and multibulk commands mix in one pipeline.
		rc.send("ECHO x\r\n" + multibulk("ECHO", "y") + "ECHO 'z z'\r\n")
		if got := rc.reply() + rc.reply() + rc.reply(); got != "$1\r\nx\r\n$1\r\ny\r\n$3\r\nz z\r\n" {
			t.Errorf("mixed pipeline: %q", got)
		}
		last := tests[len(tests)-1]
		rc.send(last.send)
		if got := rc.reply(); got != last.want {
			t.Errorf("%q: got %q, want %q", last.send, got, last.want)
		}
		rc.closed()
	})
	t.Run("protocol_errors", func(t *testing.T) {
		tests := []struct {
			name, send, want string
		}{
			{"huge bulk", "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1000000000\r\n", "-ERR Protocol error: invalid bulk length\r\n"},
			{"bulk over the limit", "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3000000\r\n", "-ERR Protocol error: invalid bulk length\r\n"},
			{"negative bulk", "*1\r\n$-5\r\n", "-ERR Protocol error: invalid bulk length\r\n"},
			{"bad count", "*abc\r\n", "-ERR Protocol error: invalid multibulk length\r\n"},
			{"too many args", "*2000000\r\n", "-ERR Protocol error: invalid multibulk length\r\n"},
			{"no bulk", "*1\r\nPING\r\n", "-ERR Protocol error: expected '$', got 'P'\r\n"},
			{"bulk too long", "*1\r\n$4\r\nPINGxx\r\n", "-ERR Protocol error: bulk string not followed by CRLF\r\n"},
			{"unbalanced quotes", "SET \"k v\r\n", "-ERR Protocol error: unbalanced quotes in request\r\n"},
			{"inline too long", strings.Repeat("a", 64<<10+2), "-ERR Protocol error: too big inline request\r\n"},
			{"after a good command", "PING\r\n*x\r\n", "+PONG\r\n-ERR Protocol error: invalid multibulk length\r\n"},
			{"after a batch", multibulk("GET", "wire/a") + multibulk("GET", "wire/b") + "*x\r\n", "$-1\r\n$-1\r\n-ERR Protocol error: invalid multibulk length\r\n"},
		}
		for _, tc := range tests {
			t.Run(strings.ReplaceAll(tc.name, " ", "_"), func(t *testing.T) {
				rc := dialRaw(t, addr)
				rc.send(tc.send)
				var got string
				for len(got) < len(tc.want) {
					got += rc.reply()
				}
				if got != tc.want {
					t.Fatalf("got %q, want %q", got, tc.want)
				}
				rc.closed()
			})
		}
	})
	t.Run("garbage", func(t *testing.T) {
		rc := dialRaw(t, addr)
		rc.send("xyzzy plugh\r\n")
		if got, want := rc.reply(), "-ERR unknown command 'xyzzy', with args beginning with: 'plugh' \r\n"; got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
		if got := rc.do("PING"); got != "+PONG\r\n" {
			t.Fatalf("PING after an unknown command = %q", got)
		}
	})
}

// wireMatch reports whether got is want, or starts with want's parts
// when want holds "..." (each part in order, the first at the start).
func wireMatch(got, want string) bool {
	parts := strings.Split(want, "...")
	if len(parts) == 1 {
		return got == want
	}
	if !strings.HasPrefix(got, parts[0]) {
		return false
	}
	got = got[len(parts[0]):]
	for _, p := range parts[1:] {
		i := strings.Index(got, p)
		if i < 0 {
			return false
		}
		got = got[i+len(p):]
	}
	return true
}

// respLimits: a key or value over the node's limits gets an error reply
// and the connection goes on.
func respLimits(t *testing.T, e respEnv) {
	big := strings.Repeat("v", respMaxValue+1)
	long := strings.Repeat("k", 1025)
	e.runScripts(t, e.conn(t, 0), func(key func(string) string) []step {
		k := key("k")
		return []step{
			{cmd: args("SET", long, "v"), err: "ERR key is 1025 bytes, over the limit of 1024"},
			{cmd: args("PING"), want: "PONG"},
			{cmd: args("GET", long), err: "ERR key is 1025 bytes, over the limit of 1024"},
			{cmd: args("INCR", long), err: "ERR key is 1025 bytes, over the limit of 1024"},
			{cmd: args("SET", k, big), err: "ERR value is 4097 bytes, over the limit of 4096"},
			{cmd: args("PING"), want: "PONG"},
			{cmd: args("SET", k, strings.Repeat("v", 100<<10)), err: "ERR value is 102400 bytes, over the limit of 4096"},
			{cmd: args("PING"), want: "PONG"},
			{cmd: args("SET", k, big[1:]), want: "OK"},
			{cmd: args("STRLEN", k), want: respMaxValue},
			{cmd: args("APPEND", k, "x"), err: "ERR string exceeds maximum allowed size*"},
			{cmd: args("SETRANGE", k, respMaxValue, "x"), err: "ERR *"},
			{cmd: args("GETSET", k, big), err: "ERR *"},
			{cmd: args("STRLEN", k), want: respMaxValue},
			{cmd: args("MSET", k, "v", long, "v"), err: "ERR *"},
			{cmd: args("GET", k), want: big[1:]},
			{cmd: args("SET", "", "v"), err: "ERR *"},
		}
	})
}

// rawConn is a bare TCP connection to a listener, for what a client
// library hides: the exact reply bytes, protocol errors, inline commands.
type rawConn struct {
	t  testing.TB
	nc net.Conn
	r  *bufio.Reader
}

func dialRaw(t testing.TB, addr string) *rawConn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &rawConn{t: t, nc: nc, r: bufio.NewReader(nc)}
}

// send writes bytes as they are.
func (c *rawConn) send(s string) {
	c.t.Helper()
	c.nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c.nc, s); err != nil {
		c.t.Fatalf("write %q: %v", s, err)
	}
}

// multibulk is a command as a RESP array of bulk strings.
func multibulk(args ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	return b.String()
}

// do sends a command and returns its reply's bytes.
func (c *rawConn) do(args ...string) string {
	c.t.Helper()
	c.send(multibulk(args...))
	return c.reply()
}

// reply reads one whole reply and returns its bytes.
func (c *rawConn) reply() string {
	c.t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(20 * time.Second))
	var b strings.Builder
	if err := c.readReply(&b); err != nil {
		c.t.Fatalf("read a reply (after %q): %v", b.String(), err)
	}
	return b.String()
}

func (c *rawConn) readReply(b *strings.Builder) error {
	line, err := c.r.ReadString('\n')
	b.WriteString(line)
	if err != nil {
		return err
	}
	if len(line) < 3 || !strings.HasSuffix(line, "\r\n") {
		return fmt.Errorf("bad reply line %q", line)
	}
	n, _ := strconv.Atoi(line[1 : len(line)-2])
	switch line[0] {
	case '$', '=', '!':
		if n < 0 {
			return nil
		}
		buf := make([]byte, n+2)
		_, err := io.ReadFull(c.r, buf)
		b.Write(buf)
		return err
	case '*', '~', '>', '%':
		if line[0] == '%' {
			n *= 2
		}
		for range max(n, 0) {
			if err := c.readReply(b); err != nil {
				return err
			}
		}
	}
	return nil
}

// closed checks the server closes the connection with nothing more to
// say.
func (c *rawConn) closed() {
	c.t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(20 * time.Second))
	rest, err := io.ReadAll(c.r)
	if err != nil || len(rest) > 0 {
		c.t.Fatalf("want the connection closed, got %q, %v", rest, err)
	}
}

package respserver

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"time"

	"github.com/elcache/elcache/internal/auth"
	"github.com/elcache/elcache/internal/resp"
	cachev1 "github.com/elcache/elcache/proto/cache/v1"
)

// maxBatch is the most pipelined commands run concurrently at once.
const maxBatch = 256

// conn is one client connection and its state.
type conn struct {
	s       *Server
	nc      net.Conn
	r       *resp.Reader
	w       *resp.Writer
	id      int64
	counts  *connCounts // its stripe of the server's INFO counters
	created time.Time
	addr    string

	// Set by commands that run alone (never in a concurrent batch).
	authed bool
	quit   bool

	// ctxMu guards the deadline context commands share (deadline).
	ctxMu     sync.Mutex
	ctx       context.Context
	ctxCancel context.CancelFunc
	ctxRenew  time.Time

	// mu guards what concurrent commands of a batch share, and what
	// CLIENT LIST reads from other connections' goroutines (name, caller,
	// lib, proto: the connection's own goroutine changes them under mu,
	// in commands that run alone, and may read them without it).
	mu        sync.Mutex
	name      string
	caller    auth.Caller
	lib       string
	proto     int // c.w.Protocol()
	level     cachev1.Consistency
	staleness time.Duration
	mode      cachev1.WriteMode
	tokens    map[uint32]*cachev1.SessionToken
	ropts     *cachev1.ReadOptions // built once outside SESSION (readOptions)
	lastMeta  *cachev1.ReadMeta
	lastCmd   string
}

// countingConn counts the bytes a connection moves, for INFO stats.
type countingConn struct {
	net.Conn
	counts *connCounts
}

func (c countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.counts.in.Add(uint64(n))
	return n, err
}

func (c countingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.counts.out.Add(uint64(n))
	return n, err
}

func (s *Server) newConn(nc net.Conn) *conn {
	host, _, err := net.SplitHostPort(nc.RemoteAddr().String())
	if err != nil {
		host = nc.RemoteAddr().String()
	}
	id := s.nextID.Add(1)
	counts := &s.counts[uint64(id)%uint64(len(s.counts))]
	cc := countingConn{Conn: nc, counts: counts}
	c := &conn{s: s, nc: nc, r: resp.NewReader(cc, s.cfg.Limits), w: resp.NewWriter(cc), counts: counts,
		id: id, created: time.Now(), addr: nc.RemoteAddr().String()}
	c.reset(host)
	return c
}

// reset puts the connection in its initial state (RESET, and a new
// connection).
func (c *conn) reset(host string) {
	c.quit = false
	c.authed = true
	caller := auth.Caller{Name: host, Role: auth.RolePeer}
	if g := c.s.cfg.Guard; g != nil {
		caller = g.Anonymous(host)
		c.authed = !g.Required()
	}
	c.setProtocol(2)
	c.mu.Lock()
	c.name, c.caller = "", caller
	c.level, c.staleness, c.mode, c.ropts = c.s.cfg.Level, c.s.cfg.MaxStaleness, c.s.cfg.Mode, nil
	c.tokens, c.lastMeta = nil, nil
	c.mu.Unlock()
}

// setProtocol switches the connection's replies to RESP version v.
func (c *conn) setProtocol(v int) {
	c.w.SetProtocol(v)
	c.mu.Lock()
	c.proto = c.w.Protocol()
	c.mu.Unlock()
}

// setName names the connection (CLIENT SETNAME, HELLO SETNAME).
func (c *conn) setName(name string) {
	c.mu.Lock()
	c.name = name
	c.mu.Unlock()
}

func (c *conn) host() string {
	host, _, err := net.SplitHostPort(c.addr)
	if err != nil {
		return c.addr
	}
	return host
}

// pending is a command read and not yet run: its arguments (copied when
// it waits for a batch) and its table entry (nil: unknown).
type pending struct {
	args [][]byte
	cmd  *command
}

// serve reads and runs commands until the client leaves, QUIT, a
// protocol error or the server closes.
func (c *conn) serve() {
	defer c.nc.Close()
	defer c.endDeadline()
	var batch []pending
	var replies []reply
	for !c.quit {
		args, err := c.r.ReadCommand()
		if err != nil {
			c.readFailed(err)
			return
		}
		cmd := c.s.lookup(args[0])
		if cmd == nil || !cmd.parallel || !c.mayWait(cmd) || c.r.Buffered() == 0 {
			c.runOne(args, cmd)
			if c.r.Buffered() == 0 && c.flush() != nil {
				return
			}
			continue
		}
		// A pipelined run: gather single-key commands on distinct keys.
		batch = append(batch[:0], pending{args: copyArgs(args), cmd: cmd})
		var next *pending
		for c.r.Buffered() > 0 && len(batch) < maxBatch {
			args, err = c.r.ReadCommand()
			if err != nil {
				break
			}
			p := pending{args: args, cmd: c.s.lookup(args[0])}
			if p.cmd == nil || !p.cmd.parallel || !p.cmd.arityOK(len(args)) || keyIn(batch, args[1]) {
				next = &p
				break
			}
			p.args = copyArgs(args)
			batch = append(batch, p)
		}
		replies = c.runBatch(batch, replies[:0])
		for _, r := range replies {
			r.write(c.w)
		}
		if next != nil && !c.quit {
			c.runOne(next.args, next.cmd)
		}
		if err != nil {
			c.readFailed(err)
			return
		}
		if c.r.Buffered() == 0 && c.flush() != nil {
			return
		}
	}
	c.flush()
}

// readFailed answers a protocol error before the connection closes.
func (c *conn) readFailed(err error) {
	var pe *resp.ProtocolError
	if errors.As(err, &pe) {
		c.w.Error(pe.Error())
		c.s.cfg.Observer.Command("protocol", time.Now(), "ERR")
	}
	c.flush()
	if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, net.ErrClosed) && pe == nil {
		c.s.log.Debug("resp: read", "client", c.addr, "err", err)
	}
}

func (c *conn) flush() error {
	return c.w.Flush()
}

func copyArgs(args [][]byte) [][]byte {
	n := 0
	for _, a := range args {
		n += len(a)
	}
	buf := make([]byte, 0, n)
	out := make([][]byte, len(args))
	for i, a := range args {
		buf = append(buf, a...)
		out[i] = buf[len(buf)-len(a) : len(buf) : len(buf)]
	}
	return out
}

func keyIn(batch []pending, key []byte) bool {
	for _, p := range batch {
		if string(p.args[1]) == string(key) {
			return true
		}
	}
	return false
}

// runOne runs one command and writes its reply.
func (c *conn) runOne(args [][]byte, cmd *command) {
	c.run(args, cmd).write(c.w)
}

// deadline returns a context that ends between Timeout/2 and Timeout
// from now: commands share one deadline context for up to Timeout/2, so
// that a fast command does not pay for a timer of its own. Close ends it.
func (c *conn) deadline() context.Context {
	now := time.Now()
	c.ctxMu.Lock()
	defer c.ctxMu.Unlock()
	if c.ctx == nil || now.After(c.ctxRenew) {
		// Commands still holding the old context keep its deadline: it
		// is not cancelled, and its timer releases it when it expires.
		c.ctx, c.ctxCancel = context.WithTimeout(context.Background(), c.s.cfg.Timeout)
		c.ctxRenew = now.Add(c.s.cfg.Timeout / 2)
	}
	return c.ctx
}

// endDeadline releases the deadline context when the connection closes.
func (c *conn) endDeadline() {
	c.ctxMu.Lock()
	defer c.ctxMu.Unlock()
	if c.ctxCancel != nil {
		c.ctxCancel()
	}
}

// mayWait reports whether cmd may wait for another node or a Raft
// commit: a write, or a read at a level a replica cannot answer alone.
// Only such commands are worth a goroutine of their own in a batch; the
// others answer from the local replica in microseconds.
func (c *conn) mayWait(cmd *command) bool {
	if cmd.flags&flagWrite != 0 {
		return true
	}
	c.mu.Lock()
	level := c.level
	c.mu.Unlock()
	return level == cachev1.Consistency_CONSISTENCY_LINEARIZABLE || level == cachev1.Consistency_CONSISTENCY_LEASE
}

// runBatch runs a batch's commands and returns their replies in order:
// those that may wait concurrently, each in a goroutine, the others here
// meanwhile.
func (c *conn) runBatch(batch []pending, out []reply) []reply {
	out = append(out, make([]reply, len(batch))...)
	var wg sync.WaitGroup
	for i := range batch {
		if !c.mayWait(batch[i].cmd) {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = c.run(batch[i].args, batch[i].cmd)
		}()
	}
	for i := range batch {
		if !c.mayWait(batch[i].cmd) {
			out[i] = c.run(batch[i].args, batch[i].cmd)
		}
	}
	wg.Wait()
	return out
}

// run checks and runs one command and returns its reply. It counts the
// command and its outcome.
func (c *conn) run(args [][]byte, cmd *command) reply {
	start := time.Now()
	c.counts.commands.Add(1)
	if cmd == nil {
		r := unknownCommand(args)
		c.s.cfg.Observer.Command("unknown", start, "ERR")
		return r
	}
	r := c.check(cmd, args)
	if r.kind == kindNone {
		r = cmd.run(c.deadline(), c, args)
	}
	c.s.cfg.Observer.Command(cmd.name, start, r.errPrefix())
	c.mu.Lock()
	c.lastCmd = cmd.name
	c.mu.Unlock()
	return r
}

// check refuses a command with the wrong number of arguments, before
// authentication, or beyond the caller's role or rate.
func (c *conn) check(cmd *command, args [][]byte) reply {
	if !cmd.arityOK(len(args)) {
		return errorf("ERR wrong number of arguments for '%s' command", cmd.name)
	}
	if cmd.flags&flagNoAuth != 0 {
		return reply{}
	}
	if !c.authed {
		return errorReply("NOAUTH Authentication required.")
	}
	g := c.s.cfg.Guard
	if g == nil {
		return reply{}
	}
	role := auth.RoleRead
	switch {
	case cmd.flags&flagAdmin != 0:
		role = auth.RoleAdmin
	case cmd.flags&flagWrite != 0:
		role = auth.RoleWrite
	}
	if err := g.Check(c.caller, role); err != nil {
		if errors.Is(err, auth.ErrDenied) {
			return errorf("NOPERM this user has no permissions to run the '%s' command (%v)", cmd.name, err)
		}
		return errorf("ERR %v; slow down and retry", err)
	}
	return reply{}
}

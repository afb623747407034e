// Package respserver is elcache's Redis front door: a RESP2/RESP3
// listener that answers Redis's string commands, its connection and
// server commands, and elcache's own ELCACHE.* commands, by calling the
// node's Cache service in-process. Any node accepts any key and routes it
// inside the cluster exactly as a gRPC request.
//
// Each connection keeps its read level and write mode (ELCACHE.CONSISTENCY,
// ELCACHE.WRITEMODE; the defaults come from Config), its session tokens
// (SESSION reads see the connection's own writes across the keyspace) and
// the proof of its last read (ELCACHE.META).
//
// Commands run in the order they arrive. A pipelined run of single-key
// commands on distinct keys runs concurrently (so that pipelined writes
// share Raft commits, as Redis Cluster runs commands for different slots on
// different nodes), and the replies go back in order; two commands on one
// key never run concurrently.
package respserver

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/elcache/elcache/internal/auth"
	"github.com/elcache/elcache/internal/resp"
	cachev1 "github.com/elcache/elcache/proto/cache/v1"
)

// Cache is what the listener calls: the node's Cache service handlers.
type Cache interface {
	Get(context.Context, *cachev1.GetRequest) (*cachev1.GetResponse, error)
	Put(context.Context, *cachev1.PutRequest) (*cachev1.PutResponse, error)
	Delete(context.Context, *cachev1.DeleteRequest) (*cachev1.DeleteResponse, error)
	Mutate(context.Context, *cachev1.MutateRequest) (*cachev1.MutateResponse, error)
	MultiGet(context.Context, *cachev1.MultiGetRequest) (*cachev1.MultiGetResponse, error)
	MultiPut(context.Context, *cachev1.MultiPutRequest) (*cachev1.MultiPutResponse, error)
	Scan(context.Context, *cachev1.ScanRequest) (*cachev1.ScanResponse, error)
	Stats(context.Context, *cachev1.StatsRequest) (*cachev1.StatsResponse, error)
}

// LocalGetter is an optional ability of a Cache, found by type
// assertion: answering a read of one key at a level this node's own
// replica may serve alone (EVENTUAL) without Get's request and response
// messages, the fast path of GET. The answer and the read's proof are
// those Get would give; ok is false when Get must answer instead (another
// level, a key Get would refuse, no replica here that may serve, a miss
// the database may fill).
type LocalGetter interface {
	LocalGet(key []byte, level cachev1.Consistency) (value []byte, found bool, meta *cachev1.ReadMeta, ok bool)
}

// Observer hears of connections and commands (the node's metrics).
type Observer interface {
	// Connected is +1 when a connection opens, -1 when it closes.
	Connected(delta int)
	// Command: one command answered, named in lower case; errPrefix is ""
	// on success, else the first word of the error reply.
	Command(name string, start time.Time, errPrefix string)
}

// Config configures a Server.
type Config struct {
	// Cache serves the data commands. Required.
	Cache Cache
	// Partition maps a key to its partition: MSETNX is atomic only for
	// keys of one partition. Required.
	Partition func(key []byte) uint32
	// Guard authenticates connections (AUTH, HELLO AUTH) and checks each
	// command's role and rate. Nil: every connection may do everything.
	Guard *auth.Guard
	// Limits bound what a client may send; zero fields take
	// resp.DefaultLimits.
	Limits resp.Limits
	// Level is the read level of a new connection, MaxStaleness its bound
	// when the level is BOUNDED. Required (not UNSPECIFIED).
	Level        cachev1.Consistency
	MaxStaleness time.Duration
	// Mode is the write mode of a new connection; UNSPECIFIED leaves it to
	// the node's default.
	Mode cachev1.WriteMode
	// Timeout bounds one command (default 10s): a command whose partition
	// has no leader for that long answers TRYAGAIN.
	Timeout time.Duration
	// MaxConns is the most connections open at once (default 10000); the
	// next ones are answered an error and closed.
	MaxConns int
	// TLS, when set, makes the listener speak TLS.
	TLS *tls.Config
	// NodeName and Version describe the node in HELLO and INFO.
	NodeName, Version string
	// Observer hears of connections and commands; nil: nobody.
	Observer Observer
	// Logger; nil: slog.Default().
	Logger *slog.Logger
}

// Validate reports every problem of c.
func (c Config) Validate() error {
	var errs []error
	if c.Cache == nil {
		errs = append(errs, errors.New("respserver: Config.Cache is nil"))
	}
	if c.Partition == nil {
		errs = append(errs, errors.New("respserver: Config.Partition is nil"))
	}
	if _, ok := levelNames[c.Level]; !ok {
		errs = append(errs, fmt.Errorf("respserver: Config.Level must be a concrete level, got %v", c.Level))
	}
	if c.Level == cachev1.Consistency_CONSISTENCY_BOUNDED && c.MaxStaleness <= 0 {
		errs = append(errs, errors.New("respserver: Config.MaxStaleness must be positive with the BOUNDED level"))
	}
	if _, ok := cachev1.WriteMode_name[int32(c.Mode)]; !ok {
		errs = append(errs, fmt.Errorf("respserver: Config.Mode: unknown value %d", c.Mode))
	}
	if c.Timeout < 0 || c.MaxConns < 0 {
		errs = append(errs, errors.New("respserver: Config.Timeout and Config.MaxConns must not be negative"))
	}
	if c.Limits.MaxArgs < 0 || c.Limits.MaxBulk < 0 || c.Limits.MaxInline < 0 {
		errs = append(errs, errors.New("respserver: Config.Limits must not be negative"))
	}
	return errors.Join(errs...)
}

// Server is a RESP listener. Serve runs it; Close stops it.
type Server struct {
	cfg     Config
	log     *slog.Logger
	started time.Time
	cursors *cursors
	table   map[string]*command
	local   LocalGetter // cfg.Cache's, or nil

	nextID   atomic.Int64
	accepted atomic.Uint64
	rejected atomic.Uint64
	// counts are the commands and bytes of INFO's Stats, striped by
	// connection: one counter every connection adds to on every command
	// is a cache line the cores pass back and forth.
	counts [16]connCounts

	wg sync.WaitGroup

	mu     sync.Mutex
	ln     net.Listener
	conns  map[*conn]struct{}
	closed bool
}

// New returns a Server for cfg.
func New(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	def := resp.DefaultLimits()
	if cfg.Limits.MaxArgs == 0 {
		cfg.Limits.MaxArgs = def.MaxArgs
	}
	if cfg.Limits.MaxBulk == 0 {
		cfg.Limits.MaxBulk = def.MaxBulk
	}
	if cfg.Limits.MaxInline == 0 {
		cfg.Limits.MaxInline = def.MaxInline
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.MaxConns == 0 {
		cfg.MaxConns = 10000
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Observer == nil {
		cfg.Observer = nopObserver{}
	}
	local, _ := cfg.Cache.(LocalGetter)
	return &Server{cfg: cfg, log: cfg.Logger, started: time.Now(), cursors: newCursors(), table: buildTable(), local: local,
		conns: map[*conn]struct{}{}}, nil
}

type nopObserver struct{}

func (nopObserver) Connected(int)                     {}
func (nopObserver) Command(string, time.Time, string) {}

// connCounts are the counters of the connections of one stripe.
type connCounts struct {
	commands, in, out atomic.Uint64
	_                 [40]byte // one stripe a cache line
}

// totals sums the stripes: commands run, bytes read and written.
func (s *Server) totals() (commands, in, out uint64) {
	for i := range s.counts {
		c := &s.counts[i]
		commands += c.commands.Load()
		in += c.in.Load()
		out += c.out.Load()
	}
	return commands, in, out
}

// ErrClosed: the server was closed.
var ErrClosed = errors.New("respserver: closed")

// Serve accepts connections on ln until Close; it returns ErrClosed then,
// or the error that stopped it. It closes ln.
func (s *Server) Serve(ln net.Listener) error {
	if s.cfg.TLS != nil {
		ln = tls.NewListener(ln, s.cfg.TLS)
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ln.Close()
		return ErrClosed
	}
	s.ln = ln
	s.mu.Unlock()
	var delay time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed {
				return ErrClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscall.EMFILE) {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				s.log.Warn("resp: accept", "err", err, "retry_in", delay)
				time.Sleep(delay)
				continue
			}
			return fmt.Errorf("respserver: accept: %w", err)
		}
		delay = 0
		s.accepted.Add(1)
		c := s.newConn(nc)
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			nc.Close()
			return ErrClosed
		}
		if len(s.conns) >= s.cfg.MaxConns {
			s.mu.Unlock()
			s.rejected.Add(1)
			c.w.Error("ERR max number of clients reached")
			c.w.Flush()
			nc.Close()
			continue
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		s.cfg.Observer.Connected(1)
		go func() {
			defer s.wg.Done()
			c.serve()
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
			s.cfg.Observer.Connected(-1)
		}()
	}
}

// Close stops accepting, closes every connection and waits for their
// goroutines. It is idempotent.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		s.wg.Wait()
		return nil
	}
	s.closed = true
	var err error
	if s.ln != nil {
		err = s.ln.Close()
	}
	for c := range s.conns {
		c.nc.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

// clientCount is the number of open connections.
func (s *Server) clientCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

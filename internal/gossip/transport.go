package gossip

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// transport wraps memberlist's NetTransport. It injects faults (allow),
// tracks every TCP connection so Shutdown can close them, aborts dials in
// flight on Shutdown, and remembers when the last packet was sent (see
// drainProbe). Only outgoing traffic is filtered.
type transport struct {
	inner   *memberlist.NetTransport
	allow   func(addr string) bool
	streams chan net.Conn
	dialCtx context.Context
	cancel  context.CancelFunc

	mu        sync.Mutex
	closed    bool
	lastWrite time.Time
	conns     map[*trackedConn]struct{}

	closing   chan struct{} // closed when Shutdown starts
	innerDone chan struct{} // closed when inner has shut down
	wg        sync.WaitGroup
	once      sync.Once
	err       error
}

var _ memberlist.NodeAwareTransport = (*transport)(nil)

var (
	errTransportClosed = errors.New("gossip: transport closed")
	errBlocked         = errors.New("gossip: blocked by fault injection")
)

func newTransport(ip string, port int, allow func(string) bool, logger *log.Logger) (*transport, error) {
	nc := &memberlist.NetTransportConfig{BindAddrs: []string{ip}, BindPort: port, Logger: logger}
	// With port 0 the TCP port is picked first and UDP may find it taken:
	// retry as memberlist does for its own transport.
	tries := 1
	if port == 0 {
		tries = 10
	}
	var inner *memberlist.NetTransport
	var err error
	for range tries {
		if inner, err = memberlist.NewNetTransport(nc); err == nil || !strings.Contains(err.Error(), "address already in use") {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("gossip: listen on %s: %w", net.JoinHostPort(ip, strconv.Itoa(port)), err)
	}
	t := &transport{
		inner:     inner,
		allow:     allow,
		streams:   make(chan net.Conn),
		conns:     make(map[*trackedConn]struct{}),
		closing:   make(chan struct{}),
		innerDone: make(chan struct{}),
	}
	t.dialCtx, t.cancel = context.WithCancel(context.Background())
	t.wg.Add(1)
	go t.forwardStreams()
	return t, nil
}

func (t *transport) port() int { return t.inner.GetAutoBindPort() }

func (t *transport) allowed(addr string) bool { return t.allow == nil || t.allow(addr) }

func (t *transport) lastWriteTime() time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.lastWrite
}

func (t *transport) FinalAdvertiseAddr(ip string, port int) (net.IP, int, error) {
	return t.inner.FinalAdvertiseAddr(ip, port)
}

func (t *transport) WriteTo(b []byte, addr string) (time.Time, error) {
	return t.WriteToAddress(b, memberlist.Address{Addr: addr})
}

// WriteToAddress sends a packet. A blocked destination loses it silently,
// as a lossy network would. After Shutdown it fails with an error that is
// not a network error, so a probe in memberlist gives up at once.
func (t *transport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	now := time.Now()
	t.mu.Lock()
	closed := t.closed
	if !closed {
		t.lastWrite = now
	}
	t.mu.Unlock()
	if closed {
		return time.Time{}, errTransportClosed
	}
	if !t.allowed(a.Addr) {
		return now, nil
	}
	return t.inner.WriteToAddress(b, a)
}

func (t *transport) PacketCh() <-chan *memberlist.Packet { return t.inner.PacketCh() }

func (t *transport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	return t.DialAddressTimeout(memberlist.Address{Addr: addr}, timeout)
}

// DialAddressTimeout opens a stream. A blocked destination fails as an
// unreachable one would.
func (t *transport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	if !t.allowed(a.Addr) {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: errBlocked}
	}
	d := net.Dialer{Timeout: timeout}
	c, err := d.DialContext(t.dialCtx, "tcp", a.Addr)
	if err != nil {
		return nil, err
	}
	return t.track(c)
}

func (t *transport) StreamCh() <-chan net.Conn { return t.streams }

// forwardStreams hands incoming streams to memberlist, tracked. It keeps
// draining the inner transport until it has shut down: NetTransport's
// accept loop blocks on its channel and its Shutdown waits for that loop.
func (t *transport) forwardStreams() {
	defer t.wg.Done()
	in := t.inner.StreamCh()
	for {
		select {
		case c := <-in:
			tc, err := t.track(c)
			if err != nil {
				continue // closed: track closed it
			}
			select {
			case t.streams <- tc:
			case <-t.closing:
				_ = tc.Close()
			}
		case <-t.innerDone:
			return
		}
	}
}

func (t *transport) track(c net.Conn) (net.Conn, error) {
	tc := &trackedConn{Conn: c, t: t}
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		_ = c.Close()
		return nil, errTransportClosed
	}
	t.conns[tc] = struct{}{}
	t.mu.Unlock()
	return tc, nil
}

// Shutdown stops new traffic, closes every connection (so memberlist's
// stream handlers and push/pulls return at once), aborts dials in flight,
// then shuts NetTransport down. memberlist calls it first in its Shutdown.
func (t *transport) Shutdown() error {
	t.once.Do(func() {
		t.mu.Lock()
		t.closed = true
		conns := t.conns
		t.conns = nil
		t.mu.Unlock()
		close(t.closing)
		t.cancel()
		for c := range conns {
			_ = c.Conn.Close()
		}
		t.err = t.inner.Shutdown()
		close(t.innerDone)
		t.wg.Wait()
	})
	return t.err
}

// abandon shuts the transport down when memberlist never started: nothing
// reads its packets, so drain them or NetTransport's Shutdown would wait
// on a blocked receive loop forever.
func (t *transport) abandon() {
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-t.inner.PacketCh():
			case <-done:
				return
			}
		}
	}()
	_ = t.Shutdown()
	close(done)
}

type trackedConn struct {
	net.Conn
	t *transport
}

func (c *trackedConn) Close() error {
	c.t.mu.Lock()
	delete(c.t.conns, c)
	c.t.mu.Unlock()
	return c.Conn.Close()
}

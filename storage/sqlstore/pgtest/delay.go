package pgtest

import (
	"errors"
	"io"
	"net"
	"net/url"
	"strconv"
	"sync"
	"time"
)

// DelayedURL returns a URL of the test database reached through a TCP
// relay on 127.0.0.1 that holds every chunk of bytes for rtt/2 in each
// direction before passing it on, so the database answers as if it were
// rtt away, as it is in a real deployment. The relay keeps the order of
// the bytes and does not limit throughput. It stops when the test ends.
//
// The kernel's netem would do this below TCP, but it is not available on
// every machine (it is not on the project's CI machines), so the delay is
// added in user space, like toxiproxy's latency toxic.
func (s *Server) DelayedURL(rtt time.Duration) string {
	s.t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		s.t.Fatalf("pgtest: delay relay: %v", err)
	}
	r := &relay{ln: ln, target: net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)), delay: rtt / 2}
	r.wg.Add(1)
	go r.accept()
	s.t.Cleanup(r.close)
	u, err := url.Parse(s.URL())
	if err != nil {
		s.t.Fatalf("pgtest: %v", err)
	}
	u.Host = ln.Addr().String()
	return u.String()
}

// relay forwards connections to target with a fixed delay each way.
type relay struct {
	ln     net.Listener
	target string
	delay  time.Duration

	mu    sync.Mutex
	conns []net.Conn
	wg    sync.WaitGroup
}

func (r *relay) accept() {
	defer r.wg.Done()
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", r.target)
		if err != nil {
			c.Close()
			continue
		}
		r.mu.Lock()
		r.conns = append(r.conns, c, up)
		r.mu.Unlock()
		r.wg.Add(2)
		go r.pipe(up, c)
		go r.pipe(c, up)
	}
}

// chunk is bytes read at a time, due at that time plus the delay.
type chunk struct {
	b   []byte
	due time.Time
}

// pipe copies src to dst, each chunk delayed by r.delay after it was read;
// when either side ends, both are closed.
func (r *relay) pipe(dst, src net.Conn) {
	defer r.wg.Done()
	q := make(chan chunk, 4096)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for c := range q {
			time.Sleep(time.Until(c.due)) // the injected latency itself
			if _, err := dst.Write(c.b); err != nil {
				src.Close()
				for range q {
				}
				return
			}
		}
	}()
	for {
		buf := make([]byte, 32<<10)
		n, err := src.Read(buf)
		if n > 0 {
			q <- chunk{b: buf[:n], due: time.Now().Add(r.delay)}
		}
		if err != nil {
			close(q)
			<-done
			if errors.Is(err, io.EOF) {
				if tc, ok := dst.(*net.TCPConn); ok {
					tc.CloseWrite()
					return
				}
			}
			dst.Close()
			return
		}
	}
}

func (r *relay) close() {
	r.ln.Close()
	r.mu.Lock()
	for _, c := range r.conns {
		c.Close()
	}
	r.mu.Unlock()
	r.wg.Wait()
}

package client

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"time"

	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	cachev1 "github.com/elcache/elcache/proto/cache/v1"
)

// Pipelining limits: a batch of calls sent at once stays well under the
// node's message limit.
const (
	pipeBatchCalls = 512
	pipeBatchBytes = 1 << 20
)

// pipe multiplexes concurrent calls to one node over one Pipeline stream.
// Calls queued while a batch is being sent go out together in the next.
type pipe struct {
	stream cachev1.Cache_PipelineClient
	cancel context.CancelFunc

	mu      sync.Mutex
	queue   []*cachev1.Call
	waiting map[uint64]chan *cachev1.CallResult
	next    uint64
	err     error // set once the stream broke; the pipe is then dead
	wake    chan struct{}
}

// pipeBroken wraps the error a broken stream gives the calls in flight;
// whether they ran is unknown.
type pipeBroken struct{ err error }

func (e *pipeBroken) Error() string { return fmt.Sprintf("pipeline stream broke: %v", e.err) }

// GRPCStatus makes the error Unavailable, so retries treat it as a lost
// connection.
func (e *pipeBroken) GRPCStatus() *status.Status {
	return status.New(codes.Unavailable, e.Error())
}

func openPipe(ctx context.Context, rpc cachev1.CacheClient) (*pipe, error) {
	ctx, cancel := context.WithCancel(ctx)
	stream, err := rpc.Pipeline(ctx)
	if err != nil {
		cancel()
		return nil, err
	}
	p := &pipe{stream: stream, cancel: cancel, waiting: make(map[uint64]chan *cachev1.CallResult), wake: make(chan struct{}, 1)}
	go p.send(ctx)
	go p.receive()
	return p, nil
}

// pipeline returns the node's live pipe, opening one if needed.
func (n *nodeConn) pipeline(ctx context.Context) (*pipe, error) {
	n.pipeMu.Lock()
	defer n.pipeMu.Unlock()
	if n.pipe != nil && !n.pipe.dead() {
		return n.pipe, nil
	}
	p, err := openPipe(ctx, n.rpc)
	if err != nil {
		return nil, err
	}
	n.pipe = p
	return p, nil
}

func (p *pipe) dead() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err != nil
}

func (p *pipe) send(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			p.fail(ctx.Err())
			return
		case <-p.wake:
		}
		runtime.Gosched()
		for {
			p.mu.Lock()
			calls, size := p.queue, 0
			cut := len(calls)
			for i, c := range calls {
				size += callSize(c)
				if i+1 >= pipeBatchCalls || size >= pipeBatchBytes {
					cut = i + 1
					break
				}
			}
			p.queue = calls[cut:]
			more := len(p.queue) > 0
			if !more {
				p.queue = nil
			}
			p.mu.Unlock()
			if cut == 0 {
				break
			}
			if err := p.stream.Send(&cachev1.PipelineRequest{Calls: calls[:cut]}); err != nil {
				p.fail(err)
				return
			}
			if !more {
				break
			}
		}
	}
}

// callSize estimates a call's encoded size: keys and values dominate.
func callSize(c *cachev1.Call) int {
	n := 32
	switch r := c.Request.(type) {
	case *cachev1.Call_Put:
		n += len(r.Put.GetKey()) + len(r.Put.GetValue())
	case *cachev1.Call_Get:
		n += len(r.Get.GetKey())
	case *cachev1.Call_CompareAndSet:
		n += len(r.CompareAndSet.GetKey()) + len(r.CompareAndSet.GetValue()) + len(r.CompareAndSet.GetExpectedValue())
	case *cachev1.Call_MultiPut:
		for _, e := range r.MultiPut.GetEntries() {
			n += len(e.GetKey()) + len(e.GetValue()) + 16
		}
	case *cachev1.Call_MultiGet:
		for _, k := range r.MultiGet.GetKeys() {
			n += len(k) + 4
		}
	}
	return n
}

func (p *pipe) receive() {
	for {
		resp, err := p.stream.Recv()
		if err != nil {
			p.fail(err)
			return
		}
		p.mu.Lock()
		for _, r := range resp.Results {
			if ch, ok := p.waiting[r.Id]; ok {
				delete(p.waiting, r.Id)
				ch <- r
			}
		}
		p.mu.Unlock()
	}
}

// fail marks the pipe dead and ends every call in flight.
func (p *pipe) fail(err error) {
	p.mu.Lock()
	if p.err == nil {
		p.err = &pipeBroken{err: err}
	}
	for id, ch := range p.waiting {
		delete(p.waiting, id)
		close(ch)
	}
	p.queue = nil
	p.mu.Unlock()
	p.cancel()
}

// close ends the stream.
func (p *pipe) close() { p.fail(context.Canceled) }

// pending is a call sent on a pipe, waiting for its result.
type pending struct {
	p  *pipe
	id uint64
	ch chan *cachev1.CallResult // closed if the stream breaks
}

// start queues req (a copy of it: req may be in flight elsewhere too) and
// returns at once.
func (p *pipe) start(ctx context.Context, req *cachev1.Call) (*pending, error) {
	c := &cachev1.Call{Request: req.Request}
	if dl, ok := ctx.Deadline(); ok {
		left := time.Until(dl)
		if left <= 0 {
			return nil, status.FromContextError(context.DeadlineExceeded).Err()
		}
		c.Timeout = durationpb.New(left)
	}
	pd := &pending{p: p, ch: make(chan *cachev1.CallResult, 1)}
	p.mu.Lock()
	if p.err != nil {
		err := p.err
		p.mu.Unlock()
		return nil, err
	}
	p.next++
	c.Id, pd.id = p.next, p.next
	p.waiting[c.Id] = pd.ch
	p.queue = append(p.queue, c)
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
	return pd, nil
}

// result turns what arrived on pd.ch into the call's outcome: a failed
// call's status as a gRPC status error.
func (pd *pending) result(r *cachev1.CallResult, ok bool) (*cachev1.CallResult, error) {
	if !ok {
		pd.p.mu.Lock()
		err := pd.p.err
		pd.p.mu.Unlock()
		return nil, err
	}
	if e := r.Error; e != nil {
		return nil, status.FromProto(&spb.Status{Code: e.Code, Message: e.Message, Details: e.Details}).Err()
	}
	return r, nil
}

// abandon stops waiting for pd: its result is dropped when it comes.
func (pd *pending) abandon() {
	pd.p.mu.Lock()
	delete(pd.p.waiting, pd.id)
	pd.p.mu.Unlock()
}

// call sends req and waits for its result.
func (p *pipe) call(ctx context.Context, req *cachev1.Call) (*cachev1.CallResult, error) {
	pd, err := p.start(ctx, req)
	if err != nil {
		return nil, err
	}
	select {
	case r, ok := <-pd.ch:
		return pd.result(r, ok)
	case <-ctx.Done():
		pd.abandon()
		return nil, status.FromContextError(ctx.Err()).Err()
	}
}

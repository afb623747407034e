package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	cachev1 "github.com/elcache/elcache/proto/cache/v1"
)

// Pipeline limits (DESIGN.md "Pipelining").
const (
	// pipelineWindow bounds the calls of one stream in flight on the node;
	// past it the node stops reading the stream, and gRPC flow control
	// pushes back on the client.
	pipelineWindow = 4096
	// pipelineBatch bounds the results sent in one message.
	pipelineBatch = 512
	// pipelineBatchBytes bounds a result message's size, well under the
	// clients' default receive limit.
	pipelineBatchBytes = 1 << 20
)

// Pipeline runs the calls of a stream concurrently and sends their results
// back in batches, in completion order: while one batch is being sent, the
// results completed meanwhile gather into the next.
//
// A call that cannot wait (a read this replica can answer from what it
// holds now: see inlineCall) runs at once on the receiving goroutine, and
// the results of a received batch's such calls go back together in one
// message. The other calls go to workers.
func (s *cacheServer) Pipeline(stream cachev1.Cache_PipelineServer) error {
	ctx := stream.Context()
	results := make(chan []*cachev1.CallResult, pipelineWindow)
	window := make(chan struct{}, pipelineWindow)
	sent := make(chan error, 1)
	go func() { sent <- sendResults(stream, results) }()
	inlineCtx := context.WithValue(ctx, noWaitKey{}, true)

	// Calls run on a pool of workers that grows while every worker is
	// busy: a worker's stack stays grown between calls, where a goroutine
	// per call would grow a fresh stack through the read path each time.
	queue := make(chan *cachev1.Call, pipelineWindow)
	var calls sync.WaitGroup
	// idle counts the workers free for one more call: a dispatched call
	// takes one, or starts a new worker.
	var idle atomic.Int64
	work := func() {
		defer calls.Done()
		for c := range queue {
			results <- []*cachev1.CallResult{s.call(ctx, c)}
			<-window
			idle.Add(1)
		}
	}
	var recvErr error
	seen, workers := 0, 0
recv:
	for {
		req, err := stream.Recv()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				recvErr = err
			}
			break
		}
		var done []*cachev1.CallResult
		for _, c := range req.Calls {
			seen++
			if err := s.n.checkCall(ctx, c); err != nil {
				r := &cachev1.CallResult{Id: c.Id, Error: callError(err)}
				s.n.metrics.ObserveCall(c, time.Now(), r)
				done = append(done, r)
				continue
			}
			if r, ok := s.inlineCall(inlineCtx, c); ok {
				done = append(done, r)
				continue
			}
			select {
			case window <- struct{}{}:
			case <-ctx.Done():
				recvErr = ctx.Err()
				break recv
			}
			if !takeOne(&idle) && workers < pipelineWindow {
				workers++
				calls.Add(1)
				go work()
			}
			queue <- c
		}
		if len(done) > 0 {
			// At most one message per received one: the channel's room
			// for pipelineWindow of them cannot run out before the
			// workers' results do, which the window bounds.
			select {
			case results <- done:
			case <-ctx.Done():
				recvErr = ctx.Err()
				break recv
			}
		}
	}
	close(queue)
	calls.Wait()
	close(results)
	if err := <-sent; err != nil {
		return err
	}
	if recvErr != nil {
		return status.FromContextError(recvErr).Err()
	}
	s.n.log.Debug("pipeline ended", "calls", seen)
	return nil
}

// noWaitKey marks a context whose call must not wait: anything that would
// (a quorum round, applying an index, the database, forwarding) returns
// errWouldBlock instead.
type noWaitKey struct{}

// errWouldBlock: the call would have to wait; run it where it may.
var errWouldBlock = errors.New("node: the call would wait")

func mustNotWait(ctx context.Context) bool {
	v, _ := ctx.Value(noWaitKey{}).(bool)
	return v
}

// inlineCall runs c at once if it is a Get this replica can answer without
// waiting, and reports whether it did. Any level but LINEARIZABLE
// qualifies when its proof is at hand; a read that would have to wait
// (for an index, a lease, the database or another node) is left to a
// worker, which runs it again from the start. Reads have no effects, so
// trying one first changes nothing but its counters.
func (s *cacheServer) inlineCall(ctx context.Context, c *cachev1.Call) (*cachev1.CallResult, bool) {
	g, ok := c.Request.(*cachev1.Call_Get)
	if !ok || g.Get == nil {
		return nil, false
	}
	if _, err := callTimeout(c); err != nil {
		return nil, false // the worker reports it
	}
	if o, err := s.n.check.readOptions(g.Get.Options); err == nil && o.level == cachev1.Consistency_CONSISTENCY_LINEARIZABLE {
		return nil, false
	}
	start := time.Now()
	resp, err := s.Get(ctx, g.Get)
	if errors.Is(err, errWouldBlock) {
		return nil, false
	}
	out := &cachev1.CallResult{Id: c.Id}
	if err != nil {
		out.Error = callError(err)
	} else {
		out.Response = &cachev1.CallResult_Get{Get: resp}
	}
	s.n.metrics.ObserveCall(c, start, out)
	return out, true
}

// takeOne decrements n if it is positive, and reports whether it did.
func takeOne(n *atomic.Int64) bool {
	for {
		v := n.Load()
		if v <= 0 {
			return false
		}
		if n.CompareAndSwap(v, v-1) {
			return true
		}
	}
}

// sendResults sends results in batches until the channel is closed: what
// arrived while the last message was being sent goes in the next, split
// where a message would pass pipelineBatch results or pipelineBatchBytes.
// After a failed send it drains the channel, so that no call blocks on it.
func sendResults(stream cachev1.Cache_PipelineServer, results <-chan []*cachev1.CallResult) error {
	var failed error
	for pending := range results {
		if failed != nil {
			continue
		}
	gather:
		for len(pending) < pipelineBatch {
			select {
			case more, ok := <-results:
				if !ok {
					break gather
				}
				pending = append(pending, more...)
			default:
				break gather
			}
		}
		for len(pending) > 0 && failed == nil {
			n, size := 0, 0
			for n < len(pending) && n < pipelineBatch && (n == 0 || size+pipelineResultSize(pending[n]) <= pipelineBatchBytes) {
				size += pipelineResultSize(pending[n])
				n++
			}
			if err := stream.Send(&cachev1.PipelineResponse{Results: pending[:n]}); err != nil {
				failed = err
			}
			pending = pending[n:]
		}
	}
	return failed
}

// pipelineResultSize estimates a result's encoded size cheaply: the values
// it carries dominate.
func pipelineResultSize(r *cachev1.CallResult) int {
	n := 16
	switch v := r.Response.(type) {
	case *cachev1.CallResult_Get:
		n += len(v.Get.GetEntry().GetValue())
	case *cachev1.CallResult_MultiGet:
		for _, e := range v.MultiGet.GetResults() {
			n += len(e.GetEntry().GetValue()) + len(e.GetEntry().GetKey())
		}
	}
	return n
}

// call runs one pipelined call as its unary RPC.
func (s *cacheServer) call(ctx context.Context, c *cachev1.Call) *cachev1.CallResult {
	start := time.Now()
	out := s.runCall(ctx, c)
	s.n.metrics.ObserveCall(c, start, out)
	return out
}

// callTimeout is a call's own timeout (0: none), or an InvalidArgument
// error when it is not a valid non-negative duration.
func callTimeout(c *cachev1.Call) (time.Duration, error) {
	if c.Timeout == nil {
		return 0, nil
	}
	if err := c.Timeout.CheckValid(); err != nil || c.Timeout.AsDuration() < 0 {
		return 0, invalid("call %d: timeout %v is not a valid non-negative duration", c.Id, c.Timeout)
	}
	return c.Timeout.AsDuration(), nil
}

// runCall runs one pipelined call as its unary RPC.
func (s *cacheServer) runCall(ctx context.Context, c *cachev1.Call) *cachev1.CallResult {
	out := &cachev1.CallResult{Id: c.Id}
	d, err := callTimeout(c)
	if err != nil {
		out.Error = callError(err)
		return out
	}
	if d > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	res, err := cachev1.RunCall(ctx, s, c)
	if errors.Is(err, cachev1.ErrEmptyCall) {
		err = invalid("call %d has no request", c.Id)
	}
	if err == nil {
		out.Response = res.Response
	}
	if err != nil {
		out.Error = callError(err)
	}
	return out
}

// callError is err as the unary RPC would have returned it.
func callError(err error) *cachev1.CallError {
	st, ok := status.FromError(err)
	if !ok {
		st = status.Convert(toStatus(err))
	}
	if st.Code() == codes.OK {
		st = status.New(codes.Unknown, fmt.Sprint(err))
	}
	p := st.Proto()
	return &cachev1.CallError{Code: p.Code, Message: p.Message, Details: p.Details}
}

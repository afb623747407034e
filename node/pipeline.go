package node

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/elcache/elcache/internal/pipeline"
	cachev1 "github.com/elcache/elcache/proto/cache/v1"
)

// Pipeline runs the calls of a stream through internal/pipeline, with
// cacheServer as its Handler: checkCall refuses calls (Refuse), a read this
// replica can answer from what it holds now runs at once (Inline), and the
// other calls run as their unary RPCs on workers (Run).
func (s *cacheServer) Pipeline(stream cachev1.Cache_PipelineServer) error {
	return pipeline.Serve(stream, s, s.n.log)
}

var _ pipeline.Handler = (*cacheServer)(nil)

// Refuse answers a pipelined call that checkCall refuses with its error.
func (s *cacheServer) Refuse(ctx context.Context, c *cachev1.Call) (*cachev1.CallResult, bool) {
	err := s.n.checkCall(ctx, c)
	if err == nil {
		return nil, false
	}
	r := &cachev1.CallResult{Id: c.Id, Error: callError(err)}
	s.n.metrics.ObserveCall(c, time.Now(), r)
	return r, true
}

// errWouldBlock: the call would have to wait; run it where it may.
var errWouldBlock = errors.New("node: the call would wait")

// InlineContext marks the context of a stream's Inline calls (noWaitKey,
// route.go): once per stream, not per call.
func (s *cacheServer) InlineContext(ctx context.Context) context.Context {
	return context.WithValue(ctx, noWaitKey{}, true)
}

// Inline runs c at once if it is a Get this replica can answer without
// waiting, and reports whether it did. Any level but LINEARIZABLE
// qualifies when its proof is at hand; a read that would have to wait
// (for an index, a lease, the database or another node) is left to a
// worker, which runs it again from the start. Reads have no effects, so
// trying one first changes nothing but its counters.
func (s *cacheServer) Inline(ctx context.Context, c *cachev1.Call) (*cachev1.CallResult, bool) {
	g, ok := c.Request.(*cachev1.Call_Get)
	if !ok || g.Get == nil {
		return nil, false
	}
	if _, err := callTimeout(c); err != nil {
		return nil, false // the worker reports it
	}
	if o, err := s.n.check.ReadOptions(g.Get.Options); err == nil && o.Level == cachev1.Consistency_CONSISTENCY_LINEARIZABLE {
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

// Run runs one pipelined call as its unary RPC, on a worker of its stream,
// and counts it.
func (s *cacheServer) Run(ctx context.Context, c *cachev1.Call) *cachev1.CallResult {
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

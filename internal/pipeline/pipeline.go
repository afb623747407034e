package pipeline

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"

	"google.golang.org/grpc/status"

	cachev1 "github.com/elcache/elcache/proto/cache/v1"
)

// Stream limits (DESIGN.md "Pipelining").
const (
	// window bounds the calls of one stream in flight on the server; past
	// it the server stops reading the stream, and gRPC flow control
	// pushes back on the client.
	window = 4096
	// batch bounds the results sent in one message.
	batch = 512
	// batchBytes bounds a result message's size, well under the clients'
	// default receive limit.
	batchBytes = 1 << 20
)

// Handler runs the calls of a stream. Serve calls Refuse and Inline on the
// receiving goroutine and Run on workers, concurrently.
type Handler interface {
	// Refuse returns the result of a call the stream's caller may not
	// make (authorization, rate limits), and true; or false to let it run.
	Refuse(ctx context.Context, c *cachev1.Call) (*cachev1.CallResult, bool)
	// InlineContext returns the context Inline gets for every call of a
	// stream whose context is ctx; Serve asks once per stream. The handler
	// marks it so that its code knows it must not wait.
	InlineContext(ctx context.Context) context.Context
	// Inline runs c at once if it can without waiting, and reports
	// whether it did. ctx is InlineContext's.
	Inline(ctx context.Context, c *cachev1.Call) (*cachev1.CallResult, bool)
	// Run runs c to its result, which carries c's id; it may wait.
	Run(ctx context.Context, c *cachev1.Call) *cachev1.CallResult
}

// Serve runs the calls of stream through h until the client closes its
// side or the stream fails, and logs the calls seen on a clean end to log
// (if not nil). See the package comment for what it promises.
func Serve(stream cachev1.Cache_PipelineServer, h Handler, log *slog.Logger) error {
	ctx := stream.Context()
	results := make(chan []*cachev1.CallResult, window)
	inFlight := make(chan struct{}, window)
	sent := make(chan error, 1)
	go func() { sent <- send(stream, results) }()
	inlineCtx := h.InlineContext(ctx)

	// Calls run on a pool of workers that grows while every worker is
	// busy: a worker's stack stays grown between calls, where a goroutine
	// per call would grow a fresh stack through the read path each time.
	queue := make(chan *cachev1.Call, window)
	var calls sync.WaitGroup
	// idle counts the workers free for one more call: a dispatched call
	// takes one, or starts a new worker.
	var idle atomic.Int64
	work := func() {
		defer calls.Done()
		for c := range queue {
			results <- []*cachev1.CallResult{h.Run(ctx, c)}
			<-inFlight
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
			if r, ok := h.Refuse(ctx, c); ok {
				done = append(done, r)
				continue
			}
			if r, ok := h.Inline(inlineCtx, c); ok {
				done = append(done, r)
				continue
			}
			select {
			case inFlight <- struct{}{}:
			case <-ctx.Done():
				recvErr = ctx.Err()
				break recv
			}
			if !takeOne(&idle) && workers < window {
				workers++
				calls.Add(1)
				go work()
			}
			queue <- c
		}
		if len(done) > 0 {
			// At most one message per received one: the channel's room
			// for window of them cannot run out before the workers'
			// results do, which the window bounds.
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
	if log != nil {
		log.Debug("pipeline ended", "calls", seen)
	}
	return nil
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

// send sends results in batches until the channel is closed: what arrived
// while the last message was being sent goes in the next, split where a
// message would pass batch results or batchBytes. After a failed send it
// drains the channel, so that no call blocks on it.
func send(stream cachev1.Cache_PipelineServer, results <-chan []*cachev1.CallResult) error {
	var failed error
	for pending := range results {
		if failed != nil {
			continue
		}
	gather:
		for len(pending) < batch {
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
			for n < len(pending) && n < batch && (n == 0 || size+resultSize(pending[n]) <= batchBytes) {
				size += resultSize(pending[n])
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

// resultSize estimates a result's encoded size cheaply: the values it
// carries dominate.
func resultSize(r *cachev1.CallResult) int {
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

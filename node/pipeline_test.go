package node_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/elcache/elcache/node/nodetest"
	cachev1 "github.com/elcache/elcache/proto/cache/v1"
)

// pipeliner multiplexes concurrent callers over one Pipeline stream: calls
// queued while a batch is being sent go out together in the next one.
type pipeliner struct {
	stream cachev1.Cache_PipelineClient

	mu      sync.Mutex
	queue   []*cachev1.Call
	waiting map[uint64]chan *cachev1.CallResult
	wake    chan struct{}
	err     error
	next    atomic.Uint64
}

func newPipeliner(t testing.TB, cl cachev1.CacheClient) *pipeliner {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stream, err := cl.Pipeline(ctx)
	if err != nil {
		t.Fatal(err)
	}
	p := &pipeliner{stream: stream, waiting: make(map[uint64]chan *cachev1.CallResult), wake: make(chan struct{}, 1)}
	done := make(chan struct{})
	go p.send(ctx)
	go func() {
		defer close(done)
		p.receive()
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return p
}

func (p *pipeliner) send(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.wake:
		}
		p.mu.Lock()
		calls := p.queue
		p.queue = nil
		p.mu.Unlock()
		if len(calls) == 0 {
			continue
		}
		if err := p.stream.Send(&cachev1.PipelineRequest{Calls: calls}); err != nil {
			p.fail(err)
			return
		}
	}
}

func (p *pipeliner) receive() {
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

func (p *pipeliner) fail(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err == nil {
		p.err = err
	}
	for id, ch := range p.waiting {
		delete(p.waiting, id)
		close(ch)
	}
}

// do sends c and waits for its result; a failed call's error is returned
// as a gRPC status error.
func (p *pipeliner) do(ctx context.Context, c *cachev1.Call) (*cachev1.CallResult, error) {
	c.Id = p.next.Add(1)
	ch := make(chan *cachev1.CallResult, 1)
	p.mu.Lock()
	if p.err != nil {
		p.mu.Unlock()
		return nil, p.err
	}
	p.waiting[c.Id] = ch
	p.queue = append(p.queue, c)
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
	select {
	case r, ok := <-ch:
		if !ok {
			return nil, fmt.Errorf("pipeline ended: %w", p.err)
		}
		if e := r.Error; e != nil {
			return r, status.FromProto(&spb.Status{Code: e.Code, Message: e.Message, Details: e.Details}).Err()
		}
		return r, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (p *pipeliner) put(ctx context.Context, req *cachev1.PutRequest) (*cachev1.PutResponse, error) {
	r, err := p.do(ctx, &cachev1.Call{Request: &cachev1.Call_Put{Put: req}})
	if err != nil {
		return nil, err
	}
	return r.GetPut(), nil
}

func (p *pipeliner) get(ctx context.Context, req *cachev1.GetRequest) (*cachev1.GetResponse, error) {
	r, err := p.do(ctx, &cachev1.Call{Request: &cachev1.Call_Get{Get: req}})
	if err != nil {
		return nil, err
	}
	return r.GetGet(), nil
}

// TestPipeline: calls on one stream behave as their unary RPCs, many in
// flight at once, and a failed call fails alone.
func TestPipeline(t *testing.T) {
	n := nodetest.Start(t)
	cl := dial(t, n.Addr())
	p := newPipeliner(t, cl)
	ctx := opCtx(t)

	const callers, each = 50, 20
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for c := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				key := []byte(fmt.Sprintf("pipe-%d-%d", c, i))
				put, err := p.put(ctx, &cachev1.PutRequest{Key: key, Value: key})
				if err != nil {
					errs <- err
					return
				}
				got, err := p.get(ctx, &cachev1.GetRequest{Key: key})
				if err != nil {
					errs <- err
					return
				}
				if !got.Found || string(got.Entry.Value) != string(key) || got.Entry.Version != put.Version {
					errs <- fmt.Errorf("get %s after put at %d = %v", key, put.Version, got)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	// The unary path sees the pipelined writes.
	if r, err := cl.Get(ctx, &cachev1.GetRequest{Key: []byte("pipe-7-3")}); err != nil || !r.Found {
		t.Fatalf("unary get of a pipelined put: %v, %v", r, err)
	}
	// Bad calls fail alone, with the unary RPC's error.
	if _, err := p.put(ctx, &cachev1.PutRequest{Key: nil, Value: []byte("x")}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("put with an empty key: %v, want InvalidArgument", err)
	}
	if _, err := p.do(ctx, &cachev1.Call{}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("call without a request: %v, want InvalidArgument", err)
	}
	if _, err := p.do(ctx, &cachev1.Call{Timeout: durationpb.New(-time.Second), Request: &cachev1.Call_Get{Get: &cachev1.GetRequest{Key: []byte("k")}}}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("call with a negative timeout: %v, want InvalidArgument", err)
	}
	if r, err := p.get(ctx, &cachev1.GetRequest{Key: []byte("missing")}); err != nil || r.Found {
		t.Errorf("get of a missing key: %v, %v, want not found and no error", r, err)
	}
	// The stream survived the failed calls.
	if _, err := p.put(ctx, &cachev1.PutRequest{Key: []byte("after"), Value: []byte("x")}); err != nil {
		t.Errorf("put after failed calls: %v", err)
	}
}

// TestPipelineClientClose: a client that closes its side still gets the
// results of its calls in flight, then the stream ends cleanly.
func TestPipelineClientClose(t *testing.T) {
	n := nodetest.Start(t)
	stream, err := dial(t, n.Addr()).Pipeline(opCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	var calls []*cachev1.Call
	for i := range 100 {
		key := []byte(fmt.Sprintf("close-%d", i))
		calls = append(calls, &cachev1.Call{Id: uint64(i), Request: &cachev1.Call_Put{Put: &cachev1.PutRequest{Key: key, Value: key}}})
	}
	if err := stream.Send(&cachev1.PipelineRequest{Calls: calls}); err != nil {
		t.Fatal(err)
	}
	if err := stream.CloseSend(); err != nil {
		t.Fatal(err)
	}
	got := make(map[uint64]bool)
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("stream ended with %v after %d results", err, len(got))
		}
		for _, r := range resp.Results {
			if r.Error != nil || r.GetPut() == nil {
				t.Errorf("call %d: %v", r.Id, r)
			}
			if got[r.Id] {
				t.Errorf("call %d answered twice", r.Id)
			}
			got[r.Id] = true
		}
	}
	if len(got) != 100 {
		t.Fatalf("%d of 100 calls answered before the stream ended", len(got))
	}
}

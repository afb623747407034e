package node_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/elcache/elcache/node"
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

// sendBatch sends calls as one message and collects the response messages
// until every call is answered.
func sendBatch(t *testing.T, cl cachev1.CacheClient, calls []*cachev1.Call) [][]*cachev1.CallResult {
	t.Helper()
	stream, err := cl.Pipeline(opCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&cachev1.PipelineRequest{Calls: calls}); err != nil {
		t.Fatal(err)
	}
	if err := stream.CloseSend(); err != nil {
		t.Fatal(err)
	}
	var msgs [][]*cachev1.CallResult
	answered := 0
	for answered < len(calls) {
		resp, err := stream.Recv()
		if err != nil {
			t.Fatalf("stream ended with %v after %d of %d results", err, answered, len(calls))
		}
		msgs = append(msgs, resp.Results)
		answered += len(resp.Results)
	}
	return msgs
}

func getCall(id uint64, key string, level cachev1.Consistency) *cachev1.Call {
	return &cachev1.Call{Id: id, Request: &cachev1.Call_Get{Get: &cachev1.GetRequest{
		Key: []byte(key), Options: &cachev1.ReadOptions{Consistency: level}}}}
}

// TestPipelineReadsAnsweredTogether: reads a replica can answer from what
// it holds run as they arrive, and a batch of them comes back in one
// message; reads that must wait (LINEARIZABLE) are answered as well, in
// the same stream.
func TestPipelineReadsAnsweredTogether(t *testing.T) {
	n := nodetest.Start(t)
	cl := dial(t, n.Addr())
	ctx := opCtx(t)
	for i := range 100 {
		key := fmt.Sprintf("together-%d", i)
		if _, err := cl.Put(ctx, &cachev1.PutRequest{Key: []byte(key), Value: []byte(key)}); err != nil {
			t.Fatal(err)
		}
	}
	var calls []*cachev1.Call
	for i := range 100 {
		calls = append(calls, getCall(uint64(i), fmt.Sprintf("together-%d", i), cachev1.Consistency_CONSISTENCY_EVENTUAL))
	}
	msgs := sendBatch(t, cl, calls)
	if len(msgs) != 1 {
		t.Errorf("100 EVENTUAL hits sent in one message came back in %d messages, want 1", len(msgs))
	}
	for _, m := range msgs {
		for _, r := range m {
			if want := fmt.Sprintf("together-%d", r.Id); r.Error != nil || string(r.GetGet().GetEntry().GetValue()) != want {
				t.Errorf("call %d: %v, want value %s", r.Id, r, want)
			}
		}
	}

	// Every level, hits and misses, mixed in one batch.
	calls = nil
	levels := []cachev1.Consistency{cachev1.Consistency_CONSISTENCY_LINEARIZABLE, cachev1.Consistency_CONSISTENCY_LEASE,
		cachev1.Consistency_CONSISTENCY_SESSION, cachev1.Consistency_CONSISTENCY_EVENTUAL}
	for i := range 40 {
		key := fmt.Sprintf("together-%d", i)
		if i%5 == 4 {
			key = fmt.Sprintf("absent-%d", i)
		}
		calls = append(calls, getCall(uint64(i), key, levels[i%len(levels)]))
	}
	calls = append(calls, &cachev1.Call{Id: 40, Request: &cachev1.Call_Get{Get: &cachev1.GetRequest{Key: []byte("b"),
		Options: &cachev1.ReadOptions{Consistency: cachev1.Consistency_CONSISTENCY_BOUNDED, MaxStaleness: durationpb.New(time.Second)}}}})
	calls = append(calls, getCall(41, "", cachev1.Consistency_CONSISTENCY_EVENTUAL))
	got := map[uint64]*cachev1.CallResult{}
	for _, m := range sendBatch(t, cl, calls) {
		for _, r := range m {
			got[r.Id] = r
		}
	}
	for i := range 40 {
		r := got[uint64(i)]
		found := i%5 != 4
		if r == nil || r.Error != nil || r.GetGet().GetFound() != found {
			t.Errorf("call %d (%v, found %v): %v", i, levels[i%len(levels)], found, r)
		}
		if r.GetGet().GetMeta().GetConsistency() != levels[i%len(levels)] {
			t.Errorf("call %d served at %v, asked %v", i, r.GetGet().GetMeta().GetConsistency(), levels[i%len(levels)])
		}
	}
	if r := got[40]; r == nil || r.Error != nil {
		t.Errorf("BOUNDED read: %v", r)
	}
	if r := got[41]; r == nil || codes.Code(r.GetError().GetCode()) != codes.InvalidArgument {
		t.Errorf("read of an empty key: %v, want InvalidArgument", r)
	}
}

// TestPipelineMissRefills: a pipelined read that misses in front of a
// database is not answered on the spot; it loads the row like a unary
// read.
func TestPipelineMissRefills(t *testing.T) {
	n := nodetest.Start(t, func(c *node.Config) {
		c.Backend = "sqlite://" + filepath.Join(t.TempDir(), "backing.db")
		c.Backing.CreateTable = true
	})
	cl := dial(t, n.Addr())
	// Write-around: the row goes to the database only.
	if _, err := cl.Put(opCtx(t), &cachev1.PutRequest{Key: []byte("around"), Value: []byte("v1"),
		Options: &cachev1.WriteOptions{Mode: cachev1.WriteMode_WRITE_MODE_WRITE_AROUND}}); err != nil {
		t.Fatal(err)
	}
	for _, level := range []cachev1.Consistency{cachev1.Consistency_CONSISTENCY_EVENTUAL, cachev1.Consistency_CONSISTENCY_LINEARIZABLE} {
		msgs := sendBatch(t, cl, []*cachev1.Call{getCall(1, "around", level), getCall(2, "nowhere", level)})
		got := map[uint64]*cachev1.CallResult{}
		for _, m := range msgs {
			for _, r := range m {
				got[r.Id] = r
			}
		}
		if r := got[1]; r.Error != nil || string(r.GetGet().GetEntry().GetValue()) != "v1" {
			t.Errorf("%v read of a row only the database has: %v, want v1", level, r)
		}
		if r := got[2]; r.Error != nil || r.GetGet().GetFound() {
			t.Errorf("%v read of a key nowhere: %v, want not found", level, r)
		}
	}
}

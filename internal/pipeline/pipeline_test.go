package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	cachev1 "github.com/elcache/elcache/proto/cache/v1"
)

// memCache is a working cache in memory: the unary Get and Put, and the
// Pipeline stream served by Serve with the cache as its Handler. EVENTUAL
// Gets run inline; Puts of keys under "forbidden/" are refused.
type memCache struct {
	cachev1.UnimplementedCacheServer

	// hold, if set, runs first in every Run, on the worker.
	hold func(ctx context.Context, c *cachev1.Call)
	// offered, if set, runs in Refuse with the count of calls offered.
	offered func(n int64)
	// seen counts the calls offered to Refuse.
	seen atomic.Int64
	// wrongCtx counts Inline calls without the inline mark and Run calls
	// with it.
	wrongCtx atomic.Int64
	// served receives what Serve returned, for each stream.
	served chan error

	mu      sync.Mutex
	values  map[string][]byte
	version uint64
}

func (m *memCache) Get(_ context.Context, req *cachev1.GetRequest) (*cachev1.GetResponse, error) {
	if len(req.Key) == 0 {
		return nil, status.Error(codes.InvalidArgument, "empty key")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.values[string(req.Key)]
	if !ok {
		return &cachev1.GetResponse{}, nil
	}
	return &cachev1.GetResponse{Found: true, Entry: &cachev1.Entry{Key: req.Key, Value: v}}, nil
}

func (m *memCache) Put(_ context.Context, req *cachev1.PutRequest) (*cachev1.PutResponse, error) {
	if len(req.Key) == 0 {
		return nil, status.Error(codes.InvalidArgument, "empty key")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.values[string(req.Key)] = req.Value
	m.version++
	return &cachev1.PutResponse{Version: m.version}, nil
}

func (m *memCache) Pipeline(stream cachev1.Cache_PipelineServer) error {
	err := Serve(stream, m, nil)
	m.served <- err
	return err
}

var _ Handler = (*memCache)(nil)

func (m *memCache) Refuse(_ context.Context, c *cachev1.Call) (*cachev1.CallResult, bool) {
	if n := m.seen.Add(1); m.offered != nil {
		m.offered(n)
	}
	if p, ok := c.Request.(*cachev1.Call_Put); ok && strings.HasPrefix(string(p.Put.GetKey()), "forbidden/") {
		return &cachev1.CallResult{Id: c.Id, Error: &cachev1.CallError{Code: int32(codes.PermissionDenied), Message: "forbidden"}}, true
	}
	return nil, false
}

// inlineKey marks the context of Inline calls.
type inlineKey struct{}

func inlined(ctx context.Context) bool { v, _ := ctx.Value(inlineKey{}).(bool); return v }

func (m *memCache) InlineContext(ctx context.Context) context.Context {
	return context.WithValue(ctx, inlineKey{}, true)
}

func (m *memCache) Inline(ctx context.Context, c *cachev1.Call) (*cachev1.CallResult, bool) {
	if !inlined(ctx) {
		m.wrongCtx.Add(1)
	}
	g, ok := c.Request.(*cachev1.Call_Get)
	if !ok || g.Get.GetOptions().GetConsistency() != cachev1.Consistency_CONSISTENCY_EVENTUAL {
		return nil, false
	}
	return m.result(ctx, c), true
}

func (m *memCache) Run(ctx context.Context, c *cachev1.Call) *cachev1.CallResult {
	if inlined(ctx) {
		m.wrongCtx.Add(1)
	}
	if m.hold != nil {
		m.hold(ctx, c)
	}
	return m.result(ctx, c)
}

// result runs c as its unary RPC.
func (m *memCache) result(ctx context.Context, c *cachev1.Call) *cachev1.CallResult {
	res, err := cachev1.RunCall(ctx, m, c)
	if err != nil {
		st := status.Convert(err)
		return &cachev1.CallResult{Id: c.Id, Error: &cachev1.CallError{Code: int32(st.Code()), Message: st.Message()}}
	}
	res.Id = c.Id
	return res
}

// serve starts m on a gRPC server on 127.0.0.1:0 and returns a client of
// it; both stop when the test ends.
func serve(t *testing.T, m *memCache) cachev1.CacheClient {
	t.Helper()
	m.values = map[string][]byte{}
	m.served = make(chan error, 16)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	cachev1.RegisterCacheServer(srv, m)
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		srv.Serve(lis)
	}()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		srv.Stop()
		<-stopped
		if n := m.wrongCtx.Load(); n > 0 {
			t.Errorf("%d calls ran with the wrong context (inline mark)", n)
		}
	})
	return cachev1.NewCacheClient(conn)
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// sendBatch sends calls as one message and collects the response messages
// until every call is answered.
func sendBatch(t *testing.T, cl cachev1.CacheClient, calls []*cachev1.Call) [][]*cachev1.CallResult {
	t.Helper()
	stream, err := cl.Pipeline(testCtx(t))
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

func putCall(id uint64, key string) *cachev1.Call {
	return &cachev1.Call{Id: id, Request: &cachev1.Call_Put{Put: &cachev1.PutRequest{Key: []byte(key), Value: []byte(key)}}}
}

// receivePuts receives the results of Put calls until the stream ends
// cleanly, and returns the ids answered; each must succeed, once.
func receivePuts(t *testing.T, stream cachev1.Cache_PipelineClient) map[uint64]bool {
	t.Helper()
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
	return got
}

// TestClientClose: a client that closes its side still gets the results
// of its calls in flight, then the stream ends cleanly.
func TestClientClose(t *testing.T) {
	m := &memCache{}
	stream, err := serve(t, m).Pipeline(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	var calls []*cachev1.Call
	for i := range 100 {
		calls = append(calls, putCall(uint64(i), fmt.Sprintf("close-%d", i)))
	}
	if err := stream.Send(&cachev1.PipelineRequest{Calls: calls}); err != nil {
		t.Fatal(err)
	}
	if err := stream.CloseSend(); err != nil {
		t.Fatal(err)
	}
	got := receivePuts(t, stream)
	if len(got) != 100 {
		t.Fatalf("%d of 100 calls answered before the stream ended", len(got))
	}
	if err := <-m.served; err != nil {
		t.Errorf("Serve after the client closed: %v, want nil", err)
	}
}

// TestInlineAnsweredTogether: calls the handler answers inline run as they
// arrive, and those of one received message come back in one message.
func TestInlineAnsweredTogether(t *testing.T) {
	m := &memCache{}
	cl := serve(t, m)
	ctx := testCtx(t)
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
		t.Errorf("100 inline calls sent in one message came back in %d messages, want 1", len(msgs))
	}
	for _, msg := range msgs {
		for _, r := range msg {
			if want := fmt.Sprintf("together-%d", r.Id); r.Error != nil || string(r.GetGet().GetEntry().GetValue()) != want {
				t.Errorf("call %d: %v, want value %s", r.Id, r, want)
			}
		}
	}
}

// TestRefused: a refused call gets the handler's refusal as its result and
// does not run; the stream goes on, and the refusals of one received
// message come back together with its inline results.
func TestRefused(t *testing.T) {
	m := &memCache{}
	cl := serve(t, m)
	calls := []*cachev1.Call{
		putCall(1, "forbidden/a"),
		getCall(2, "forbidden/a", cachev1.Consistency_CONSISTENCY_EVENTUAL),
		putCall(3, "forbidden/b"),
	}
	msgs := sendBatch(t, cl, calls)
	if len(msgs) != 1 {
		t.Errorf("2 refusals and an inline call sent in one message came back in %d messages, want 1", len(msgs))
	}
	got := map[uint64]*cachev1.CallResult{}
	for _, msg := range msgs {
		for _, r := range msg {
			got[r.Id] = r
		}
	}
	for _, id := range []uint64{1, 3} {
		if r := got[id]; codes.Code(r.GetError().GetCode()) != codes.PermissionDenied {
			t.Errorf("call %d: %v, want PermissionDenied", id, r)
		}
	}
	if r := got[2]; r.GetError() != nil || r.GetGet().GetFound() {
		t.Errorf("get of a refused put's key: %v, want not found", r)
	}
	if r := sendBatch(t, cl, []*cachev1.Call{putCall(4, "allowed")}); r[0][0].GetError() != nil {
		t.Errorf("put after refused calls: %v", r[0][0])
	}
}

// TestCompletionOrder: results go back in completion order, each with its
// call's id: a call that finishes first is answered first.
func TestCompletionOrder(t *testing.T) {
	release := make(chan struct{})
	m := &memCache{hold: func(ctx context.Context, c *cachev1.Call) {
		if c.Id == 1 {
			select {
			case <-release:
			case <-ctx.Done():
			}
		}
	}}
	stream, err := serve(t, m).Pipeline(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&cachev1.PipelineRequest{Calls: []*cachev1.Call{putCall(1, "slow"), putCall(2, "fast")}}); err != nil {
		t.Fatal(err)
	}
	var order []uint64
	for len(order) < 2 {
		resp, err := stream.Recv()
		if err != nil {
			t.Fatalf("stream ended with %v after results %v", err, order)
		}
		for _, r := range resp.Results {
			if r.Error != nil || r.GetPut() == nil {
				t.Errorf("call %d: %v", r.Id, r)
			}
			order = append(order, r.Id)
			if r.Id == 2 {
				close(release)
			}
		}
	}
	if order[0] != 2 || order[1] != 1 {
		t.Errorf("results came in order %v, want [2 1]", order)
	}
	if err := stream.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); !errors.Is(err, io.EOF) {
		t.Errorf("stream after every call was answered: %v, want EOF", err)
	}
}

// TestBatchCount: results that pass the count bound of a message go back
// in several messages of at most batch results.
func TestBatchCount(t *testing.T) {
	cl := serve(t, &memCache{})
	var calls []*cachev1.Call
	for i := range 1000 {
		calls = append(calls, getCall(uint64(i), fmt.Sprintf("absent-%d", i), cachev1.Consistency_CONSISTENCY_EVENTUAL))
	}
	msgs := sendBatch(t, cl, calls)
	if len(msgs) != 2 || len(msgs[0]) != batch || len(msgs[1]) != 1000-batch {
		var sizes []int
		for _, msg := range msgs {
			sizes = append(sizes, len(msg))
		}
		t.Errorf("1000 inline results came back in messages of %v, want [%d %d]", sizes, batch, 1000-batch)
	}
}

// TestResultsSplit: results of one batch that would pass the message size
// bound go back in several messages.
func TestResultsSplit(t *testing.T) {
	cl := serve(t, &memCache{})
	ctx := testCtx(t)
	value := make([]byte, 256<<10)
	for i := range 12 {
		if _, err := cl.Put(ctx, &cachev1.PutRequest{Key: []byte(fmt.Sprintf("big-%d", i)), Value: value}); err != nil {
			t.Fatal(err)
		}
	}
	var calls []*cachev1.Call
	for i := range 12 {
		calls = append(calls, getCall(uint64(i), fmt.Sprintf("big-%d", i), cachev1.Consistency_CONSISTENCY_EVENTUAL))
	}
	msgs := sendBatch(t, cl, calls)
	// 3 MiB of values at most 1 MiB a message: 4 messages or more.
	if len(msgs) < 4 {
		t.Errorf("12 values of 256 KiB came back in %d messages, want at least 4", len(msgs))
	}
	for _, msg := range msgs {
		size := 0
		for _, r := range msg {
			if r.Error != nil || len(r.GetGet().GetEntry().GetValue()) != len(value) {
				t.Errorf("call %d: error %v, %d bytes", r.Id, r.Error, len(r.GetGet().GetEntry().GetValue()))
			}
			size += len(r.GetGet().GetEntry().GetValue())
		}
		if size > 1<<20 {
			t.Errorf("a message carries %d bytes of values, over 1 MiB", size)
		}
	}
}

// TestWindow: at most window calls of a stream run at once; the next call
// received waits, and the server reads no further, until one finishes.
// Then every call is answered.
func TestWindow(t *testing.T) {
	var running, most atomic.Int64
	full, waiting, release := make(chan struct{}), make(chan struct{}), make(chan struct{})
	var fullOnce sync.Once
	m := &memCache{hold: func(ctx context.Context, c *cachev1.Call) {
		n := running.Add(1)
		for {
			v := most.Load()
			if n <= v || most.CompareAndSwap(v, n) {
				break
			}
		}
		if n == window {
			fullOnce.Do(func() { close(full) })
		}
		select {
		case <-release:
		case <-ctx.Done():
		}
		running.Add(-1)
	}, offered: func(n int64) {
		if n == window+1 {
			close(waiting)
		}
	}}
	const total = window + 100
	var calls []*cachev1.Call
	for i := range total {
		calls = append(calls, putCall(uint64(i), fmt.Sprintf("w-%d", i)))
	}
	ctx := testCtx(t)
	stream, err := serve(t, m).Pipeline(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sent := make(chan error, 1)
	go func() {
		err := stream.Send(&cachev1.PipelineRequest{Calls: calls})
		if err == nil {
			err = stream.CloseSend()
		}
		sent <- err
	}()
	select {
	case <-full:
	case <-ctx.Done():
		t.Fatalf("%d calls running, want %d", running.Load(), window)
	}
	// The call past the window has been received and waits for room; the
	// ones after it have not been read.
	select {
	case <-waiting:
	case <-ctx.Done():
		t.Fatalf("%d calls offered, want %d", m.seen.Load(), window+1)
	}
	if n := m.seen.Load(); n != window+1 {
		t.Errorf("%d calls read with %d running, want %d", n, window, window+1)
	}
	close(release)
	got := receivePuts(t, stream)
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	if len(got) != total {
		t.Errorf("%d of %d calls answered", len(got), total)
	}
	if n := most.Load(); n != window {
		t.Errorf("at most %d calls ran at once, want %d", n, window)
	}
}

// TestStreamCanceled: when the client's context ends, the calls in flight
// see it, and Serve returns it as a gRPC status.
func TestStreamCanceled(t *testing.T) {
	started := make(chan struct{})
	m := &memCache{hold: func(ctx context.Context, c *cachev1.Call) {
		close(started)
		<-ctx.Done()
	}}
	cl := serve(t, m)
	ctx, cancel := context.WithCancel(testCtx(t))
	stream, err := cl.Pipeline(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&cachev1.PipelineRequest{Calls: []*cachev1.Call{putCall(1, "held")}}); err != nil {
		t.Fatal(err)
	}
	<-started
	cancel()
	if err := <-m.served; status.Code(err) != codes.Canceled {
		t.Errorf("Serve after the client canceled: %v, want Canceled", err)
	}
}

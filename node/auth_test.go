package node_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/elcache/elcache/node"
	"github.com/elcache/elcache/node/nodetest"
	cachev1 "github.com/elcache/elcache/proto/cache/v1"
)

var testTokens = []node.Token{
	{Name: "reader", Role: node.RoleRead, Secret: "reader-secret-0123456789"},
	{Name: "writer", Role: node.RoleWrite, Secret: "writer-secret-0123456789"},
	{Name: "operator", Role: node.RoleAdmin, Secret: "operator-secret-012345678"},
	{Name: "nodes", Role: node.RolePeer, Secret: "peer-secret-0123456789abc"},
}

// as returns ctx carrying secret as a bearer token.
func as(ctx context.Context, secret string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+secret)
}

func TestAuthTokens(t *testing.T) {
	n := nodetest.Start(t, func(c *node.Config) { c.Tokens = testTokens; c.MetricsAddr = "127.0.0.1:0" })
	cc := dialConn(t, n.Addr())
	cl, admin := cachev1.NewCacheClient(cc), cachev1.NewAdminClient(cc)
	ctx := opCtx(t)
	reader, writer, operator := testTokens[0].Secret, testTokens[1].Secret, testTokens[2].Secret

	wantCode := func(what string, err error, code codes.Code) {
		t.Helper()
		if status.Code(err) != code {
			t.Errorf("%s: %v, want %v", what, err, code)
		}
	}
	_, err := cl.Get(ctx, &cachev1.GetRequest{Key: []byte("k")})
	wantCode("get without a token", err, codes.Unauthenticated)
	_, err = cl.Get(as(ctx, "not-a-known-token-at-all"), &cachev1.GetRequest{Key: []byte("k")})
	wantCode("get with an unknown token", err, codes.Unauthenticated)
	_, err = cl.Get(metadata.AppendToOutgoingContext(ctx, "authorization", reader), &cachev1.GetRequest{Key: []byte("k")})
	wantCode("get with a token that is not Bearer", err, codes.Unauthenticated)
	if h, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil || h.Status != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("health check without a token: %v, %v (probes need no token)", h, err)
	}

	_, err = cl.Put(as(ctx, reader), &cachev1.PutRequest{Key: []byte("k"), Value: []byte("v")})
	wantCode("put with a read token", err, codes.PermissionDenied)
	if err != nil && !strings.Contains(err.Error(), `"reader"`) {
		t.Errorf("permission error does not name the token: %v", err)
	}
	if strings.Contains(fmt.Sprint(err), reader) {
		t.Errorf("an error shows the secret: %v", err)
	}
	if _, err := cl.Put(as(ctx, writer), &cachev1.PutRequest{Key: []byte("k"), Value: []byte("v")}); err != nil {
		t.Fatalf("put with a write token: %v", err)
	}
	if r, err := cl.Get(as(ctx, reader), &cachev1.GetRequest{Key: []byte("k")}); err != nil || string(r.Entry.GetValue()) != "v" {
		t.Errorf("get with a read token: %v, %v", r, err)
	}
	_, err = admin.Drain(as(ctx, writer), &cachev1.DrainRequest{Node: "nobody"})
	wantCode("drain with a write token", err, codes.PermissionDenied)
	_, err = admin.Drain(as(ctx, operator), &cachev1.DrainRequest{Node: "nobody"})
	if c := status.Code(err); c == codes.PermissionDenied || c == codes.Unauthenticated {
		t.Errorf("drain with an admin token refused: %v", err)
	}

	// Pipelined calls are checked one by one.
	stream, err := cl.Pipeline(as(ctx, reader))
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&cachev1.PipelineRequest{Calls: []*cachev1.Call{
		getCall(1, "k", cachev1.Consistency_CONSISTENCY_LINEARIZABLE),
		{Id: 2, Request: &cachev1.Call_Put{Put: &cachev1.PutRequest{Key: []byte("k"), Value: []byte("w")}}},
	}}); err != nil {
		t.Fatal(err)
	}
	got := map[uint64]*cachev1.CallResult{}
	for len(got) < 2 {
		resp, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range resp.Results {
			got[r.Id] = r
		}
	}
	if r := got[1]; r.Error != nil || string(r.GetGet().GetEntry().GetValue()) != "v" {
		t.Errorf("pipelined get with a read token: %v", r)
	}
	if r := got[2]; codes.Code(r.GetError().GetCode()) != codes.PermissionDenied {
		t.Errorf("pipelined put with a read token: %v, want PermissionDenied", r)
	}
	s, err := cl.Pipeline(ctx)
	if err == nil {
		// The stream opens lazily; its first receive reports the refusal.
		_, err = s.Recv()
	}
	wantCode("pipeline without a token", err, codes.Unauthenticated)

	// Refusals are counted, pipelined ones included.
	text := scrape(t, n.MetricsAddr())
	if got := sample(t, text, `elcache_request_errors_total{code="PermissionDenied",op="put"}`); got != 2 {
		t.Errorf("refused puts counted %v, want 2 (one unary, one pipelined)", got)
	}
	if got := sample(t, text, `elcache_request_errors_total{code="Unauthenticated",op="pipeline"}`); got != 1 {
		t.Errorf("refused pipeline streams counted %v, want 1", got)
	}
}

// TestAuthCluster: nodes with tokens reach each other with the peer
// token: the cluster forms, a write sent to any node is forwarded to its
// leader, and a client cannot use the peer services.
func TestAuthCluster(t *testing.T) {
	c := nodetest.StartCluster(t, 3, func(_ int, cfg *node.Config) { cfg.Tokens = testTokens })
	ctx := opCtx(t)
	for i := range 20 {
		key := []byte(fmt.Sprintf("auth-%d", i))
		via := dial(t, c.Nodes[i%3].Addr())
		if _, err := via.Put(as(ctx, testTokens[1].Secret), &cachev1.PutRequest{Key: key, Value: key}); err != nil {
			t.Fatalf("put %s through n%d: %v", key, i%3, err)
		}
		r, err := dial(t, c.Nodes[(i+1)%3].Addr()).Get(as(ctx, testTokens[0].Secret), &cachev1.GetRequest{Key: key})
		if err != nil || string(r.Entry.GetValue()) != string(key) {
			t.Fatalf("get %s through n%d: %v, %v", key, (i+1)%3, r, err)
		}
	}
	// A client token, even admin, cannot call the node-to-node services.
	err := dialConn(t, c.Nodes[0].Addr()).Invoke(as(ctx, testTokens[2].Secret), "/elcache.peer.v1.Peer/Leaders", &cachev1.MembersRequest{}, &cachev1.MembersResponse{})
	if status.Code(err) != codes.PermissionDenied {
		t.Errorf("peer RPC with an admin token: %v, want PermissionDenied", err)
	}
}

// TestRateLimit: a client flooding a node is limited with
// ResourceExhausted; another client at a modest rate is never limited.
func TestRateLimit(t *testing.T) {
	const rate, burst = 200, 20
	n := nodetest.Start(t, func(c *node.Config) {
		c.Tokens = testTokens
		c.RateLimit, c.RateBurst = rate, burst
	})
	cl := dial(t, n.Addr())
	ctx := opCtx(t)
	flooder, calm := as(ctx, testTokens[1].Secret), as(ctx, testTokens[0].Secret)

	var allowed, limited atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	stop := make(chan struct{})
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				_, err := cl.Put(flooder, &cachev1.PutRequest{Key: []byte("flood"), Value: []byte("x")})
				switch status.Code(err) {
				case codes.OK:
					allowed.Add(1)
				case codes.ResourceExhausted:
					limited.Add(1)
					if !strings.Contains(err.Error(), `"writer"`) {
						t.Errorf("limit error does not name the client: %v", err)
					}
				default:
					t.Errorf("flood put: %v", err)
				}
			}
		}()
	}
	// The calm client: 20 reads a second, a tenth of its budget.
	var calmErrs []error
	for i := range 20 {
		if _, err := cl.Get(calm, &cachev1.GetRequest{Key: []byte("flood")}); err != nil {
			calmErrs = append(calmErrs, fmt.Errorf("read %d: %w", i, err))
		}
		time.Sleep(50 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	elapsed := time.Since(start).Seconds()
	for _, err := range calmErrs {
		t.Errorf("calm client: %v", err)
	}
	if limited.Load() == 0 {
		t.Errorf("the flood was never limited (%d puts allowed)", allowed.Load())
	}
	if max := burst + rate*elapsed*1.1; float64(allowed.Load()) > max {
		t.Errorf("%d flood puts allowed in %.1fs, more than the budget of %.0f", allowed.Load(), elapsed, max)
	}
	t.Logf("flood: %d allowed, %d limited in %.1fs; calm client: 20 of 20 served", allowed.Load(), limited.Load(), elapsed)
}

// TestTokensNeedPeer: a token file without a peer token reads well (the
// file's own checks are internal/auth's tests) but a node with its tokens
// is refused.
func TestTokensNeedPeer(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(path, []byte("reader read reader-secret-0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tokens, err := node.ReadTokenFile(path)
	if err != nil || len(tokens) != 1 || tokens[0].Name != "reader" || tokens[0].Role != node.RoleRead {
		t.Fatalf("token file: %v, %v", tokens, err)
	}
	cfg := nodetest.Config(t)
	cfg.Tokens = tokens
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "role peer") {
		t.Errorf("tokens without a peer token: %v", err)
	}
}

package auth

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

var testTokens = []Token{
	{Name: "reader", Role: RoleRead, Secret: "reader-secret-0123456789"},
	{Name: "writer", Role: RoleWrite, Secret: "writer-secret-0123456789"},
	{Name: "operator", Role: RoleAdmin, Secret: "operator-secret-012345678"},
	{Name: "nodes", Role: RolePeer, Secret: "peer-secret-0123456789abc"},
	{Name: "other-nodes", Role: RolePeer, Secret: "peer-secret-0123456789xyz"},
}

// incoming is a server-side context from addr carrying the authorization
// metadata auth, if any.
func incoming(addr string, auth ...string) context.Context {
	ctx := peer.NewContext(context.Background(), &peer.Peer{Addr: &net.TCPAddr{IP: net.ParseIP(addr), Port: 4000}})
	if len(auth) > 0 {
		ctx = metadata.NewIncomingContext(ctx, metadata.Pairs("authorization", auth[0]))
	}
	return ctx
}

func bearer(t Token) string { return "Bearer " + t.Secret }

func TestMethodRole(t *testing.T) {
	for method, want := range map[string]Role{
		"/elcache.cache.v1.Cache/Get":                                    RoleRead,
		"/elcache.cache.v1.Cache/MultiGet":                               RoleRead,
		"/elcache.cache.v1.Cache/Topology":                               RoleRead,
		"/elcache.cache.v1.Cache/Pipeline":                               RoleRead,
		"/elcache.cache.v1.Cache/Put":                                    RoleWrite,
		"/elcache.cache.v1.Cache/Delete":                                 RoleWrite,
		"/elcache.cache.v1.Cache/CompareAndSet":                          RoleWrite,
		"/elcache.cache.v1.Cache/MultiPut":                               RoleWrite,
		"/elcache.cache.v1.Admin/Members":                                RoleRead,
		"/elcache.cache.v1.Admin/Drain":                                  RoleAdmin,
		"/elcache.cache.v1.Admin/Backup":                                 RoleAdmin,
		"/grpc.health.v1.Health/Check":                                   0,
		"/grpc.reflection.v1.ServerReflection/ServerReflectionInfo":      0,
		"/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo": 0,
		"/elcache.peer.v1.Peer/Leaders":                                  RolePeer,
		"/some.other.Service/Call":                                       RolePeer,
	} {
		if got := methodRole(method); got != want {
			t.Errorf("methodRole(%s) = %v, want %v", method, got, want)
		}
	}
}

// unary runs g's unary interceptor on method and reports the handler's
// Caller (if it ran and had one) and the error.
func unary(g *Guard, ctx context.Context, method string, forwarded bool) (c Caller, ran bool, err error) {
	_, err = g.UnaryInterceptor(func(context.Context) bool { return forwarded })(ctx, nil, &grpc.UnaryServerInfo{FullMethod: method},
		func(ctx context.Context, _ any) (any, error) {
			c, _ = CallerFrom(ctx)
			ran = true
			return nil, nil
		})
	return c, ran, err
}

func TestUnaryInterceptor(t *testing.T) {
	g := NewGuard(testTokens, 0, 0)
	if g.PeerSecret() != testTokens[3].Secret {
		t.Errorf("PeerSecret is not the first peer token's")
	}
	const get, put, drain, leaders = "/elcache.cache.v1.Cache/Get", "/elcache.cache.v1.Cache/Put", "/elcache.cache.v1.Admin/Drain", "/elcache.peer.v1.Peer/Leaders"
	for _, tt := range []struct {
		name, method string
		ctx          context.Context
		want         codes.Code
		caller       Caller
	}{
		{"no token", get, incoming("10.0.0.1"), codes.Unauthenticated, Caller{}},
		{"unknown token", get, incoming("10.0.0.1", "Bearer not-a-known-token-at-all"), codes.Unauthenticated, Caller{}},
		{"not Bearer", get, incoming("10.0.0.1", testTokens[0].Secret), codes.Unauthenticated, Caller{}},
		{"health without a token", "/grpc.health.v1.Health/Check", incoming("10.0.0.1"), codes.OK, Caller{}},
		{"read token reads", get, incoming("10.0.0.1", bearer(testTokens[0])), codes.OK, Caller{"reader", RoleRead}},
		{"read token writes", put, incoming("10.0.0.1", bearer(testTokens[0])), codes.PermissionDenied, Caller{}},
		{"write token writes", put, incoming("10.0.0.1", bearer(testTokens[1])), codes.OK, Caller{"writer", RoleWrite}},
		{"write token drains", drain, incoming("10.0.0.1", bearer(testTokens[1])), codes.PermissionDenied, Caller{}},
		{"admin token drains", drain, incoming("10.0.0.1", bearer(testTokens[2])), codes.OK, Caller{"operator", RoleAdmin}},
		{"admin token calls a peer", leaders, incoming("10.0.0.1", bearer(testTokens[2])), codes.PermissionDenied, Caller{}},
		{"peer token calls a peer", leaders, incoming("10.0.0.1", bearer(testTokens[4])), codes.OK, Caller{"other-nodes", RolePeer}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, ran, err := unary(g, tt.ctx, tt.method, false)
			if status.Code(err) != tt.want || ran != (tt.want == codes.OK) || c != tt.caller {
				t.Fatalf("got caller %+v, ran %v, %v; want caller %+v, %v", c, ran, err, tt.caller, tt.want)
			}
			if err != nil && strings.Contains(err.Error(), "secret-0123456789") {
				t.Errorf("an error shows the secret: %v", err)
			}
		})
	}
	_, _, err := unary(g, incoming("10.0.0.1", bearer(testTokens[0])), put, false)
	if !strings.Contains(err.Error(), `token "reader" (role read) may not call /elcache.cache.v1.Cache/Put: it needs role write`) {
		t.Errorf("permission error: %v", err)
	}

	// Without tokens or a limit the guard lets everything through and
	// stores no caller.
	if c, ran, err := unary(NewGuard(nil, 0, 0), incoming("10.0.0.1"), leaders, false); err != nil || !ran || c != (Caller{}) {
		t.Errorf("guard off: %+v, %v, %v", c, ran, err)
	}
}

func TestRateLimit(t *testing.T) {
	const get, leaders = "/elcache.cache.v1.Cache/Get", "/elcache.peer.v1.Peer/Leaders"
	t.Run("tokens", func(t *testing.T) {
		// Rates so low that no token comes back during the test.
		g := NewGuard(testTokens, 0.001, 3)
		writer, reader := incoming("10.0.0.1", bearer(testTokens[1])), incoming("10.0.0.1", bearer(testTokens[0]))
		for i := range 3 {
			if _, _, err := unary(g, writer, get, false); err != nil {
				t.Fatalf("request %d of a burst of 3: %v", i, err)
			}
		}
		_, _, err := unary(g, writer, get, false)
		if status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), `client "writer" is over 0.001 requests a second (burst 3)`) {
			t.Errorf("past the burst: %v", err)
		}
		if _, _, err := unary(g, reader, get, false); err != nil {
			t.Errorf("another client: %v", err)
		}
		// Nodes are never limited.
		for range 10 {
			if _, _, err := unary(g, incoming("10.0.0.1", bearer(testTokens[3])), get, false); err != nil {
				t.Fatalf("peer token limited: %v", err)
			}
		}
	})
	t.Run("addresses", func(t *testing.T) {
		g := NewGuard(nil, 0.01, 0) // a burst of one second's worth, rounded up: 1
		if _, _, err := unary(g, incoming("10.0.0.1"), get, false); err != nil {
			t.Fatal(err)
		}
		_, _, err := unary(g, incoming("10.0.0.1"), get, false)
		if status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), `"10.0.0.1"`) {
			t.Errorf("second request from one address: %v", err)
		}
		if _, _, err := unary(g, incoming("10.0.0.2"), get, false); err != nil {
			t.Errorf("another address: %v", err)
		}
		// A forwarded request was counted where it came in; the peer
		// services are not limited.
		for range 3 {
			if _, _, err := unary(g, incoming("10.0.0.1"), get, true); err != nil {
				t.Fatalf("forwarded request limited: %v", err)
			}
			if _, _, err := unary(g, incoming("10.0.0.1"), leaders, false); err != nil {
				t.Fatalf("peer service limited: %v", err)
			}
		}
	})
}

func TestBucket(t *testing.T) {
	t0 := time.Now()
	b := &bucket{tokens: 2, at: t0}
	for i, tt := range []struct {
		after time.Duration
		want  bool
	}{
		{0, true}, {0, true}, {0, false}, // the burst of 2, then empty
		{100 * time.Millisecond, false},                          // 0.5 tokens at 5 a second
		{200 * time.Millisecond, true},                           // 1.5
		{time.Hour, true}, {time.Hour, true}, {time.Hour, false}, // never more than the burst
	} {
		if got := b.take(t0.Add(tt.after), 5, 2); got != tt.want {
			t.Errorf("take %d at +%v: %v, want %v", i, tt.after, got, tt.want)
		}
	}
}

func TestCall(t *testing.T) {
	g := NewGuard(testTokens, 0.001, 1)
	reader, writer := Caller{"reader", RoleRead}, Caller{"writer", RoleWrite}
	if err := g.Call(reader, true); status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), "may not write") {
		t.Errorf("write with a read token: %v", err)
	}
	if err := g.Call(reader, false); err != nil {
		t.Errorf("read with a read token: %v", err)
	}
	if err := g.Call(writer, true); err != nil {
		t.Errorf("write with a write token: %v", err)
	}
	if err := g.Call(writer, false); status.Code(err) != codes.ResourceExhausted {
		t.Errorf("past the limit: %v", err)
	}
}

// stream is a server stream with only a context.
type stream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s stream) Context() context.Context { return s.ctx }

func TestStreamInterceptor(t *testing.T) {
	const pipeline = "/elcache.cache.v1.Cache/Pipeline"
	var refused []string
	si := NewGuard(testTokens, 0.001, 1).StreamInterceptor(func(method string, err error) {
		refused = append(refused, method+" "+status.Code(err).String())
	})
	run := func(ctx context.Context) (c Caller, ran bool, err error) {
		err = si(nil, stream{ctx: ctx}, &grpc.StreamServerInfo{FullMethod: pipeline}, func(_ any, ss grpc.ServerStream) error {
			c, _ = CallerFrom(ss.Context())
			ran = true
			return nil
		})
		return c, ran, err
	}
	if _, ran, err := run(incoming("10.0.0.1")); status.Code(err) != codes.Unauthenticated || ran {
		t.Errorf("stream without a token: ran %v, %v", ran, err)
	}
	// Opening a stream takes nothing from the bucket: its calls do.
	for range 3 {
		if c, ran, err := run(incoming("10.0.0.1", bearer(testTokens[0]))); err != nil || !ran || c != (Caller{"reader", RoleRead}) {
			t.Fatalf("stream with a read token: %+v, %v, %v", c, ran, err)
		}
	}
	if want := []string{pipeline + " Unauthenticated"}; strings.Join(refused, ",") != strings.Join(want, ",") {
		t.Errorf("refused streams: %v, want %v", refused, want)
	}
}

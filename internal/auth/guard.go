package auth

import (
	"context"
	"crypto/sha256"
	"math"
	"net"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	cachev1 "github.com/elcache/elcache/proto/cache/v1"
)

// Caller is who sent a request: a token's name and role, or without
// tokens the caller's address, with the peer role.
type Caller struct {
	Name string
	Role Role
}

// callerKey carries the Caller in a request context.
type callerKey struct{}

// CallerFrom returns the Caller the interceptors stored in ctx; false when
// the guard had nothing to check (no tokens and no rate limit, or a
// method that needs no role).
func CallerFrom(ctx context.Context) (Caller, bool) {
	c, ok := ctx.Value(callerKey{}).(Caller)
	return c, ok
}

// Guard authenticates, authorizes and rate-limits requests. Its tokens and
// limits are fixed by NewGuard; it is safe for concurrent use.
type Guard struct {
	byHash map[[32]byte]Token // nil: no authentication
	peer   string             // the secret nodes send each other
	limit  float64            // requests a second per client; 0: none
	burst  float64

	mu      sync.Mutex
	buckets map[string]*bucket
}

// NewGuard returns a Guard for tokens (none: no authentication) that lets
// each client make limit requests a second (0: no limit) in bursts of
// burst (0: one second's worth).
func NewGuard(tokens []Token, limit float64, burst int) *Guard {
	if burst == 0 {
		burst = int(math.Ceil(limit))
	}
	g := &Guard{limit: limit, burst: float64(max(burst, 1)), buckets: map[string]*bucket{}}
	if len(tokens) > 0 {
		g.byHash = make(map[[32]byte]Token, len(tokens))
		for _, t := range tokens {
			g.byHash[sha256.Sum256([]byte(t.Secret))] = t
			if t.Role == RolePeer && g.peer == "" {
				g.peer = t.Secret
			}
		}
	}
	return g
}

// PeerSecret is the secret this node sends its peers: the first token of
// role peer, "" without tokens.
func (g *Guard) PeerSecret() string { return g.peer }

// methodRole is the role a gRPC method needs; 0 means none (health
// checks, reflection).
func methodRole(fullMethod string) Role {
	service, method, _ := strings.Cut(strings.TrimPrefix(fullMethod, "/"), "/")
	switch service {
	case cachev1.Cache_ServiceDesc.ServiceName:
		switch method {
		case "Put", "Delete", "CompareAndSet", "MultiPut", "Mutate":
			return RoleWrite
		}
		return RoleRead // reads, Stats, Topology; Pipeline checks each call
	case cachev1.Admin_ServiceDesc.ServiceName:
		if method == "Drain" || method == "Backup" {
			return RoleAdmin
		}
		return RoleRead
	case "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection":
		return 0
	}
	return RolePeer // peer, raft and anything else
}

// authenticate returns the caller of ctx, or an Unauthenticated error.
func (g *Guard) authenticate(ctx context.Context) (Caller, error) {
	if g.byHash == nil {
		return Caller{Name: peerName(ctx), Role: RolePeer}, nil
	}
	md, _ := metadata.FromIncomingContext(ctx)
	vals := md.Get("authorization")
	if len(vals) == 0 {
		return Caller{}, status.Error(codes.Unauthenticated, "missing credentials: send the metadata \"authorization: Bearer TOKEN\"")
	}
	secret, ok := strings.CutPrefix(vals[0], "Bearer ")
	if !ok {
		return Caller{}, status.Error(codes.Unauthenticated, "malformed authorization metadata: want \"Bearer TOKEN\"")
	}
	t, ok := g.byHash[sha256.Sum256([]byte(secret))]
	if !ok {
		return Caller{}, status.Error(codes.Unauthenticated, "unknown token")
	}
	return Caller{Name: t.Name, Role: t.Role}, nil
}

// authorize checks c may use a method that needs role.
func authorize(c Caller, role Role, what string) error {
	if c.Role < role {
		return status.Errorf(codes.PermissionDenied, "token %q (role %v) may not %s: it needs role %v", c.Name, c.Role, what, role)
	}
	return nil
}

// allow takes one request from c's bucket, or returns ResourceExhausted.
// Nodes are not limited.
func (g *Guard) allow(c Caller) error {
	if g.limit <= 0 || c.Role == RolePeer && g.byHash != nil {
		return nil
	}
	g.mu.Lock()
	b := g.buckets[c.Name]
	if b == nil {
		b = &bucket{tokens: g.burst, at: time.Now()}
		g.buckets[c.Name] = b
	}
	ok := b.take(time.Now(), g.limit, g.burst)
	g.mu.Unlock()
	if !ok {
		return status.Errorf(codes.ResourceExhausted, cachev1.RateLimitPrefix+": client %q is over %g requests a second (burst %g); slow down and retry", c.Name, g.limit, g.burst)
	}
	return nil
}

// Call authorizes and rate-limits one call of a stream the stream
// interceptor let in, made by c (from CallerFrom): a write when write is
// set, else a read.
func (g *Guard) Call(c Caller, write bool) error {
	role, what := RoleRead, "read"
	if write {
		role, what = RoleWrite, "write"
	}
	if err := authorize(c, role, what); err != nil {
		return err
	}
	return g.allow(c)
}

// bucket is a token bucket.
type bucket struct {
	tokens float64
	at     time.Time
}

func (b *bucket) take(now time.Time, rate, burst float64) bool {
	b.tokens = min(burst, b.tokens+now.Sub(b.at).Seconds()*rate)
	b.at = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// peerName names an unauthenticated caller by its address's host.
func peerName(ctx context.Context) string {
	p, ok := peer.FromContext(ctx)
	if !ok || p.Addr == nil {
		return "unknown"
	}
	host, _, err := net.SplitHostPort(p.Addr.String())
	if err != nil {
		return p.Addr.String()
	}
	return host
}

// off reports whether the guard has nothing to do: no tokens, no limit.
func (g *Guard) off() bool { return g.byHash == nil && g.limit <= 0 }

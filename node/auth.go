package node

import (
	"bufio"
	"context"
	"crypto/sha256"
	"fmt"
	"math"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	cachev1 "github.com/elcache/elcache/proto/cache/v1"
)

// Client authentication and rate limiting (docs/operations.md "Security").
//
// With a token file, every request but the health checks carries
// "authorization: Bearer TOKEN" metadata; the token's role decides what
// it may do. Nodes authenticate to each other with a token of role peer,
// the first in the file. Each client (a token, or without tokens a peer
// address) has its own token bucket when RateLimit is set.

// Role is what a token may do; each role includes the ones before it.
type Role int

const (
	RoleRead  Role = iota + 1 // reads, Stats, Topology, Members
	RoleWrite                 // writes too
	RoleAdmin                 // Admin.Drain too
	RolePeer                  // node-to-node services: nodes only
)

var roleNames = map[string]Role{"read": RoleRead, "write": RoleWrite, "admin": RoleAdmin, "peer": RolePeer}

func (r Role) String() string {
	for name, v := range roleNames {
		if v == r {
			return name
		}
	}
	return fmt.Sprintf("role(%d)", int(r))
}

// Token is one client credential: a name (for logs, limits and metrics;
// the secret itself is never logged) and a role.
type Token struct {
	Name   string
	Role   Role
	Secret string
}

// minSecretLen is the shortest token secret accepted.
const minSecretLen = 16

// ReadTokenFile reads tokens, one per line as "NAME ROLE SECRET"; blank
// lines and lines starting with # are skipped. Errors name the line, never
// the secret.
func ReadTokenFile(path string) ([]Token, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("token file: %w", err)
	}
	defer f.Close()
	var out []Token
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		fields := strings.Fields(text)
		if len(fields) != 3 {
			return nil, fmt.Errorf("token file %s line %d: want NAME ROLE SECRET, got %d fields", path, line, len(fields))
		}
		role, ok := roleNames[fields[1]]
		if !ok {
			return nil, fmt.Errorf("token file %s line %d: unknown role %q (read, write, admin or peer)", path, line, fields[1])
		}
		out = append(out, Token{Name: fields[0], Role: role, Secret: fields[2]})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("token file %s: %w", path, err)
	}
	return out, validateTokens(out)
}

// validateTokens checks names and secrets are unique and secrets long
// enough.
func validateTokens(tokens []Token) error {
	names, secrets := map[string]bool{}, map[[32]byte]bool{}
	var errs []string
	for _, t := range tokens {
		switch {
		case t.Name == "":
			errs = append(errs, "a token has no name")
		case names[t.Name]:
			errs = append(errs, fmt.Sprintf("token name %q appears twice", t.Name))
		case t.Role < RoleRead || t.Role > RolePeer:
			errs = append(errs, fmt.Sprintf("token %q: unknown role", t.Name))
		case len(t.Secret) < minSecretLen:
			errs = append(errs, fmt.Sprintf("token %q: secret shorter than %d characters", t.Name, minSecretLen))
		case secrets[sha256.Sum256([]byte(t.Secret))]:
			errs = append(errs, fmt.Sprintf("token %q: same secret as another token", t.Name))
		}
		names[t.Name] = true
		secrets[sha256.Sum256([]byte(t.Secret))] = true
	}
	if len(errs) > 0 {
		return fmt.Errorf("tokens: %s", strings.Join(errs, "; "))
	}
	return nil
}

// authKey carries the caller's identity in a request context.
type authKey struct{}

// caller is who sent a request.
type caller struct {
	name string
	role Role
}

// guard authenticates, authorizes and rate-limits requests.
type guard struct {
	byHash map[[32]byte]Token // nil: no authentication
	peer   string             // the secret nodes send each other
	limit  float64            // requests a second per client; 0: none
	burst  float64

	mu      sync.Mutex
	buckets map[string]*bucket
}

func newGuard(tokens []Token, limit float64, burst int) *guard {
	if burst == 0 {
		burst = int(math.Ceil(limit))
	}
	g := &guard{limit: limit, burst: float64(max(burst, 1)), buckets: map[string]*bucket{}}
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

// methodRole is the role a gRPC method needs; 0 means none (health
// checks, reflection).
func methodRole(fullMethod string) Role {
	service, method, _ := strings.Cut(strings.TrimPrefix(fullMethod, "/"), "/")
	switch service {
	case cachev1.Cache_ServiceDesc.ServiceName:
		switch method {
		case "Put", "Delete", "CompareAndSet", "MultiPut":
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
func (g *guard) authenticate(ctx context.Context) (caller, error) {
	if g.byHash == nil {
		return caller{name: peerName(ctx), role: RolePeer}, nil
	}
	md, _ := metadata.FromIncomingContext(ctx)
	vals := md.Get("authorization")
	if len(vals) == 0 {
		return caller{}, status.Error(codes.Unauthenticated, "missing credentials: send the metadata \"authorization: Bearer TOKEN\"")
	}
	secret, ok := strings.CutPrefix(vals[0], "Bearer ")
	if !ok {
		return caller{}, status.Error(codes.Unauthenticated, "malformed authorization metadata: want \"Bearer TOKEN\"")
	}
	t, ok := g.byHash[sha256.Sum256([]byte(secret))]
	if !ok {
		return caller{}, status.Error(codes.Unauthenticated, "unknown token")
	}
	return caller{name: t.Name, role: t.Role}, nil
}

// authorize checks c may use a method that needs role.
func authorize(c caller, role Role, what string) error {
	if c.role < role {
		return status.Errorf(codes.PermissionDenied, "token %q (role %v) may not %s: it needs role %v", c.name, c.role, what, role)
	}
	return nil
}

// allow takes one request from c's bucket, or returns ResourceExhausted.
// Nodes are not limited.
func (g *guard) allow(c caller) error {
	if g.limit <= 0 || c.role == RolePeer && g.byHash != nil {
		return nil
	}
	g.mu.Lock()
	b := g.buckets[c.name]
	if b == nil {
		b = &bucket{tokens: g.burst, at: time.Now()}
		g.buckets[c.name] = b
	}
	ok := b.take(time.Now(), g.limit, g.burst)
	g.mu.Unlock()
	if !ok {
		return status.Errorf(codes.ResourceExhausted, "rate limit: client %q is over %g requests a second (burst %g); slow down and retry", c.name, g.limit, g.burst)
	}
	return nil
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
func (g *guard) off() bool { return g.byHash == nil && g.limit <= 0 }

func (n *Node) authUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	role := methodRole(info.FullMethod)
	if role == 0 || n.guard.off() {
		return handler(ctx, req)
	}
	c, err := n.guard.authenticate(ctx)
	if err != nil {
		return nil, err
	}
	if err := authorize(c, role, "call "+info.FullMethod); err != nil {
		return nil, err
	}
	// Nodes are not limited: with tokens they carry the peer role, and
	// without, a forwarded request was counted where it came in.
	if role != RolePeer && !(n.guard.byHash == nil && isForwarded(ctx)) {
		if err := n.guard.allow(c); err != nil {
			return nil, err
		}
	}
	return handler(context.WithValue(ctx, authKey{}, c), req)
}

func (n *Node) authStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	role := methodRole(info.FullMethod)
	if role == 0 || n.guard.off() {
		return handler(srv, ss)
	}
	c, err := n.guard.authenticate(ss.Context())
	if err == nil {
		err = authorize(c, role, "call "+info.FullMethod)
	}
	if err != nil {
		// Refused streams count as errors of their method (the unary
		// interceptor counts refused RPCs).
		if n.metrics != nil {
			_, method, _ := strings.Cut(strings.TrimPrefix(info.FullMethod, "/"), "/")
			n.metrics.errors.WithLabelValues(strings.ToLower(method), status.Code(err).String()).Inc()
		}
		return err
	}
	return handler(srv, &authedStream{ServerStream: ss, ctx: context.WithValue(ss.Context(), authKey{}, c)})
}

type authedStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *authedStream) Context() context.Context { return s.ctx }

// checkCall authorizes and rate-limits one pipelined call.
func (n *Node) checkCall(ctx context.Context, c *cachev1.Call) error {
	who, ok := ctx.Value(authKey{}).(caller)
	if !ok {
		return nil
	}
	role, what := RoleRead, "read"
	if isWrite(cachev1.CallRequest(c)) {
		role, what = RoleWrite, "write"
	}
	if err := authorize(who, role, what); err != nil {
		return err
	}
	return n.guard.allow(who)
}

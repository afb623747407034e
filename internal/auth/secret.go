package auth

import (
	"crypto/sha256"
	"errors"
	"fmt"
)

// Front doors that carry no gRPC metadata (the Redis listener) check
// callers with these: a secret presented once per connection, then a role
// and a request-rate check per command.

// ErrUnknownSecret: no token has the secret presented.
var ErrUnknownSecret = errors.New("auth: unknown token")

// ErrDenied: the caller's role does not allow what it asked.
var ErrDenied = errors.New("auth: permission denied")

// ErrRateLimited: the caller is over its request rate.
var ErrRateLimited = errors.New("auth: rate limited")

// Required reports whether callers must present a token.
func (g *Guard) Required() bool { return g.byHash != nil }

// Anonymous is the caller of a connection that presented no token, named
// by its address host: the peer role when no tokens are configured (as a
// gRPC caller without credentials), none otherwise.
func (g *Guard) Anonymous(host string) Caller {
	if g.byHash == nil {
		return Caller{Name: host, Role: RolePeer}
	}
	return Caller{Name: host}
}

// Authenticate returns the caller whose token has secret; with name set,
// the token must also bear that name.
func (g *Guard) Authenticate(name, secret string) (Caller, error) {
	if g.byHash == nil {
		return Caller{}, fmt.Errorf("%w: this node has no tokens", ErrUnknownSecret)
	}
	t, ok := g.byHash[sha256.Sum256([]byte(secret))]
	if !ok || name != "" && name != t.Name {
		return Caller{}, ErrUnknownSecret
	}
	return Caller{Name: t.Name, Role: t.Role}, nil
}

// Check authorizes c for a request that needs role and takes it from c's
// request rate. Its errors wrap ErrDenied or ErrRateLimited.
func (g *Guard) Check(c Caller, role Role) error {
	if c.Role < role {
		return fmt.Errorf("%w: token %q (role %v) needs role %v", ErrDenied, c.Name, c.Role, role)
	}
	if err := g.allow(c); err != nil {
		return fmt.Errorf("%w: client %q is over %g requests a second", ErrRateLimited, c.Name, g.limit)
	}
	return nil
}

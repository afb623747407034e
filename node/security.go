package node

import (
	"context"

	"github.com/elcache/elcache/internal/auth"
	"github.com/elcache/elcache/internal/metrics"
	cachev1 "github.com/elcache/elcache/proto/cache/v1"
)

// Client authentication, roles, rate limits and TLS are internal/auth
// (docs/operations.md "Security"). The names below keep them in node's
// API for programs that embed a node; checkCall at the end adapts the
// guard to pipelined calls.

// Role is what a token may do; each role includes the ones before it.
type Role = auth.Role

const (
	RoleRead  = auth.RoleRead  // reads, Stats, Topology, Members
	RoleWrite = auth.RoleWrite // writes too
	RoleAdmin = auth.RoleAdmin // Admin.Drain too
	RolePeer  = auth.RolePeer  // node-to-node services: nodes only
)

// Token is one client credential: a name (for logs, limits and metrics;
// the secret itself is never logged) and a role.
type Token = auth.Token

// TLSFiles are the PEM files of a node's TLS: see auth.TLSFiles.
type TLSFiles = auth.TLSFiles

// ReadTokenFile reads tokens, one per line as "NAME ROLE SECRET"; blank
// lines and lines starting with # are skipped. Errors name the line, never
// the secret.
func ReadTokenFile(path string) ([]Token, error) { return auth.ReadTokenFile(path) }

// checkCall authorizes and rate-limits one pipelined call.
func (n *Node) checkCall(ctx context.Context, c *cachev1.Call) error {
	who, ok := auth.CallerFrom(ctx)
	if !ok {
		return nil
	}
	return n.guard.Call(who, metrics.IsWrite(cachev1.CallRequest(c)))
}

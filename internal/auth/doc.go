// Package auth is what an elcache node enforces before it serves a gRPC
// call (docs/operations.md "Security"): who the caller is, what it may
// do, how fast it may go, and the TLS that carries it. It imports nothing
// of the node.
//
//   - Tokens (token.go): with a token file, every request but the health
//     checks and reflection carries "authorization: Bearer TOKEN"
//     metadata; the token's Role decides what it may do, each role
//     including the ones before it (read, write, admin, peer). Nodes
//     authenticate to each other with the first token of role peer.
//   - The Guard (guard.go): authentication, the role each gRPC method
//     needs, and a token bucket per client (a token's name, or without
//     tokens the caller's address) when a rate limit is set. Nodes are
//     never limited. Refusals are gRPC errors: Unauthenticated,
//     PermissionDenied or ResourceExhausted, naming the token, never the
//     secret.
//   - The interceptors (interceptor.go) apply the Guard to unary calls and
//     to streams; a stream's calls are checked one by one with Guard.Call.
//   - TLS (tls.go): the server and peer-dialing tls.Config of a node's PEM
//     files, with optional mutual TLS for clients; the certificate and key
//     are read again when they change, so they rotate without a restart.
package auth

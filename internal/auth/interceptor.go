package auth

import (
	"context"

	"google.golang.org/grpc"
)

// UnaryInterceptor authenticates, authorizes and rate-limits each unary
// call, and passes the handler a context carrying the Caller. forwarded
// reports whether another node forwarded the request: without tokens such
// a request is not limited again, as it was counted where it came in.
func (g *Guard) UnaryInterceptor(forwarded func(context.Context) bool) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		role := methodRole(info.FullMethod)
		if role == 0 || g.off() {
			return handler(ctx, req)
		}
		c, err := g.authenticate(ctx)
		if err != nil {
			return nil, err
		}
		if err := authorize(c, role, "call "+info.FullMethod); err != nil {
			return nil, err
		}
		// Nodes are not limited: with tokens they carry the peer role, and
		// without, a forwarded request was counted where it came in.
		if role != RolePeer && !(g.byHash == nil && forwarded(ctx)) {
			if err := g.allow(c); err != nil {
				return nil, err
			}
		}
		return handler(context.WithValue(ctx, callerKey{}, c), req)
	}
}

// StreamInterceptor authenticates and authorizes each stream when it
// opens; its calls are checked one by one with Call. refused, if not nil,
// hears of every stream refused (the unary interceptor's refusals reach
// the interceptors before it as errors).
func (g *Guard) StreamInterceptor(refused func(fullMethod string, err error)) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		role := methodRole(info.FullMethod)
		if role == 0 || g.off() {
			return handler(srv, ss)
		}
		c, err := g.authenticate(ss.Context())
		if err == nil {
			err = authorize(c, role, "call "+info.FullMethod)
		}
		if err != nil {
			if refused != nil {
				refused(info.FullMethod, err)
			}
			return err
		}
		return handler(srv, &authedStream{ServerStream: ss, ctx: context.WithValue(ss.Context(), callerKey{}, c)})
	}
}

// authedStream is a stream whose context carries its Caller.
type authedStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *authedStream) Context() context.Context { return s.ctx }

package client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"time"

	"google.golang.org/grpc/credentials"

	cachev1 "github.com/elcache/elcache/proto/cache/v1"
)

// Config configures a Client. Start from DefaultConfig; New copies it, so
// later changes have no effect on a Client.
type Config struct {
	// Seeds are HOST:PORT gRPC addresses of some of the cluster's nodes.
	// The client learns the partition map and the other nodes from them.
	Seeds []string
	// DialTimeout is how long New waits to learn the partition map from a
	// seed; New fails with ErrUnavailable if no seed answers. Zero makes New
	// return at once: requests go through the seeds (which forward them)
	// until the map arrives.
	DialTimeout time.Duration
	// DefaultConsistency is the level of reads that do not choose one.
	// CONSISTENCY_UNSPECIFIED leaves the choice to the cluster.
	DefaultConsistency cachev1.Consistency
	// DefaultMaxStaleness is the staleness bound of BOUNDED reads that do
	// not give one. It must be positive if DefaultConsistency is BOUNDED.
	DefaultMaxStaleness time.Duration
	// DefaultWriteMode is the mode of writes that do not choose one.
	// WRITE_MODE_UNSPECIFIED leaves the choice to the cluster.
	DefaultWriteMode cachev1.WriteMode
	// DefaultDurability is the durability of writes that do not choose
	// one (WithDurability). DurabilityDefault leaves the choice to the
	// cluster.
	DefaultDurability Durability
	// KeepaliveTime is the idle time after which the connection is checked
	// with a ping, at least 10s (gRPC's minimum). Zero disables keepalive
	// pings. Nodes must permit pings this often.
	KeepaliveTime time.Duration
	// MaxRecvMsgSize is the largest response, in bytes, the client accepts.
	MaxRecvMsgSize int
	// TLS, if set, secures the connections with these settings (RootCAs
	// to verify the nodes; a client certificate for nodes that require
	// one); nil means plaintext.
	TLS *tls.Config
	// Credentials, if set, are sent with every request (authentication).
	// They need TLS. For elcache's own tokens, set Token instead.
	Credentials credentials.PerRPCCredentials
	// Token, if set, is sent as "authorization: Bearer TOKEN" with every
	// request; nodes started with --auth-token-file require one, and its
	// role (read, write, admin) decides what the client may do. Over
	// plaintext anyone on the network can read it: it needs TLS unless
	// AllowPlaintextToken is set (a trusted network, tests).
	Token               string
	AllowPlaintextToken bool

	// MaxAttempts bounds the tries of one request, the first included
	// (default 10; 1 turns retries off). Retries also stop when the
	// request's context ends.
	MaxAttempts int
	// RetryBase and RetryMax shape the pause before a retry: a random
	// duration in [0, min(RetryMax, RetryBase * 2^retry)) (exponential
	// backoff with full jitter). Defaults 5ms and 500ms. A retry that
	// follows a leader hint to another node goes at once.
	RetryBase time.Duration
	RetryMax  time.Duration
	// BreakerFailures consecutive failures to reach a node open its
	// circuit breaker (default 5): requests avoid the node for
	// BreakerCooldown (default 1s), then one request probes it.
	BreakerFailures int
	BreakerCooldown time.Duration
	// HedgeAfter: a BOUNDED or EVENTUAL read that has no answer after this
	// long is also sent to a second replica, and the first answer wins
	// (default 20ms; negative turns hedging off).
	HedgeAfter time.Duration
	// Unary sends every request as its own RPC. By default requests to a
	// node share one Pipeline stream, many in flight at once.
	Unary bool
	// Dialer, if set, makes the client's connections to nodes (a custom
	// network, or tests that cut the client off); nil dials TCP.
	Dialer func(ctx context.Context, addr string) (net.Conn, error)
	// NearCache, if set, keeps hot keys in the client's memory and serves
	// EVENTUAL, BOUNDED and SESSION Gets from there while it can prove
	// their level's promise (DESIGN.md "The near cache"). Nil: none.
	NearCache *NearCacheConfig
}

// Defaults of the zero Config fields.
const (
	defaultMaxAttempts     = 10
	defaultRetryBase       = 5 * time.Millisecond
	defaultRetryMax        = 500 * time.Millisecond
	defaultBreakerFailures = 5
	defaultBreakerCooldown = time.Second
	defaultHedgeAfter      = 20 * time.Millisecond
	defaultMaxRecvMsgSize  = 16 << 20
)

// withDefaults fills the zero fields that have defaults.
func (c Config) withDefaults() Config {
	if c.MaxAttempts == 0 {
		c.MaxAttempts = defaultMaxAttempts
	}
	if c.RetryBase == 0 {
		c.RetryBase = defaultRetryBase
	}
	if c.RetryMax == 0 {
		c.RetryMax = defaultRetryMax
	}
	if c.BreakerFailures == 0 {
		c.BreakerFailures = defaultBreakerFailures
	}
	if c.BreakerCooldown == 0 {
		c.BreakerCooldown = defaultBreakerCooldown
	}
	if c.HedgeAfter == 0 {
		c.HedgeAfter = defaultHedgeAfter
	}
	if c.MaxRecvMsgSize == 0 {
		c.MaxRecvMsgSize = defaultMaxRecvMsgSize
	}
	return c
}

// minKeepaliveTime is the shortest keepalive interval gRPC allows.
const minKeepaliveTime = 10 * time.Second

// DefaultConfig returns a Config for a cluster with a node on
// 127.0.0.1:7400, with the cluster's default consistency and write mode.
func DefaultConfig() Config {
	return Config{
		Seeds:          []string{"127.0.0.1:7400"},
		DialTimeout:    5 * time.Second,
		KeepaliveTime:  20 * time.Second,
		MaxRecvMsgSize: defaultMaxRecvMsgSize,
	}.withDefaults()
}

// Validate reports every problem with c, joined, or nil.
func (c Config) Validate() error {
	var errs []error
	if len(c.Seeds) == 0 {
		errs = append(errs, errors.New("client: config: Seeds is empty"))
	}
	for _, s := range c.Seeds {
		if _, _, err := net.SplitHostPort(s); err != nil {
			errs = append(errs, fmt.Errorf("client: config: seed %q is not HOST:PORT", s))
		}
	}
	if c.Credentials != nil && c.TLS == nil {
		errs = append(errs, errors.New("client: config: Credentials need TLS"))
	}
	if c.Token != "" && c.TLS == nil && !c.AllowPlaintextToken {
		errs = append(errs, errors.New("client: config: Token needs TLS (or AllowPlaintextToken on a trusted network)"))
	}
	if c.Token != "" && c.Credentials != nil {
		errs = append(errs, errors.New("client: config: set Token or Credentials, not both"))
	}
	if c.MaxAttempts < 0 {
		errs = append(errs, fmt.Errorf("client: config: MaxAttempts %d is negative", c.MaxAttempts))
	}
	if c.RetryBase < 0 || c.RetryMax < 0 || (c.RetryMax > 0 && c.RetryBase > c.RetryMax) {
		errs = append(errs, fmt.Errorf("client: config: RetryBase %v and RetryMax %v must be non-negative, base at most max", c.RetryBase, c.RetryMax))
	}
	if c.BreakerFailures < 0 || c.BreakerCooldown < 0 {
		errs = append(errs, fmt.Errorf("client: config: BreakerFailures %d and BreakerCooldown %v must not be negative", c.BreakerFailures, c.BreakerCooldown))
	}
	if c.DialTimeout < 0 {
		errs = append(errs, fmt.Errorf("client: config: DialTimeout %v is negative", c.DialTimeout))
	}
	if _, ok := cachev1.Consistency_name[int32(c.DefaultConsistency)]; !ok {
		errs = append(errs, fmt.Errorf("client: config: unknown DefaultConsistency %d", c.DefaultConsistency))
	}
	if c.DefaultMaxStaleness < 0 {
		errs = append(errs, fmt.Errorf("client: config: DefaultMaxStaleness %v is negative", c.DefaultMaxStaleness))
	} else if c.DefaultConsistency == cachev1.Consistency_CONSISTENCY_BOUNDED && c.DefaultMaxStaleness == 0 {
		errs = append(errs, errors.New("client: config: DefaultConsistency BOUNDED needs a positive DefaultMaxStaleness"))
	}
	if _, ok := cachev1.WriteMode_name[int32(c.DefaultWriteMode)]; !ok {
		errs = append(errs, fmt.Errorf("client: config: unknown DefaultWriteMode %d", c.DefaultWriteMode))
	}
	if _, ok := c.DefaultDurability.proto(); !ok {
		errs = append(errs, fmt.Errorf("client: config: unknown DefaultDurability %d", c.DefaultDurability))
	}
	if c.KeepaliveTime < 0 || (c.KeepaliveTime > 0 && c.KeepaliveTime < minKeepaliveTime) {
		errs = append(errs, fmt.Errorf("client: config: KeepaliveTime %v is neither 0 nor at least %v", c.KeepaliveTime, minKeepaliveTime))
	}
	if c.MaxRecvMsgSize < 0 {
		errs = append(errs, fmt.Errorf("client: config: MaxRecvMsgSize %d is negative", c.MaxRecvMsgSize))
	}
	if c.NearCache != nil {
		errs = append(errs, c.NearCache.validate())
	}
	return errors.Join(errs...)
}

// TokenCredentials sends token as "authorization: Bearer TOKEN", for
// connections made outside a Client (grpc.WithPerRPCCredentials).
// requireTLS refuses to send it over plaintext.
func TokenCredentials(token string, requireTLS bool) credentials.PerRPCCredentials {
	return tokenCredentials{token: token, requireTLS: requireTLS}
}

type tokenCredentials struct {
	token      string
	requireTLS bool
}

func (t tokenCredentials) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + t.token}, nil
}

func (t tokenCredentials) RequireTransportSecurity() bool { return t.requireTLS }

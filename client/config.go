package client

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"time"

	cachev1 "github.com/elcache/elcache/proto/cache/v1"
)

// Config configures a Client. Start from DefaultConfig; New copies it, so
// later changes have no effect on a Client.
type Config struct {
	// Addr is the HOST:PORT of a node's gRPC API.
	Addr string
	// DialTimeout is how long New waits for the connection to become
	// ready; New fails with ErrUnavailable if it does not. Zero makes New
	// return at once and connect on the first request.
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
	// KeepaliveTime is the idle time after which the connection is checked
	// with a ping, at least 10s (gRPC's minimum). Zero disables keepalive
	// pings. Nodes must permit pings this often.
	KeepaliveTime time.Duration
	// MaxRecvMsgSize is the largest response, in bytes, the client accepts.
	MaxRecvMsgSize int
	// TLS, if set, secures the connection with these settings; nil means
	// plaintext. Reserved: nodes do not serve TLS yet.
	TLS *tls.Config
}

// minKeepaliveTime is the shortest keepalive interval gRPC allows.
const minKeepaliveTime = 10 * time.Second

// DefaultConfig returns a Config for a node on 127.0.0.1:7400 with the
// cluster's default consistency and write mode.
func DefaultConfig() Config {
	return Config{
		Addr:           "127.0.0.1:7400",
		DialTimeout:    5 * time.Second,
		KeepaliveTime:  20 * time.Second,
		MaxRecvMsgSize: 16 << 20,
	}
}

// Validate reports every problem with c, joined, or nil.
func (c Config) Validate() error {
	var errs []error
	if c.Addr == "" {
		errs = append(errs, errors.New("client: config: Addr is empty"))
	} else if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		errs = append(errs, fmt.Errorf("client: config: Addr %q is not HOST:PORT", c.Addr))
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
	if c.KeepaliveTime < 0 || (c.KeepaliveTime > 0 && c.KeepaliveTime < minKeepaliveTime) {
		errs = append(errs, fmt.Errorf("client: config: KeepaliveTime %v is neither 0 nor at least %v", c.KeepaliveTime, minKeepaliveTime))
	}
	if c.MaxRecvMsgSize <= 0 {
		errs = append(errs, fmt.Errorf("client: config: MaxRecvMsgSize %d is not positive", c.MaxRecvMsgSize))
	}
	return errors.Join(errs...)
}

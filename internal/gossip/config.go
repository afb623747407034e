package gossip

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/hashicorp/memberlist"
)

// Config configures New. It is copied by New: changing it afterwards has
// no effect.
type Config struct {
	// NodeID is the memberlist node name: unique in the cluster and stable
	// across restarts. Required.
	NodeID string
	// NodeName, GRPCAddr and BootID are gossiped as metadata.
	NodeName, GRPCAddr, BootID string
	// HasCluster and Bootstrapper are the initial values of the flags of
	// the same names (SetHasCluster changes the first).
	HasCluster, Bootstrapper bool
	// BindAddr is the host:port for gossip (TCP and UDP). Port 0 picks a
	// free port, which is then advertised. An empty or unspecified host
	// binds all interfaces and advertises a private address.
	BindAddr string
	// Seeds are host:port of other members. They are joined in the
	// background until one answers; a node without seeds is alone until
	// others join it.
	Seeds []string
	// SecretKey, when set, encrypts gossip (16, 24 or 32 bytes).
	SecretKey []byte
	// Fast uses test timings: failure detection well under a second.
	Fast bool
	// Allow injects faults: when it returns false for a gossip address,
	// every packet to it is dropped and every stream dial to it fails.
	// nil allows all.
	Allow func(gossipAddr string) bool
	// Logger receives this package's logs (component=membership) and
	// memberlist's (component=memberlist). nil means slog.Default().
	Logger *slog.Logger
}

// DefaultConfig returns a Config with memberlist's usual port on every
// interface and LAN timings. NodeID must still be set.
func DefaultConfig() Config {
	return Config{BindAddr: ":7946", Logger: slog.Default()}
}

// ErrClosed is returned by Leave after Close.
var ErrClosed = errors.New("gossip: closed")

// Validate reports every problem in c.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("gossip: "+format, args...))
	}
	if c.NodeID == "" {
		bad("node id is empty")
	}
	if err := checkHostPort(c.BindAddr, true); err != nil {
		bad("bind address %q: %v", c.BindAddr, err)
	}
	for _, s := range c.Seeds {
		if err := checkHostPort(s, false); err != nil {
			bad("seed %q: %v", s, err)
		}
	}
	if n := len(c.SecretKey); n != 0 && n != 16 && n != 24 && n != 32 {
		bad("secret key is %d bytes, want 16, 24 or 32", n)
	}
	meta := nodeMeta{ID: c.NodeID, Name: c.NodeName, GRPCAddr: c.GRPCAddr, BootID: c.BootID}
	if n := len(meta.encode()); n > memberlist.MetaMaxSize {
		bad("node metadata is %d bytes, more than the %d memberlist allows (shorten the name or addresses)",
			n, memberlist.MetaMaxSize)
	}
	return errors.Join(errs...)
}

func checkHostPort(s string, emptyHostOK bool) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return err
	}
	if host == "" && !emptyHostOK {
		return errors.New("no host")
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return fmt.Errorf("bad port %q", port)
	}
	if p == 0 && !emptyHostOK {
		return errors.New("port 0")
	}
	return nil
}

// timings are the parts of the timing that are ours, not memberlist's.
type timings struct {
	// joinMin and joinMax bound the backoff between attempts to join the
	// seeds or to re-announce this node.
	joinMin, joinMax time.Duration
	// reconnect is how often a member believed dead is contacted again,
	// for at most reconnectFor after it failed.
	reconnect, reconnectFor time.Duration
}

// memberlistConfig returns memberlist's configuration (without name,
// addresses, transport and delegates) and our own timings.
//
// LAN (memberlist's defaults): a failed node is suspected after a missed
// probe (1 s interval, 500 ms timeout) and declared dead 4 s later, about
// 5-6 s in all. Fast: 200 ms probes and a 0.6-1.2 s suspicion, about 1-1.5 s.
func (c *Config) memberlistConfig() (*memberlist.Config, timings) {
	mc := memberlist.DefaultLANConfig()
	t := timings{joinMin: time.Second, joinMax: 15 * time.Second,
		reconnect: 10 * time.Second, reconnectFor: 24 * time.Hour}
	if c.Fast {
		mc.TCPTimeout = 500 * time.Millisecond
		// Timeouts leave room for the race detector on 2 busy cores,
		// which makes 50 ms probe timeouts declare live nodes dead.
		mc.ProbeInterval = 200 * time.Millisecond
		mc.ProbeTimeout = 150 * time.Millisecond
		mc.SuspicionMult = 3           // 600 ms with confirmations (below 10 nodes)
		mc.SuspicionMaxTimeoutMult = 2 // 1.2 s without
		mc.AwarenessMaxMultiplier = 3
		mc.GossipInterval = 20 * time.Millisecond
		mc.PushPullInterval = 500 * time.Millisecond
		mc.GossipToTheDeadTime = 500 * time.Millisecond
		t = timings{joinMin: 50 * time.Millisecond, joinMax: 500 * time.Millisecond,
			reconnect: 200 * time.Millisecond, reconnectFor: 24 * time.Hour}
	}
	// By default memberlist never lets a name move to another address while
	// the old entry is remembered (up to GossipToTheDeadTime after it dies,
	// 30 s on a LAN), so a node restarted on a new port would be locked out
	// for that long. Node ids are unique per data directory, so a dead
	// entry may be reclaimed after one probe interval.
	mc.DeadNodeReclaimTime = mc.ProbeInterval
	return mc, t
}

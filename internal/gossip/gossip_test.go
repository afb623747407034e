package gossip

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// gossipNet partitions test members: traffic flows only between members in
// the same group (all start in group 0). Each member filters its own
// outgoing traffic, so a partition is symmetric.
type gossipNet struct {
	mu    sync.Mutex
	group map[string]int // gossip address -> group
}

func (n *gossipNet) allowFrom(self *atomic.Pointer[string]) func(string) bool {
	return func(to string) bool {
		from := ""
		if p := self.Load(); p != nil {
			from = *p
		}
		n.mu.Lock()
		defer n.mu.Unlock()
		return n.group[from] == n.group[to]
	}
}

// isolate cuts the members at addrs off from everyone else.
func (n *gossipNet) isolate(addrs ...string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.group == nil {
		n.group = make(map[string]int)
	}
	for _, a := range addrs {
		n.group[a] = 1
	}
}

func (n *gossipNet) heal() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.group = nil
}

type memberOpts struct {
	id     string
	bind   string // default 127.0.0.1:0
	seeds  []string
	key    []byte
	bootID string // default random
}

func testGossipLogger() *slog.Logger {
	if os.Getenv("ELCACHE_TEST_GOSSIP_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func randomBootID(t *testing.T) string {
	t.Helper()
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func testMemberConfig(t *testing.T, gn *gossipNet, o memberOpts) (Config, *atomic.Pointer[string]) {
	t.Helper()
	if o.bind == "" {
		o.bind = "127.0.0.1:0"
	}
	if o.bootID == "" {
		o.bootID = randomBootID(t)
	}
	self := new(atomic.Pointer[string])
	cfg := Config{
		NodeID: o.id, NodeName: "name-" + o.id, GRPCAddr: "grpc-" + o.id + ":7000", BootID: o.bootID,
		BindAddr: o.bind, Seeds: o.seeds, SecretKey: o.key, Fast: true, Logger: testGossipLogger(),
	}
	if gn != nil {
		cfg.Allow = gn.allowFrom(self)
	}
	return cfg, self
}

func startMember(t *testing.T, gn *gossipNet, o memberOpts) *Membership {
	t.Helper()
	cfg, self := testMemberConfig(t, gn, o)
	m, err := New(cfg)
	if err != nil {
		t.Fatalf("start member %s: %v", o.id, err)
	}
	addr := m.Addr()
	self.Store(&addr)
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("close member %s: %v", o.id, err)
		}
	})
	return m
}

// startMembers starts members a, b, c: b joins a and c joins b.
func startMembers(t *testing.T, gn *gossipNet, key []byte) []*Membership {
	t.Helper()
	a := startMember(t, gn, memberOpts{id: "a", key: key})
	b := startMember(t, gn, memberOpts{id: "b", key: key, seeds: []string{a.Addr()}})
	c := startMember(t, gn, memberOpts{id: "c", key: key, seeds: []string{b.Addr()}})
	ms := []*Membership{a, b, c}
	waitAll(t, ms, 10*time.Second, "all alive", func(v map[string]Member) bool {
		return allIn(v, Alive, "a", "b", "c")
	})
	return ms
}

func byID(ms []Member) map[string]Member {
	out := make(map[string]Member, len(ms))
	for _, m := range ms {
		out[m.ID] = m
	}
	return out
}

func allIn(v map[string]Member, state State, ids ...string) bool {
	for _, id := range ids {
		if mi, ok := v[id]; !ok || mi.State != state {
			return false
		}
	}
	return true
}

func downOrSuspect(v map[string]Member, ids ...string) bool {
	for _, id := range ids {
		if mi, ok := v[id]; !ok || (mi.State != Dead && mi.State != Suspect) {
			return false
		}
	}
	return true
}

// waitView waits until cond holds for m's view, watching Changes.
func waitView(t *testing.T, m *Membership, deadline time.Time, what string, cond func(map[string]Member) bool) {
	t.Helper()
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	safety := time.NewTicker(100 * time.Millisecond) // in case a change is missed
	defer safety.Stop()
	for {
		view := m.Members()
		if cond(byID(view)) {
			return
		}
		select {
		case <-m.Changes():
		case <-safety.C:
		case <-timer.C:
			t.Fatalf("member %s: %s: not reached in time; view:\n%s", m.cfg.NodeID, what, formatView(view))
		}
	}
}

func waitAll(t *testing.T, ms []*Membership, timeout time.Duration, what string, cond func(map[string]Member) bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for _, m := range ms {
		waitView(t, m, deadline, what, cond)
	}
}

func formatView(view []Member) string {
	var b strings.Builder
	for _, mi := range view {
		b.WriteString("  ")
		b.WriteString(mi.ID + " " + mi.State.String() + " " + mi.GossipAddr + " boot=" + mi.BootID)
		if mi.HasCluster {
			b.WriteString(" has_cluster")
		}
		b.WriteString("\n")
	}
	return b.String()
}

func TestMembershipJoin(t *testing.T) {
	ms := startMembers(t, nil, nil)
	addrs := map[string]string{}
	boots := map[string]string{}
	for _, m := range ms {
		addrs[m.cfg.NodeID] = m.Addr()
		boots[m.cfg.NodeID] = m.cfg.BootID
		if host, _, err := net.SplitHostPort(m.Addr()); err != nil || host != "127.0.0.1" {
			t.Fatalf("Addr() = %q, want 127.0.0.1:port", m.Addr())
		}
	}
	for _, m := range ms {
		view := m.Members()
		if !slices.IsSortedFunc(view, func(a, b Member) int { return strings.Compare(a.ID, b.ID) }) || len(view) != 3 {
			t.Fatalf("%s: Members() not 3 members sorted by id:\n%s", m.cfg.NodeID, formatView(view))
		}
		for _, mi := range view {
			want := Member{ID: mi.ID, Name: "name-" + mi.ID, GRPCAddr: "grpc-" + mi.ID + ":7000",
				GossipAddr: addrs[mi.ID], BootID: boots[mi.ID], State: Alive, Since: mi.Since}
			if mi != want {
				t.Errorf("%s sees %+v, want %+v", m.cfg.NodeID, mi, want)
			}
			if mi.Since.IsZero() {
				t.Errorf("%s sees %s with zero Since", m.cfg.NodeID, mi.ID)
			}
		}
	}
}

func TestMembershipSetHasCluster(t *testing.T) {
	ms := startMembers(t, nil, nil)
	b := ms[1]
	for _, has := range []bool{true, false} {
		b.SetHasCluster(has)
		if got := byID(b.Members())["b"].HasCluster; got != has { // its own entry changes at once
			t.Fatalf("b's own HasCluster = %v right after SetHasCluster(%v)", got, has)
		}
		waitAll(t, ms, 5*time.Second, "b's has-cluster flag", func(v map[string]Member) bool {
			return v["b"].HasCluster == has && allIn(v, Alive, "a", "b", "c")
		})
	}
	b.SetHasCluster(false) // unchanged: no gossip, no panic
}

func TestMembershipLeave(t *testing.T) {
	ms := startMembers(t, nil, nil)
	a, b, c := ms[0], ms[1], ms[2]
	start := time.Now()
	if err := c.Leave(2 * time.Second); err != nil {
		t.Fatalf("leave: %v", err)
	}
	if err := c.Leave(time.Second); err != nil { // again: no-op
		t.Fatalf("second leave: %v", err)
	}
	waitAll(t, []*Membership{a, b, c}, 5*time.Second, "c left", func(v map[string]Member) bool {
		return allIn(v, Left, "c")
	})
	t.Logf("leave seen by all after %v", time.Since(start))
	waitAll(t, []*Membership{a, b}, 5*time.Second, "a and b alive", func(v map[string]Member) bool {
		return allIn(v, Alive, "a", "b")
	})
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Leave(time.Second); !errors.Is(err, ErrClosed) {
		t.Fatalf("leave after close: %v, want %v", err, ErrClosed)
	}
	if err := c.Close(); err != nil { // idempotent
		t.Fatal(err)
	}
	// Still left, not dead, once c is gone.
	for _, m := range []*Membership{a, b} {
		if got := byID(m.Members())["c"].State; got != Left {
			t.Errorf("%s sees c %v after close, want left", m.cfg.NodeID, got)
		}
	}
}

func TestMembershipCrash(t *testing.T) {
	ms := startMembers(t, nil, nil)
	a, b, c := ms[0], ms[1], ms[2]
	start := time.Now()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	waitAll(t, []*Membership{a, b}, 5*time.Second, "c dead", func(v map[string]Member) bool {
		return allIn(v, Dead, "c") && allIn(v, Alive, "a", "b")
	})
	t.Logf("failure detected by both after %v", time.Since(start))
	for _, m := range []*Membership{a, b} {
		if since := byID(m.Members())["c"].Since; since.Before(start) {
			t.Errorf("%s: c's Since %v is before the crash at %v", m.cfg.NodeID, since, start)
		}
	}
}

func TestMembershipRestart(t *testing.T) {
	for _, tc := range []struct {
		name     string
		leave    bool // leave gracefully before stopping
		samePort bool
	}{
		{name: "crash new port"},
		{name: "crash same port", samePort: true},
		{name: "leave new port", leave: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ms := startMembers(t, nil, nil)
			a, b, c := ms[0], ms[1], ms[2]
			old := c.Addr()
			oldBoot := c.cfg.BootID
			if tc.leave {
				if err := c.Leave(2 * time.Second); err != nil {
					t.Fatal(err)
				}
			}
			start := time.Now()
			if err := c.Close(); err != nil {
				t.Fatal(err)
			}
			bind := ""
			if tc.samePort {
				bind = old
			}
			c2 := startMember(t, nil, memberOpts{id: "c", bind: bind, seeds: []string{a.Addr()}})
			if c2.cfg.BootID == oldBoot {
				t.Fatal("same boot id")
			}
			if tc.samePort != (c2.Addr() == old) {
				t.Fatalf("restarted at %s, was %s", c2.Addr(), old)
			}
			waitAll(t, []*Membership{a, b, c2}, 15*time.Second, "c back with its new boot id", func(v map[string]Member) bool {
				return allIn(v, Alive, "a", "b", "c") && v["c"].BootID == c2.cfg.BootID && v["c"].GossipAddr == c2.Addr()
			})
			t.Logf("restart seen by all after %v", time.Since(start))
		})
	}
}

func TestMembershipPartition(t *testing.T) {
	gn := &gossipNet{}
	ms := startMembers(t, gn, nil)
	a, b, c := ms[0], ms[1], ms[2]

	start := time.Now()
	gn.isolate(c.Addr())
	waitAll(t, []*Membership{a, b}, 10*time.Second, "c down", func(v map[string]Member) bool {
		return downOrSuspect(v, "c") && allIn(v, Alive, "a", "b")
	})
	t.Logf("a and b see c down after %v", time.Since(start))
	waitView(t, c, time.Now().Add(10*time.Second), "a and b down", func(v map[string]Member) bool {
		return downOrSuspect(v, "a", "b") && allIn(v, Alive, "c")
	})
	t.Logf("c sees a and b down after %v", time.Since(start))

	start = time.Now()
	gn.heal()
	waitAll(t, ms, 10*time.Second, "all alive after healing", func(v map[string]Member) bool {
		return allIn(v, Alive, "a", "b", "c")
	})
	t.Logf("healed after %v", time.Since(start))
}

func TestMembershipEncrypted(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	ms := startMembers(t, nil, key)

	for _, tc := range []struct {
		name string
		key  []byte
	}{
		{"wrong key", bytes.Repeat([]byte{8}, 16)},
		{"no key", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			x := startMember(t, nil, memberOpts{id: "x", key: tc.key})
			if n, err := x.ml.Join([]string{ms[0].Addr()}); n != 0 || err == nil {
				t.Fatalf("join with %s: contacted %d, err %v; want a failure", tc.name, n, err)
			}
			if len(x.Members()) != 1 {
				t.Fatalf("x sees:\n%s", formatView(x.Members()))
			}
		})
	}
}

func TestMembershipConfig(t *testing.T) {
	valid := func() Config {
		return Config{NodeID: "n1", BindAddr: "127.0.0.1:0", Logger: testGossipLogger(), Fast: true}
	}
	for _, tc := range []struct {
		name   string
		change func(*Config)
		want   []string // substrings of the error
	}{
		{"short key", func(c *Config) { c.SecretKey = make([]byte, 5) }, []string{"secret key is 5 bytes"}},
		{"long key", func(c *Config) { c.SecretKey = make([]byte, 33) }, []string{"secret key is 33 bytes"}},
		{"no id", func(c *Config) { c.NodeID = "" }, []string{"node id is empty"}},
		{"bad bind", func(c *Config) { c.BindAddr = "127.0.0.1" }, []string{"bind address"}},
		{"bad seed", func(c *Config) { c.Seeds = []string{"127.0.0.1:1", ":7946"} }, []string{`seed ":7946"`}},
		{"meta too large", func(c *Config) { c.NodeName = strings.Repeat("n", 600) }, []string{"metadata is"}},
		{"every problem", func(c *Config) { c.NodeID, c.SecretKey = "", []byte("x") },
			[]string{"node id is empty", "secret key is 1 bytes"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := valid()
			tc.change(&cfg)
			m, err := New(cfg)
			if err == nil {
				m.Close()
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
	for _, n := range []int{16, 24, 32} {
		cfg := valid()
		cfg.SecretKey = make([]byte, n)
		if err := cfg.Validate(); err != nil {
			t.Errorf("%d-byte key: %v", n, err)
		}
	}
	def := DefaultConfig()
	if err := def.Validate(); err == nil || !strings.Contains(err.Error(), "node id is empty") {
		t.Errorf("DefaultConfig without a node id: %v, want node id is empty", err)
	}
	def.NodeID = "n1"
	if err := def.Validate(); err != nil {
		t.Errorf("DefaultConfig with a node id: %v", err)
	}
}

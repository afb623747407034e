package raftnet

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"
)

// The test cluster: in-process nodes, each a Net serving real gRPC on
// 127.0.0.1, hosting real hashicorp/raft groups over a small key-value FSM,
// with per-peer fault injection (block, isolate, heal).

type tcluster struct {
	t     *testing.T
	nodes []*tnode

	mu    sync.Mutex
	addrs map[string]string
}

// tnode is one node: a gRPC server, its Net and its raft groups.
type tnode struct {
	c      *tcluster
	id     string
	dir    string
	rn     *Net
	srv    *grpc.Server
	served chan struct{}

	blockMu sync.Mutex
	blocked map[string]bool

	mu     sync.Mutex
	groups map[uint64]*tgroup
}

type tgroup struct {
	raft *raft.Raft
	fsm  *kvFSM
	logs *raft.InmemStore
}

func newTCluster(t *testing.T, n int) *tcluster {
	c := &tcluster{t: t, addrs: map[string]string{}}
	t.Cleanup(c.shutdown)
	for range n {
		c.addNode()
	}
	return c
}

func (c *tcluster) addNode() *tnode {
	c.t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		c.t.Fatal(err)
	}
	nd := &tnode{
		c:       c,
		id:      fmt.Sprintf("%016x", rand.Uint64()),
		dir:     c.t.TempDir(),
		served:  make(chan struct{}),
		blocked: map[string]bool{},
		groups:  map[uint64]*tgroup{},
	}
	nd.rn = New(Config{
		LocalID:    nd.id,
		Resolve:    c.resolve,
		Allow:      nd.allow,
		Logger:     slog.New(slog.DiscardHandler),
		RPCTimeout: 2 * time.Second,
	})
	nd.srv = grpc.NewServer(
		grpc.MaxRecvMsgSize(MaxMsgBytes),
		grpc.MaxSendMsgSize(MaxMsgBytes),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
	)
	nd.rn.Register(nd.srv)
	c.mu.Lock()
	c.addrs[nd.id] = lis.Addr().String()
	c.mu.Unlock()
	go func() {
		defer close(nd.served)
		nd.srv.Serve(lis)
	}()
	c.nodes = append(c.nodes, nd)
	return nd
}

func (c *tcluster) resolve(id string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	a, ok := c.addrs[id]
	return a, ok
}

// shutdown stops every raft (all at once, so none waits on a peer that
// already left), then the transports and servers.
func (c *tcluster) shutdown() {
	var wg sync.WaitGroup
	for _, nd := range c.nodes {
		nd.mu.Lock()
		for _, g := range nd.groups {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := g.raft.Shutdown().Error(); err != nil {
					c.t.Errorf("raft shutdown: %v", err)
				}
			}()
		}
		nd.mu.Unlock()
	}
	wg.Wait()
	for _, nd := range c.nodes {
		if err := nd.rn.Close(); err != nil {
			c.t.Errorf("close Net: %v", err)
		}
		nd.srv.Stop()
		<-nd.served
	}
}

func transportRaftConfig(id string) *raft.Config {
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(id)
	rc.HeartbeatTimeout = 150 * time.Millisecond
	rc.ElectionTimeout = 150 * time.Millisecond
	rc.LeaderLeaseTimeout = 100 * time.Millisecond
	rc.CommitTimeout = 5 * time.Millisecond
	rc.Logger = hclog.NewNullLogger()
	if os.Getenv("ELCACHE_TEST_RAFT_LOG") != "" {
		rc.Logger = hclog.New(&hclog.LoggerOptions{Name: "raft-" + id[:6], Level: hclog.Debug, Output: os.Stderr})
	}
	return rc
}

// start runs group on nd; bootstrap, when set, is the initial membership.
func (c *tcluster) start(nd *tnode, group uint64, bootstrap []*tnode, tweak func(*raft.Config)) {
	c.t.Helper()
	rc := transportRaftConfig(nd.id)
	if tweak != nil {
		tweak(rc)
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(filepath.Join(nd.dir, fmt.Sprint(group)), 2, rc.Logger)
	if err != nil {
		c.t.Fatal(err)
	}
	g := &tgroup{fsm: &kvFSM{kv: map[string]string{}}, logs: raft.NewInmemStore()}
	g.raft, err = raft.NewRaft(rc, g.fsm, g.logs, g.logs, snaps, nd.rn.Transport(group))
	if err != nil {
		c.t.Fatal(err)
	}
	nd.mu.Lock()
	nd.groups[group] = g
	nd.mu.Unlock()
	if bootstrap != nil {
		var conf raft.Configuration
		for _, m := range bootstrap {
			conf.Servers = append(conf.Servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(m.id), Address: raft.ServerAddress(m.id)})
		}
		if err := g.raft.BootstrapCluster(conf).Error(); err != nil {
			c.t.Fatal(err)
		}
	}
}

func (c *tcluster) bootstrap(group uint64, members []*tnode, tweak func(*raft.Config)) {
	for _, nd := range members {
		c.start(nd, group, members, tweak)
	}
}

// waitLeader returns the node that leads group, once every node running
// the group and not in skip agrees on it.
func (c *tcluster) waitLeader(group uint64, skip ...*tnode) *tnode {
	c.t.Helper()
	leader, err := c.findLeader(group, skip...)
	if err != nil {
		c.t.Fatal(err)
	}
	return leader
}

// findLeader is waitLeader for any goroutine: it returns an error.
func (c *tcluster) findLeader(group uint64, skip ...*tnode) (*tnode, error) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		if leader := c.agreedLeader(group, skip); leader != nil {
			return leader, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("group %d has no leader all agree on after 10s", group)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (c *tcluster) agreedLeader(group uint64, skip []*tnode) *tnode {
	var leader *tnode
	var members []*tnode
	for _, nd := range c.nodes {
		if nd.group(group) == nil || hasNode(skip, nd) {
			continue
		}
		members = append(members, nd)
		if nd.raft(group).State() == raft.Leader {
			if leader != nil {
				return nil
			}
			leader = nd
		}
	}
	if leader == nil {
		return nil
	}
	for _, nd := range members {
		if _, id := nd.raft(group).LeaderWithID(); string(id) != leader.id {
			return nil
		}
	}
	return leader
}

// applyAll applies cmds to group through its leader, retrying what fails
// across leader changes (the commands are idempotent).
func (c *tcluster) applyAll(group uint64, cmds []string, skip ...*tnode) {
	c.t.Helper()
	if err := c.tryApplyAll(group, cmds, skip...); err != nil {
		c.t.Fatal(err)
	}
}

// tryApplyAll is applyAll for any goroutine: it returns an error.
func (c *tcluster) tryApplyAll(group uint64, cmds []string, skip ...*tnode) error {
	deadline := time.Now().Add(20 * time.Second)
	pending := cmds
	for len(pending) > 0 {
		if time.Now().After(deadline) {
			return fmt.Errorf("group %d: %d of %d commands not applied", group, len(pending), len(cmds))
		}
		leader, err := c.findLeader(group, skip...)
		if err != nil {
			return err
		}
		r := leader.raft(group)
		futures := make([]raft.ApplyFuture, len(pending))
		for i, cmd := range pending {
			futures[i] = r.Apply([]byte(cmd), 5*time.Second)
		}
		var failed []string
		for i, f := range futures {
			if f.Error() != nil {
				failed = append(failed, pending[i])
			}
		}
		pending = failed
	}
	return nil
}

// onLeader runs fn on group's leader, again on the next leader while it
// fails because leadership moved.
func (c *tcluster) onLeader(group uint64, what string, fn func(*raft.Raft) error, skip ...*tnode) {
	c.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := fn(c.waitLeader(group, skip...).raft(group))
		if err == nil {
			return
		}
		if !errors.Is(err, raft.ErrNotLeader) && !errors.Is(err, raft.ErrLeadershipLost) || time.Now().After(deadline) {
			c.t.Fatalf("group %d %s: %v", group, what, err)
		}
	}
}

// stats sums group's transport counters over every node.
func (c *tcluster) stats(group uint64) Stats {
	var sum Stats
	for _, nd := range c.nodes {
		if nd.group(group) == nil {
			continue
		}
		s := nd.rn.Transport(group).Stats()
		sum.Heartbeats += s.Heartbeats
		sum.Appends += s.Appends
		sum.Pipelined += s.Pipelined
		sum.Splits += s.Splits
		sum.Votes += s.Votes
		sum.PreVotes += s.PreVotes
		sum.Snapshots += s.Snapshots
		sum.TimeoutNows += s.TimeoutNows
		sum.HeartbeatsFast += s.HeartbeatsFast
	}
	return sum
}

// isolate cuts nd off from every other node, both ways.
func (c *tcluster) isolate(nd *tnode) {
	for _, o := range c.nodes {
		if o != nd {
			nd.block(o.id)
			o.block(nd.id)
		}
	}
}

func (c *tcluster) heal() {
	for _, nd := range c.nodes {
		nd.blockMu.Lock()
		clear(nd.blocked)
		nd.blockMu.Unlock()
	}
}

func (nd *tnode) allow(id string) bool {
	nd.blockMu.Lock()
	defer nd.blockMu.Unlock()
	return !nd.blocked[id]
}

func (nd *tnode) block(id string) {
	nd.blockMu.Lock()
	nd.blocked[id] = true
	nd.blockMu.Unlock()
}

func (nd *tnode) unblock(id string) {
	nd.blockMu.Lock()
	delete(nd.blocked, id)
	nd.blockMu.Unlock()
}

func (nd *tnode) group(g uint64) *tgroup {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	return nd.groups[g]
}

func (nd *tnode) raft(g uint64) *raft.Raft       { return nd.group(g).raft }
func (nd *tnode) fsm(g uint64) *kvFSM            { return nd.group(g).fsm }
func (nd *tnode) logs(g uint64) *raft.InmemStore { return nd.group(g).logs }
func hasNode(nodes []*tnode, nd *tnode) bool     { return nodeIndex(nodes, nd) >= 0 }

func nodeIndex(nodes []*tnode, nd *tnode) int {
	for i, n := range nodes {
		if n == nd {
			return i
		}
	}
	return -1
}

// setCommands returns n "key=value" commands with values of size bytes.
func setCommands(prefix string, n, size int) []string {
	cmds := make([]string, n)
	for i := range cmds {
		v := fmt.Sprintf("v%d-", i)
		v += strings.Repeat("x", max(0, size-len(v)))
		cmds[i] = fmt.Sprintf("%s%d=%s", prefix, i, v)
	}
	return cmds
}

// transportWait polls cond until it holds or timeout passes.
func transportWait(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting until %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// kvFSM is a key-value map that applies "key=value" commands and can
// snapshot and restore itself.
type kvFSM struct {
	mu       sync.Mutex
	kv       map[string]string
	restores int
}

func (f *kvFSM) Apply(l *raft.Log) any {
	if l.Type != raft.LogCommand {
		return nil
	}
	k, v, _ := strings.Cut(string(l.Data), "=")
	f.mu.Lock()
	f.kv[k] = v
	f.mu.Unlock()
	return nil
}

func (f *kvFSM) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	kv := make(map[string]string, len(f.kv))
	for k, v := range f.kv {
		kv[k] = v
	}
	return kvSnapshot(kv), nil
}

func (f *kvFSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	kv := map[string]string{}
	if err := json.NewDecoder(rc).Decode(&kv); err != nil {
		return err
	}
	f.mu.Lock()
	f.kv = kv
	f.restores++
	f.mu.Unlock()
	return nil
}

func (f *kvFSM) get(k string) (string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.kv[k]
	return v, ok
}

func (f *kvFSM) equal(want map[string]string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.kv) != len(want) {
		return false
	}
	for k, v := range want {
		if f.kv[k] != v {
			return false
		}
	}
	return true
}

func (f *kvFSM) restoreCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.restores
}

type kvSnapshot map[string]string

func (s kvSnapshot) Persist(sink raft.SnapshotSink) error {
	if err := json.NewEncoder(sink).Encode(map[string]string(s)); err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

func (s kvSnapshot) Release() {}

// groupOf returns nd's transport for group g.
func (nd *tnode) groupOf(t *testing.T, g uint64) *Transport {
	t.Helper()
	gt, err := nd.rn.lookup(g)
	if err != nil {
		t.Fatal(err)
	}
	return gt
}

// TestTransportLeaseProofs: followers record a fresh commit index only

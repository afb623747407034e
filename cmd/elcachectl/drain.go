package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	cachev1 "github.com/elcache/elcache/proto/cache/v1"
)

// drainPoll is how often drain --wait looks at the topology.
const drainPoll = 200 * time.Millisecond

// drainJSON is the outcome of drain.
type drainJSON struct {
	NodeID     string `json:"node_id"`
	Name       string `json:"name"`
	MapVersion uint64 `json:"map_version"`
	// Replicas and Leaders are what the partition map still places on the
	// node and what it leads. Hosted is how many replicas the node itself
	// still runs that may count in their group, -1 when it was not or
	// could not be asked; Stray how many others it runs (see
	// drainWaiter.hosted).
	Replicas int  `json:"replicas"`
	Leaders  int  `json:"leaders"`
	Hosted   int  `json:"hosted"`
	Stray    int  `json:"stray"`
	Drained  bool `json:"drained"`
}

func (j drainJSON) done() bool { return j.Replicas == 0 && j.Leaders == 0 && j.Hosted <= 0 }

func cmdDrain(e *env, args []string) error {
	fs := e.flagSet("drain")
	wait := fs.Bool("wait", true, "")
	timeout := fs.Duration("timeout", 5*time.Minute, "")
	args, err := parseExact(fs, args, 1, "NODE")
	if err != nil {
		return err
	}
	switch {
	case args[0] == "":
		return usagef("drain needs a node name or id, not an empty string")
	case *timeout <= 0:
		return usagef("drain --timeout must be positive")
	}
	cc, err := e.conn()
	if err != nil {
		return err
	}
	resp, err := cachev1.NewAdminClient(cc).Drain(e.ctx, &cachev1.DrainRequest{Node: args[0]})
	if err != nil {
		return drainRefused(e, err)
	}
	j := drainJSON{NodeID: resp.GetNodeId(), Name: args[0], MapVersion: resp.GetMapVersion(),
		Replicas: int(resp.GetReplicas()), Hosted: -1}
	if t, err := e.topology(); err == nil {
		j.Name = topologyNames(t).of(j.NodeID)
	}
	if !*wait {
		return e.emit(j, func(out io.Writer) {
			fmt.Fprintf(out, "node %s is draining (map version %d, %d replica%s still placed on it); "+
				"elcachectl drain %s waits until it can be stopped\n", j.Name, j.MapVersion, j.Replicas, plural(j.Replicas), j.Name)
		})
	}

	// Progress goes with the text output, or to stderr beside JSON.
	progress := e.stdout
	if e.json {
		progress = e.stderr
	}
	w := &drainWaiter{e: e, id: j.NodeID, minVersion: j.MapVersion}
	defer w.close()
	ctx, cancel := context.WithTimeout(e.base, *timeout)
	defer cancel()
	tick := time.NewTicker(drainPoll)
	defer tick.Stop()
	var last string
	for {
		cur, seen, err := w.poll(ctx, j)
		if err != nil && ctx.Err() == nil {
			return fmt.Errorf("drain: %w (node %s keeps draining; run drain %s again to wait)", err, j.Name, j.Name)
		}
		if err == nil && seen {
			j = cur
			if j.done() {
				break
			}
			if p := j.progress(); p != last {
				fmt.Fprintln(progress, p)
				last = p
			}
		}
		select {
		case <-ctx.Done():
			why := fmt.Sprintf("not drained after %v", *timeout)
			if e.base.Err() != nil {
				why = "interrupted"
			}
			return fmt.Errorf("drain: %s: %s; it keeps draining: run drain %s again to wait", why, j.progress(), j.Name)
		case <-tick.C:
		}
	}
	j.Drained = true
	return e.emit(j, func(out io.Writer) {
		fmt.Fprintf(out, "node %s drained: it holds no replicas; stop it now\n", j.Name)
		if j.Stray > 0 {
			fmt.Fprintf(out, "(it still runs %d replica%s its groups no longer reach; it drops them itself)\n", j.Stray, plural(j.Stray))
		}
	})
}

// drainRefused reports a failed Drain call: the cluster's refusals (an
// unknown or ambiguous node, the last active node) exit 1, anything else
// is an error.
func drainRefused(e *env, err error) error {
	st, _ := status.FromError(err)
	switch st.Code() {
	case codes.NotFound:
		fmt.Fprintf(e.stderr, "elcachectl: drain: %s; elcachectl members lists the nodes\n", st.Message())
		return exitStatus(1)
	case codes.FailedPrecondition, codes.InvalidArgument:
		fmt.Fprintf(e.stderr, "elcachectl: drain: %s\n", st.Message())
		return exitStatus(1)
	}
	return rpcError("drain", err)
}

func (j drainJSON) progress() string {
	s := fmt.Sprintf("node %s: %d replica%s and %d leadership%s left", j.Name, j.Replicas, plural(j.Replicas), j.Leaders, plural(j.Leaders))
	if j.Replicas == 0 && j.Leaders == 0 && j.Hosted > 0 {
		s += fmt.Sprintf(", %d replica%s still leaving %s Raft group%s", j.Hosted, plural(j.Hosted), pick(j.Hosted, "its", "their"), plural(j.Hosted))
	}
	return s
}

func pick(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// drainWaiter tracks a draining node: its place in the partition map, as
// the node at --addr sees it, and the replicas it still runs itself.
type drainWaiter struct {
	e          *env
	id         string
	minVersion uint64 // the map version that recorded the drain
	addr       string // the node's own address, once known
	cc         *grpc.ClientConn
}

// poll returns j updated from the topology and, once the map places
// nothing on the node, from the node's own stats. seen is false while the
// node at --addr has not yet learnt the map that records the drain.
func (w *drainWaiter) poll(ctx context.Context, j drainJSON) (_ drainJSON, seen bool, err error) {
	cc, err := w.e.conn()
	if err != nil {
		return j, false, err
	}
	t, err := cachev1.NewCacheClient(cc).Topology(ctx, &cachev1.TopologyRequest{})
	if err != nil {
		return j, false, rpcError("topology", err)
	}
	if t.GetMapVersion() < w.minVersion {
		return j, false, nil
	}
	j.MapVersion, j.Replicas, j.Leaders, j.Hosted, j.Stray = t.GetMapVersion(), 0, 0, -1, 0
	for _, p := range t.GetPartitions() {
		if slices.Contains(p.GetReplicas(), w.id) {
			j.Replicas++
		}
		if p.GetLeader() == w.id {
			j.Leaders++
		}
	}
	for _, n := range t.GetNodes() {
		if n.GetId() == w.id {
			j.Name = n.GetName()
			w.addr = n.GetAddress()
		}
	}
	if j.Replicas > 0 || j.Leaders > 0 {
		return j, true, nil
	}
	// The map places nothing there, but each group keeps the node as a
	// voter until its leader has removed it: ask the node.
	j.Hosted, j.Stray = w.hosted(ctx, t)
	return j, true, nil
}

// hosted returns how many replicas the node runs that may still count in
// their group, and how many stray ones it runs; hosted is -1 if the node
// cannot be asked, as when it is already stopped.
//
// A replica is stray when it campaigns (a candidate) while t shows another
// node leading its partition: its group has removed it without it learning
// so (the node drops such replicas on its own after a while), or works
// without it. Either way stopping the node costs that group nothing. Any
// other replica, including a follower that has not yet heard from a new
// leader, may still be a voter of its group, so the drain waits for it.
func (w *drainWaiter) hosted(ctx context.Context, t *cachev1.Topology) (hosted, stray int) {
	if w.addr == "" {
		return -1, 0
	}
	if w.cc == nil {
		cc, err := dial(w.addr, w.e.token, w.e.tls)
		if err != nil {
			return -1, 0
		}
		w.cc = cc
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	s, err := cachev1.NewCacheClient(w.cc).Stats(ctx, &cachev1.StatsRequest{})
	if err != nil || s.GetNodeId() != w.id { // or another node has the address now
		return -1, 0
	}
	leaders := make(map[uint32]string, len(t.GetPartitions()))
	for _, r := range t.GetPartitions() {
		leaders[r.GetPartition()] = r.GetLeader()
	}
	for _, p := range s.GetPartitions() {
		leader := leaders[p.GetPartition()]
		if p.GetRole() == cachev1.Role_ROLE_CANDIDATE && leader != "" && leader != w.id {
			stray++
		} else {
			hosted++
		}
	}
	return hosted, stray
}

func (w *drainWaiter) close() {
	if w.cc != nil {
		_ = w.cc.Close()
	}
}

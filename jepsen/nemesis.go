package jepsen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	cachev1 "github.com/elcache/elcache/proto/cache/v1"
)

// Fault kinds.
const (
	KindPartitionOne     = "partition-one"      // one node cut from all others
	KindPartitionHalves  = "partition-halves"   // a minority and a majority
	KindPartitionRing    = "partition-ring"     // each node sees only its ring neighbours: overlapping majorities
	KindPartitionBridge  = "partition-bridge"   // two halves and one node that sees both
	KindPartitionLeader  = "partition-leader"   // the hot partition's leader cut from all others
	KindKill             = "kill"               // SIGKILL, restarted at the heal
	KindKillAll          = "kill-all"           // SIGKILL of every node at once, all restarted at the heal
	KindPauseShort       = "pause-short"        // SIGSTOP of the hot leader for less than a lease
	KindPauseLong        = "pause-long"         // SIGSTOP of the hot leader for longer than a lease
	KindNetLoss          = "net-loss"           // a share of one node's packets to its peers dropped
	KindNetSlow          = "net-slow"           // one node's packets delayed (or rate-limited)
	KindDBCut            = "db-cut"             // database links cut
	KindDBSlow           = "db-slow"            // database links slowed
	KindLeaderStall      = "leader-stall"       // the hot leader's disk frozen and its network cut
	KindMemberJoin       = "member-join"        // a spare node joins
	KindMemberDrainLeave = "member-drain-leave" // a node is drained and stopped
)

// AllKinds lists every fault kind.
var AllKinds = []string{KindPartitionOne, KindPartitionHalves, KindPartitionRing, KindPartitionBridge,
	KindPartitionLeader, KindKill, KindKillAll, KindPauseShort, KindPauseLong, KindNetLoss, KindNetSlow,
	KindLeaderStall, KindDBCut, KindDBSlow, KindMemberJoin, KindMemberDrainLeave}

// nemesis injects faults and heals them.
type nemesis struct {
	rec     *Recorder
	net     *Network
	cluster *Cluster
	proxies map[string]*DBProxy
	hot     func() uint32 // the partition leader-targeted faults hit
	rng     *rand.Rand
	lease   time.Duration

	// pending are faults left in force when the workload stopped.
	pending []pendingHeal

	logMu sync.Mutex
	log   io.Writer
}

func (n *nemesis) logf(format string, args ...any) {
	n.logMu.Lock()
	defer n.logMu.Unlock()
	fmt.Fprintf(n.log, "%9.3fs ", float64(n.rec.Now())/1e9)
	fmt.Fprintf(n.log, format+"\n", args...)
}

// members are the running members able to take a fault, in name order.
func (n *nemesis) members() []string {
	var out []string
	for _, p := range n.cluster.Running() {
		out = append(out, p.Name)
	}
	return out
}

func (n *nemesis) pick(from []string) string { return from[n.rng.IntN(len(from))] }

func (n *nemesis) shuffled(from []string) []string {
	s := slices.Clone(from)
	n.rng.Shuffle(len(s), func(i, j int) { s[i], s[j] = s[j], s[i] })
	return s
}

// early moves each of kinds that lies in the second half of order to a
// random place in its first half that holds none of kinds.
func (n *nemesis) early(order, kinds []string) {
	half := (len(order) + 1) / 2
	for i := half; i < len(order); i++ {
		if !slices.Contains(kinds, order[i]) {
			continue
		}
		var free []int
		for j := range half {
			if !slices.Contains(kinds, order[j]) {
				free = append(free, j)
			}
		}
		if len(free) == 0 {
			return
		}
		j := free[n.rng.IntN(len(free))]
		order[i], order[j] = order[j], order[i]
	}
}

// hotLeader is the name of the hot partition's leader, or a random member.
func (n *nemesis) hotLeader(ctx context.Context) string {
	if l := n.cluster.LeaderOf(ctx, n.hot()); l != "" && n.cluster.Proc(l).Running() && !n.cluster.Proc(l).Paused() {
		return l
	}
	return n.pick(n.members())
}

// inject starts a fault of kind and returns the function that heals it.
// A fault that cannot be made now (too few nodes running) returns a nil
// heal and no error.
func (n *nemesis) inject(ctx context.Context, kind string, hold time.Duration) (f Fault, heal func() error, err error) {
	f = Fault{Kind: kind}
	members := n.members()
	netHeal := func() error { return n.net.HealAll() }
	if len(members) < 3 && kind != KindMemberJoin {
		return f, nil, nil
	}
	switch kind {
	case KindPartitionOne, KindPartitionLeader:
		victim := n.pick(members)
		if kind == KindPartitionLeader {
			victim = n.hotLeader(ctx)
		}
		rest := slices.DeleteFunc(slices.Clone(members), func(s string) bool { return s == victim })
		f.Targets, f.Detail = []string{victim}, fmt.Sprintf("{%s} | {%s}", victim, strings.Join(rest, " "))
		return f, netHeal, n.net.Partition([]string{victim}, rest)
	case KindPartitionHalves:
		s := n.shuffled(members)
		a, b := s[:len(s)/2], s[len(s)/2:]
		slices.Sort(a)
		slices.Sort(b)
		f.Targets, f.Detail = a, fmt.Sprintf("{%s} | {%s}", strings.Join(a, " "), strings.Join(b, " "))
		return f, netHeal, n.net.Partition(a, b)
	case KindPartitionRing:
		s := n.shuffled(members)
		var cuts []string
		for i := range s {
			for j := i + 1; j < len(s); j++ {
				if d := min(j-i, len(s)-(j-i)); d > 1 {
					if err := n.net.Cut(s[i], s[j]); err != nil {
						return f, netHeal, err
					}
					cuts = append(cuts, s[i]+"/"+s[j])
				}
			}
		}
		f.Targets, f.Detail = s, "ring "+strings.Join(s, "-")+", cut "+strings.Join(cuts, " ")
		return f, netHeal, nil
	case KindPartitionBridge:
		s := n.shuffled(members)
		bridge, rest := s[0], s[1:]
		a, b := rest[:len(rest)/2], rest[len(rest)/2:]
		f.Targets, f.Detail = []string{bridge}, fmt.Sprintf("{%s} | {%s}, %s sees both", strings.Join(a, " "), strings.Join(b, " "), bridge)
		return f, netHeal, n.net.Partition(a, b)
	case KindKill:
		victim := n.pick(members)
		if n.rng.IntN(2) == 0 {
			victim = n.hotLeader(ctx)
		}
		p := n.cluster.Proc(victim)
		f.Targets, f.Detail = []string{victim}, "SIGKILL "+victim
		return f, func() error {
			if err := p.Start(); err != nil {
				return err
			}
			return p.WaitServing(60 * time.Second)
		}, p.Kill()
	case KindKillAll:
		// Every node process at once (the spare too if it has joined),
		// so no replica survives in memory: what a quorum acknowledged
		// must come back from the disks alone.
		var procs []*Proc
		for _, p := range n.cluster.Procs {
			if p.Running() {
				procs = append(procs, p)
			}
		}
		f.Targets = Names(procs)
		f.Detail = "SIGKILL " + strings.Join(f.Targets, " ") + " at once; all restarted at the heal"
		return f, func() error { return startAll(procs, 60*time.Second) }, killAll(procs)
	case KindPauseShort, KindPauseLong:
		victim := n.hotLeader(ctx)
		p := n.cluster.Proc(victim)
		f.Targets = []string{victim}
		f.Detail = fmt.Sprintf("SIGSTOP %s for %v (lease %v)", victim, hold, n.lease)
		return f, p.Resume, p.Pause()
	case KindLeaderStall:
		// A grey failure: the leader's disk hangs (its Raft loop blocks
		// in an fsync and cannot step down) and its peers lose it, while
		// clients still reach it.
		victim := n.hotLeader(ctx)
		p := n.cluster.Proc(victim)
		rest := slices.DeleteFunc(slices.Clone(members), func(s string) bool { return s == victim })
		f.Targets, f.Detail = []string{victim}, fmt.Sprintf("%s's disk frozen; {%s} | {%s}", victim, victim, strings.Join(rest, " "))
		heal = func() error { return errors.Join(p.ThawDisk(), n.net.HealAll()) }
		if err := p.FreezeDisk(); err != nil {
			return f, heal, err
		}
		return f, heal, n.net.Partition([]string{victim}, rest)
	case KindNetLoss:
		victim := n.pick(members)
		peers := slices.DeleteFunc(Names(n.cluster.Procs), func(s string) bool { return s == victim })
		f.Targets, f.Detail = []string{victim}, "30% of "+victim+"'s packets to and from its peers dropped"
		return f, netHeal, n.net.Lose(victim, 0.3, peers)
	case KindNetSlow:
		victim := n.pick(members)
		what, err := n.net.Slow(victim, "50ms")
		f.Targets, f.Detail = []string{victim}, victim+": "+what
		return f, netHeal, err
	case KindDBCut, KindDBSlow:
		targets := Names(n.cluster.Procs)
		if n.rng.IntN(3) == 0 {
			targets = []string{n.hotLeader(ctx)}
		}
		f.Targets = targets
		for _, t := range targets {
			if kind == KindDBCut {
				n.proxies[t].Cut()
			} else {
				n.proxies[t].Slow(25 * time.Millisecond)
			}
		}
		if kind == KindDBCut {
			f.Detail = "database link cut for " + strings.Join(targets, " ")
		} else {
			f.Detail = "database link of " + strings.Join(targets, " ") + " delayed 25ms each way"
		}
		return f, func() error {
			for _, t := range targets {
				n.proxies[t].Heal()
			}
			return nil
		}, nil
	case KindMemberJoin:
		for _, p := range n.cluster.Procs[n.cluster.Initial:] {
			if !p.Running() {
				f.Targets, f.Detail = []string{p.Name}, p.Name+" joins"
				if err := p.Start(); err != nil {
					return f, nil, err
				}
				return f, func() error { return nil }, p.WaitServing(60 * time.Second)
			}
		}
		return f, nil, nil
	case KindMemberDrainLeave:
		// A spare that joined leaves; else an initial member does and
		// comes back at the heal (a drained node that restarts is active
		// again).
		victim := ""
		for _, p := range n.cluster.Procs[n.cluster.Initial:] {
			if p.Running() && !p.Paused() {
				victim = p.Name
			}
		}
		comeBack := victim == ""
		if comeBack {
			victim = n.pick(members)
		}
		p := n.cluster.Proc(victim)
		f.Targets, f.Detail = []string{victim}, "drain "+victim+", then stop it"
		if comeBack {
			f.Detail += "; restarted at the heal"
		}
		if err := n.drain(ctx, victim); err != nil {
			n.logf("drain %s: %v (stopping it anyway)", victim, err)
		}
		heal = func() error { return nil }
		if comeBack {
			heal = func() error {
				if err := p.Start(); err != nil {
					return err
				}
				return p.WaitServing(60 * time.Second)
			}
		}
		return f, heal, p.Stop(20 * time.Second)
	}
	return f, nil, fmt.Errorf("jepsen: unknown fault kind %q", kind)
}

// drain asks the cluster to move everything off node and waits until the
// map places nothing on it.
func (n *nemesis) drain(ctx context.Context, node string) error {
	var last error
	for _, p := range n.cluster.Running() {
		if p.Name == node {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, last = p.Admin.Drain(cctx, &cachev1.DrainRequest{Node: node})
		cancel()
		if last == nil {
			break
		}
	}
	if last != nil {
		return last
	}
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		t, err := n.cluster.Topology(ctx)
		if err == nil {
			id := ""
			for _, nd := range t.Nodes {
				if nd.Name == node {
					id = nd.Id
				}
			}
			held := 0
			for _, r := range t.Partitions {
				if r.Leader == id || slices.Contains(r.Replicas, id) {
					held++
				}
			}
			if held == 0 {
				return nil
			}
		}
		time.Sleep(250 * time.Millisecond)
	}
	return fmt.Errorf("%s still holds replicas after 90s", node)
}

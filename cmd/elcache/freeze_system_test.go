package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/elcache/elcache/node"
	cachev1 "github.com/elcache/elcache/proto/cache/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

// freezePartitions keeps the freeze test's start-up short: it needs one
// partition its node leads and one it follows.
const freezePartitions = 8

// freezeRefuseWithin is the acceptance bound (issue 18): a node whose
// peers are both frozen refuses a LINEARIZABLE read this soon after the
// freeze.
const freezeRefuseWithin = 2 * time.Second

// freezeReadDeadline is each read's deadline while the peers are frozen:
// well beyond the bound, so a read that waits instead of failing fast
// shows as a slow refusal or a DeadlineExceeded, not a quick one.
const freezeReadDeadline = 10 * time.Second

// roles returns the partitions that the node with id leads and those it
// follows, given each partition's leader.
func roles(leaders []string, id string) (led, followed []uint32) {
	for pid, l := range leaders {
		if l == id {
			led = append(led, uint32(pid))
		} else {
			followed = append(followed, uint32(pid))
		}
	}
	return led, followed
}

// readAttempt is one LINEARIZABLE read sent while the peers are frozen.
type readAttempt struct {
	issued time.Duration // after the freeze
	took   time.Duration
	value  string // what a served read returned
	err    error
}

// TestClusterSystemFrozenPeersRefuse freezes (SIGSTOP) both peers of a
// node of a cluster running the server's default Raft timeouts, and reads
// linearizably through the node, for a partition it leads and one it
// follows, from the moment of the freeze: the node refuses with
// Unavailable, saying it has no quorum, within freezeRefuseWithin of the
// freeze, and at once afterwards; EVENTUAL and BOUNDED reads are still
// served. After SIGCONT the cluster serves LINEARIZABLE reads again.
func TestClusterSystemFrozenPeersRefuse(t *testing.T) {
	rc := node.DefaultConfig().Raft
	c := startClusterWith(t, freezePartitions)
	defer c.logWarnings()
	t.Logf("server's default Raft timeouts: heartbeat %v, election %v, lease %v, commit %v",
		rc.HeartbeatTimeout, rc.ElectionTimeout, rc.LeaderLeaseTimeout, rc.CommitTimeout)

	// Node a: one that leads a partition and follows another, if there
	// is one; else one that follows.
	leaders := c.leaders(0)
	a := -1
	var led, followed []uint32
	for i := range c.procs {
		l, f := roles(leaders, c.ids[i])
		if len(f) > 0 && (a < 0 || len(led) == 0 && len(l) > 0) {
			a, led, followed = i, l, f
		}
	}
	type side struct {
		role string
		pid  uint32
		key  string
	}
	var sides []side
	if len(led) > 0 {
		sides = append(sides, side{"leader", led[0], keyIn(c.ring, "frozen", led[0])})
	} else {
		t.Logf("one node leads every partition: only the follower side is tested")
	}
	sides = append(sides, side{"follower", followed[0], keyIn(c.ring, "frozen", followed[0])})
	an := c.procs[a].name

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, s := range sides {
		if _, err := c.put(ctx, []int{0, 1, 2}, 0, s.key, "before"); err != nil {
			t.Fatal(err)
		}
		r, _, err := c.get(ctx, a, s.key)
		if err != nil || !r.Found || string(r.Entry.Value) != "before" {
			t.Fatalf("LINEARIZABLE read of %s (partition %d) through %s before the freeze: %v, %v", s.key, s.pid, an, r, err)
		}
		// A follower learns that the write committed with the leader's
		// next append: wait until a serves it locally, so that the
		// EVENTUAL and BOUNDED reads below have it to serve.
		for {
			r, err := c.caches[a].Get(ctx, &cachev1.GetRequest{Key: []byte(s.key),
				Options: &cachev1.ReadOptions{Consistency: cachev1.Consistency_CONSISTENCY_EVENTUAL}})
			if err == nil && r.Found && string(r.Entry.Value) == "before" {
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("%s never applied the write of %s (partition %d): %v, %v", an, s.key, s.pid, r, err)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	var frozen []*proc
	for i, p := range c.procs {
		if i != a {
			frozen = append(frozen, p)
		}
	}
	// Registered after newProc's cleanups, so it runs before them: the
	// processes go on and can stop.
	t.Cleanup(func() {
		for _, p := range frozen {
			syscall.Kill(p.cmd.Process.Pid, syscall.SIGCONT)
		}
	})
	freeze := time.Now()
	for _, p := range frozen {
		if err := syscall.Kill(p.cmd.Process.Pid, syscall.SIGSTOP); err != nil {
			t.Fatalf("SIGSTOP %s: %v", p.name, err)
		}
	}

	// On each side, reads from the freeze until the first refusal, then a
	// few more at once.
	attempts := make([][]readAttempt, len(sides))
	var wg sync.WaitGroup
	for si, s := range sides {
		wg.Add(1)
		go func() {
			defer wg.Done()
			attempts[si] = readsUntilRefused(c.caches[a], s.key, freeze)
		}()
	}
	wg.Wait()

	for si, s := range sides {
		name := fmt.Sprintf("%s of partition %d (%s)", an, s.pid, s.role)
		first := slices.IndexFunc(attempts[si], func(r readAttempt) bool { return r.err != nil })
		var served []string
		for i, r := range attempts[si] {
			line := fmt.Sprintf("issued %v after the freeze, answered in %v", r.issued.Round(time.Millisecond), r.took.Round(time.Millisecond))
			switch {
			case r.err == nil:
				if r.value != "before" {
					t.Errorf("%s: LINEARIZABLE read %s returned %q, want %q", name, line, r.value, "before")
				}
				served = append(served, line)
				continue
			case status.Code(r.err) != codes.Unavailable:
				t.Errorf("%s: LINEARIZABLE read %s: %v, want Unavailable", name, line, r.err)
			case !strings.Contains(status.Convert(r.err).Message(), "no quorum"):
				t.Errorf("%s: LINEARIZABLE read refused with %q, which does not say that the node has no quorum", name, status.Convert(r.err).Message())
			}
			if i > first && r.took >= freezeRefuseWithin {
				t.Errorf("%s: LINEARIZABLE read %s, want under %v", name, line, freezeRefuseWithin)
			}
			t.Logf("%s: refused read %s", name, line)
		}
		if first < 0 {
			t.Errorf("%s: no LINEARIZABLE read refused within %v of the freeze (%d served)", name, freezeReadDeadline, len(served))
			continue
		}
		if len(served) > 0 {
			t.Logf("%s: %d LINEARIZABLE reads served after the freeze, before the first refusal: %s", name, len(served), strings.Join(served, "; "))
		}
		r := attempts[si][first]
		refused := r.issued + r.took
		t.Logf("%s: first refusal %v after SIGSTOP of both peers (election timeout %v): %v",
			name, refused.Round(time.Millisecond), rc.ElectionTimeout, status.Convert(r.err).Message())
		if refused >= freezeRefuseWithin {
			t.Errorf("%s: first LINEARIZABLE refusal %v after the freeze, want under %v (election timeout %v)",
				name, refused.Round(time.Millisecond), freezeRefuseWithin, rc.ElectionTimeout)
		}
	}

	// Reads that need no quorum are still served.
	for _, s := range sides {
		levels := map[string]*cachev1.ReadOptions{"EVENTUAL": {Consistency: cachev1.Consistency_CONSISTENCY_EVENTUAL}}
		if s.role == "follower" {
			// A leader without its lease confirms a BOUNDED read with
			// a quorum; a follower serves it from what it has.
			levels["BOUNDED"] = &cachev1.ReadOptions{Consistency: cachev1.Consistency_CONSISTENCY_BOUNDED, MaxStaleness: durationpb.New(time.Hour)}
		}
		for level, o := range levels {
			rctx, rcancel := context.WithTimeout(context.Background(), 5*time.Second)
			r, err := c.caches[a].Get(rctx, &cachev1.GetRequest{Key: []byte(s.key), Options: o})
			rcancel()
			if err != nil || !r.Found || string(r.Entry.Value) != "before" {
				t.Errorf("%s read of partition %d (%s) through %s with its peers frozen: %v, %v; want the value written before",
					level, s.pid, s.role, an, r, err)
			}
		}
	}

	thaw := time.Now()
	for _, p := range frozen {
		if err := syscall.Kill(p.cmd.Process.Pid, syscall.SIGCONT); err != nil {
			t.Fatalf("SIGCONT %s: %v", p.name, err)
		}
	}
	tctx, tcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer tcancel()
	for i := range c.procs {
		for _, s := range sides {
			r, _, err := c.get(tctx, i, s.key)
			if err != nil || !r.Found || string(r.Entry.Value) != "before" {
				t.Fatalf("LINEARIZABLE read of partition %d through %s after SIGCONT: %v, %v", s.pid, c.procs[i].name, r, err)
			}
		}
	}
	t.Logf("LINEARIZABLE reads served through every node %v after SIGCONT", time.Since(thaw).Round(time.Millisecond))
	c.waitConverged(30 * time.Second)
}

// readsUntilRefused reads key linearizably through cache, one read after
// another from the freeze on, each with freezeReadDeadline, until one is
// refused or freezeReadDeadline has passed since the freeze; then it sends
// three more reads, which should be refused at once.
func readsUntilRefused(cache cachev1.CacheClient, key string, freeze time.Time) []readAttempt {
	read := func() readAttempt {
		ctx, cancel := context.WithTimeout(context.Background(), freezeReadDeadline)
		defer cancel()
		began := time.Now()
		r, err := cache.Get(ctx, &cachev1.GetRequest{Key: []byte(key),
			Options: &cachev1.ReadOptions{Consistency: cachev1.Consistency_CONSISTENCY_LINEARIZABLE}})
		return readAttempt{issued: began.Sub(freeze), took: time.Since(began), value: string(r.GetEntry().GetValue()), err: err}
	}
	var out []readAttempt
	for time.Since(freeze) < freezeReadDeadline {
		r := read()
		out = append(out, r)
		if r.err != nil {
			for range 3 {
				out = append(out, read())
			}
			return out
		}
	}
	return out
}

package node_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/elcache/elcache/node/nodetest"
	cachev1 "github.com/elcache/elcache/proto/cache/v1"
)

// refuseWithin bounds how long a request to a node cut off from its
// quorum may take to fail (the cluster's election timeout is 500 ms). It
// is a correctness bound, not a performance goal: without the check the
// request waits out its 10 s deadline.
const refuseWithin = 2 * time.Second

// writeAll writes value to every key through cl, retrying while the
// cluster is not ready.
func writeAll(t *testing.T, cl cachev1.CacheClient, keys []string, value string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, k := range keys {
		for {
			_, err := cl.Put(ctx, &cachev1.PutRequest{Key: []byte(k), Value: []byte(value)})
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("write %s: %v", k, err)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// roles returns the partitions node id leads and those it follows, as
// its Stats say.
func roles(t *testing.T, cl cachev1.CacheClient, id string) (led, followed []uint32) {
	t.Helper()
	st, err := cl.Stats(ctxT(t), &cachev1.StatsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range st.Partitions {
		switch {
		case p.Role == cachev1.Role_ROLE_LEADER:
			led = append(led, p.Partition)
		case p.Leader != "" && p.Leader != id:
			followed = append(followed, p.Partition)
		}
	}
	return led, followed
}

func level(c cachev1.Consistency) *cachev1.ReadOptions { return &cachev1.ReadOptions{Consistency: c} }

// TestClusterMinorityFailsFast cuts one node off from both its peers and
// sends it, at once, reads that need a quorum and writes, for a
// partition it led and one it followed: each fails with Unavailable well
// before its 10 s deadline, says why, and carries the empty leader hint
// of a request that did not run. EVENTUAL and BOUNDED reads with a large
// bound are still served there.
func TestClusterMinorityFailsFast(t *testing.T) {
	c := nodetest.StartCluster(t, 3)
	keys := keyPerPartition(t, 8, "fast")
	writeAll(t, dial(t, c.Nodes[1].Addr()), keys, "before")
	cut := dial(t, c.Nodes[0].Addr())
	// The cut node has applied every write (its EVENTUAL reads see them).
	for _, k := range keys {
		waitFor(t, 10*time.Second, "node 0 applies "+k, func() bool {
			r, err := cut.Get(ctxT(t), &cachev1.GetRequest{Key: []byte(k), Options: level(cachev1.Consistency_CONSISTENCY_EVENTUAL)})
			return err == nil && r.Found
		})
	}
	led, followed := roles(t, cut, c.Nodes[0].ID())
	if len(followed) == 0 {
		t.Fatalf("node 0 follows no partition (leads %v)", led)
	}
	type side struct {
		name string
		pid  uint32
	}
	var sides []side
	if len(led) > 0 {
		sides = append(sides, side{"leader", led[0]})
	} else {
		t.Logf("node 0 leads no partition: only the follower side is tested")
	}
	sides = append(sides, side{"follower", followed[0]})

	c.Partition(0)
	if len(led) > 0 {
		// At once, before the election timeout has passed: a leader's
		// LINEARIZABLE read still fails fast, as no peer can answer its
		// leadership round.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		began := time.Now()
		_, err := cut.Get(ctx, &cachev1.GetRequest{Key: []byte(keys[led[0]]), Options: level(cachev1.Consistency_CONSISTENCY_LINEARIZABLE)})
		cancel()
		t.Logf("partition %d: LINEARIZABLE at once refused after %v: %v", led[0], time.Since(began).Round(time.Millisecond), err)
		if status.Code(err) != codes.Unavailable || !strings.Contains(status.Convert(err).Message(), "no quorum") {
			t.Errorf("LINEARIZABLE read on the cut leader at once: %v, want Unavailable for want of a quorum", err)
		}
		if took := time.Since(began); took >= refuseWithin {
			t.Errorf("refused after %v, want under %v", took, refuseWithin)
		}
	}
	// The promise is for a node that has not heard from a quorum within
	// the election timeout (500 ms here): until then a leader may still
	// serve a LEASE read under its lease, and take a write it then cannot
	// commit.
	time.Sleep(600 * time.Millisecond)
	for _, s := range sides {
		pid := s.pid
		key := []byte(keys[pid])
		for _, tc := range []struct {
			name string
			call func(context.Context) error
		}{
			{"LINEARIZABLE", func(ctx context.Context) error {
				_, err := cut.Get(ctx, &cachev1.GetRequest{Key: key, Options: level(cachev1.Consistency_CONSISTENCY_LINEARIZABLE)})
				return err
			}},
			{"LEASE", func(ctx context.Context) error {
				_, err := cut.Get(ctx, &cachev1.GetRequest{Key: key, Options: level(cachev1.Consistency_CONSISTENCY_LEASE)})
				return err
			}},
			{"Put", func(ctx context.Context) error {
				_, err := cut.Put(ctx, &cachev1.PutRequest{Key: key, Value: []byte("minority")})
				return err
			}},
		} {
			t.Run(s.name+"/"+tc.name, func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				began := time.Now()
				err := tc.call(ctx)
				took := time.Since(began)
				t.Logf("partition %d: refused after %v: %v", pid, took.Round(time.Millisecond), err)
				if status.Code(err) != codes.Unavailable {
					t.Fatalf("err = %v, want Unavailable", err)
				}
				if msg := status.Convert(err).Message(); !strings.Contains(msg, "no quorum") || !strings.Contains(msg, "last contact with a quorum") {
					t.Errorf("message %q does not say that the node has no quorum and when it last had one", msg)
				}
				if h := leaderHint(err); h == nil || h.NodeId != "" {
					t.Errorf("err = %v carries hint %v, want an empty leader hint (not executed)", err, h)
				}
				if took >= refuseWithin {
					t.Errorf("refused after %v, want under %v", took, refuseWithin)
				}
			})
		}
	}
	// Reads that need no quorum are still served on the cut node.
	for _, pid := range followed {
		key := []byte(keys[pid])
		for name, o := range map[string]*cachev1.ReadOptions{
			"EVENTUAL": level(cachev1.Consistency_CONSISTENCY_EVENTUAL),
			"BOUNDED":  {Consistency: cachev1.Consistency_CONSISTENCY_BOUNDED, MaxStaleness: durationpb.New(time.Hour)},
		} {
			r, err := cut.Get(ctxT(t), &cachev1.GetRequest{Key: key, Options: o})
			if err != nil || !r.Found || string(r.Entry.Value) != "before" {
				t.Errorf("%s read of partition %d on the cut node: %v, %v; want the value written before the cut", name, pid, r, err)
			}
		}
	}
	for _, pid := range led {
		r, err := cut.Get(ctxT(t), &cachev1.GetRequest{Key: []byte(keys[pid]), Options: level(cachev1.Consistency_CONSISTENCY_EVENTUAL)})
		if err != nil || !r.Found || string(r.Entry.Value) != "before" {
			t.Errorf("EVENTUAL read of partition %d on the cut node: %v, %v; want the value written before the cut", pid, r, err)
		}
	}
}

// TestClusterMajorityServesWhileMinorityCut: while one node is cut off,
// the other two elect leaders for the partitions it led and serve
// writes, LINEARIZABLE and LEASE reads of every partition. While they
// wait for those elections they never refuse for want of a quorum: they
// still reach one.
func TestClusterMajorityServesWhileMinorityCut(t *testing.T) {
	c := nodetest.StartCluster(t, 3)
	keys := keyPerPartition(t, 8, "majority")
	writeAll(t, dial(t, c.Nodes[1].Addr()), keys, "before")
	c.Partition(0)
	for _, i := range []int{1, 2} {
		cl := dial(t, c.Nodes[i].Addr())
		for _, k := range keys {
			ops := []struct {
				name string
				call func(context.Context) error
			}{
				{"Put", func(ctx context.Context) error {
					_, err := cl.Put(ctx, &cachev1.PutRequest{Key: []byte(k), Value: []byte("after")})
					return err
				}},
				{"LINEARIZABLE", func(ctx context.Context) error {
					r, err := cl.Get(ctx, &cachev1.GetRequest{Key: []byte(k), Options: level(cachev1.Consistency_CONSISTENCY_LINEARIZABLE)})
					if err == nil && (!r.Found || string(r.Entry.Value) != "after") {
						t.Errorf("node %d: LINEARIZABLE read of %s: %v, want the value written after the cut", i, k, r)
					}
					return err
				}},
				{"LEASE", func(ctx context.Context) error {
					r, err := cl.Get(ctx, &cachev1.GetRequest{Key: []byte(k), Options: level(cachev1.Consistency_CONSISTENCY_LEASE)})
					if err == nil && (!r.Found || string(r.Entry.Value) != "after") {
						t.Errorf("node %d: LEASE read of %s: %v, want the value written after the cut", i, k, r)
					}
					return err
				}},
			}
			for _, op := range ops {
				ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
				for {
					err := op.call(ctx)
					if err == nil {
						break
					}
					if strings.Contains(status.Convert(err).Message(), "no quorum") {
						t.Fatalf("node %d: %s %s refused on the majority side: %v", i, op.name, k, err)
					}
					if ctx.Err() != nil {
						t.Fatalf("node %d: %s %s: %v", i, op.name, k, err)
					}
					time.Sleep(10 * time.Millisecond)
				}
				cancel()
			}
		}
	}
}

// leaderHint returns the LeaderHint detail of a gRPC error, or nil.
func leaderHint(err error) *cachev1.LeaderHint {
	for _, d := range status.Convert(err).Details() {
		if h, ok := d.(*cachev1.LeaderHint); ok {
			return h
		}
	}
	return nil
}

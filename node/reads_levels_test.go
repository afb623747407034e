package node_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/elcache/elcache/node/nodetest"
	cachev1 "github.com/elcache/elcache/proto/cache/v1"
)

// levelRead reads key through cl at level (BOUNDED with bound).
func levelRead(cl cachev1.CacheClient, key string, level cachev1.Consistency, bound time.Duration,
	tokens ...*cachev1.SessionToken) (*cachev1.GetResponse, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	o := &cachev1.ReadOptions{Consistency: level, SessionTokens: tokens}
	if bound > 0 {
		o.MaxStaleness = durationpb.New(bound)
	}
	return cl.Get(ctx, &cachev1.GetRequest{Key: []byte(key), Options: o})
}

// nodeIndex turns a node name ("n2") into its index in the cluster.
func nodeIndex(t *testing.T, name string) int {
	t.Helper()
	var i int
	if _, err := fmt.Sscanf(name, "n%d", &i); err != nil {
		t.Fatalf("node name %q: %v", name, err)
	}
	return i
}

// TestReadLevelsServeWithProof: on a healthy cluster every level answers
// on a follower except LEASE (which only the leader serves), and each
// response carries the proof its level promises.
func TestReadLevelsServeWithProof(t *testing.T) {
	c := nodetest.StartCluster(t, 3)
	leaderCl := dial(t, c.Nodes[0].Addr())
	put, err := leaderCl.Put(opCtx(t), &cachev1.PutRequest{Key: []byte("proof"), Value: []byte("v1")})
	if err != nil {
		t.Fatal(err)
	}
	leader := nodeIndex(t, put.Meta.ServedBy)
	follower := (leader + 1) % 3
	fcl := dial(t, c.Nodes[follower].Addr())

	// A follower serves LINEARIZABLE itself once it has applied the
	// leader's read index; right after a write it may still hand the read
	// to the leader, so a few tries are allowed.
	waitFor(t, 5*time.Second, "a follower serves a linearizable read", func() bool {
		r, err := levelRead(fcl, "proof", cachev1.Consistency_CONSISTENCY_LINEARIZABLE, 0)
		if err != nil {
			t.Fatalf("linearizable read on n%d: %v", follower, err)
		}
		if !r.Found || string(r.Entry.Value) != "v1" {
			t.Fatalf("linearizable read on n%d = %v, want v1", follower, r)
		}
		if r.Meta.AppliedIndex < put.Version || r.Meta.Staleness.AsDuration() != 0 {
			t.Fatalf("linearizable proof %v: want applied >= %d and zero staleness", r.Meta, put.Version)
		}
		return r.Meta.Role == cachev1.Role_ROLE_FOLLOWER
	})

	r, err := levelRead(fcl, "proof", cachev1.Consistency_CONSISTENCY_LEASE, 0)
	if err != nil || !r.Found || string(r.Entry.Value) != "v1" {
		t.Fatalf("lease read on n%d = %v, %v; want v1", follower, r, err)
	}
	if r.Meta.Role != cachev1.Role_ROLE_LEADER || r.Meta.ServedBy != put.Meta.ServedBy {
		t.Errorf("lease read served by %s (%v), want the leader %s", r.Meta.ServedBy, r.Meta.Role, put.Meta.ServedBy)
	}

	bound := 2 * time.Second
	waitFor(t, 5*time.Second, "a follower serves a bounded read", func() bool {
		r, err := levelRead(fcl, "proof", cachev1.Consistency_CONSISTENCY_BOUNDED, bound)
		if err != nil || !r.Found || string(r.Entry.Value) != "v1" {
			t.Fatalf("bounded read on n%d = %v, %v; want v1", follower, r, err)
		}
		if s := r.Meta.Staleness.AsDuration(); s > bound {
			t.Fatalf("bounded read proves staleness %v, over the bound %v", s, bound)
		}
		return r.Meta.Role == cachev1.Role_ROLE_FOLLOWER
	})

	// SESSION with the write's token: read-your-writes on any replica.
	for i := range c.Nodes {
		r, err := levelRead(dial(t, c.Nodes[i].Addr()), "proof", cachev1.Consistency_CONSISTENCY_SESSION, 0, put.Meta.SessionToken)
		if err != nil || !r.Found || r.Entry.Version < put.Version {
			t.Fatalf("session read on n%d = %v, %v; want version >= %d", i, r, err, put.Version)
		}
		if tok := r.Meta.SessionToken; tok.Epoch != put.Meta.SessionToken.Epoch || tok.Index < put.Version {
			t.Errorf("session read on n%d returned token %v, want epoch %d and index >= %d", i, tok, put.Meta.SessionToken.Epoch, put.Version)
		}
	}
	// A token beyond the log is a client error, not a wait.
	bogus := &cachev1.SessionToken{Partition: put.Meta.Partition, Epoch: put.Meta.SessionToken.Epoch, Index: put.Version + 1_000_000}
	if _, err := levelRead(dial(t, c.Nodes[leader].Addr()), "proof", cachev1.Consistency_CONSISTENCY_SESSION, 0, bogus); status.Code(err) != codes.InvalidArgument {
		t.Errorf("session read with a token beyond the log: err = %v, want InvalidArgument", err)
	}

	r, err = levelRead(fcl, "proof", cachev1.Consistency_CONSISTENCY_EVENTUAL, 0)
	if err != nil || r.Meta.Role != cachev1.Role_ROLE_FOLLOWER || r.Meta.ServedBy != fmt.Sprintf("n%d", follower) {
		t.Fatalf("eventual read on n%d = %v, %v; want it served there", follower, r, err)
	}
}

// TestReadLevelsOnMinoritySide cuts a node off and reads through it. The
// table in README.md says what each level does there: LINEARIZABLE and
// LEASE fail with Unavailable, BOUNDED answers while its proof is within
// the bound and then fails, EVENTUAL keeps answering; after healing,
// EVENTUAL converges.
func TestReadLevelsOnMinoritySide(t *testing.T) {
	c := nodetest.StartCluster(t, 3)
	keys := keyPerPartition(t, 8, "side")
	cl := dial(t, c.Nodes[1].Addr())
	for _, k := range keys {
		if _, err := cl.Put(opCtx(t), &cachev1.PutRequest{Key: []byte(k), Value: []byte("before")}); err != nil {
			t.Fatal(err)
		}
	}
	// Every replica has applied the writes before the cut.
	c.WaitConverged(30 * time.Second)
	for _, k := range keys {
		waitFor(t, 5*time.Second, "n0 has applied "+k, func() bool {
			r, err := levelRead(dial(t, c.Nodes[0].Addr()), k, cachev1.Consistency_CONSISTENCY_EVENTUAL, 0)
			return err == nil && r.Found
		})
	}

	bound := 3 * time.Second
	c.Partition(0)
	cut := time.Now()
	minority := dial(t, c.Nodes[0].Addr())
	for _, k := range keys {
		r, err := levelRead(minority, k, cachev1.Consistency_CONSISTENCY_EVENTUAL, 0)
		if err != nil || !r.Found || string(r.Entry.Value) != "before" {
			t.Fatalf("eventual read of %s on the minority side = %v, %v; want \"before\"", k, r, err)
		}
		if time.Since(cut) < bound/2 {
			// Within the bound, the cut-off replica can still prove it.
			r, err := levelRead(minority, k, cachev1.Consistency_CONSISTENCY_BOUNDED, bound)
			if err != nil || !r.Found || string(r.Entry.Value) != "before" {
				t.Fatalf("bounded(%v) read of %s %v after the cut = %v, %v; want \"before\"", bound, k, time.Since(cut), r, err)
			}
		}
	}

	// The majority moves on.
	maj := dial(t, c.Nodes[1].Addr())
	for _, k := range keys {
		waitFor(t, 15*time.Second, "the majority writes "+k, func() bool {
			_, err := maj.Put(opCtx(t), &cachev1.PutRequest{Key: []byte(k), Value: []byte("after")})
			return err == nil
		})
	}
	time.Sleep(time.Until(cut.Add(bound + 500*time.Millisecond)))
	for _, k := range keys {
		for _, level := range []cachev1.Consistency{cachev1.Consistency_CONSISTENCY_LINEARIZABLE,
			cachev1.Consistency_CONSISTENCY_LEASE, cachev1.Consistency_CONSISTENCY_BOUNDED} {
			began := time.Now()
			var b time.Duration
			if level == cachev1.Consistency_CONSISTENCY_BOUNDED {
				b = bound
			}
			r, err := levelRead(minority, k, level, b)
			if status.Code(err) != codes.Unavailable {
				t.Fatalf("%v read of %s on the minority side %v after the cut = %v, %v; want Unavailable", level, k, time.Since(cut), r, err)
			}
			t.Logf("%v read of %s on the minority side failed in %v: %v", level, k, time.Since(began).Round(time.Millisecond), err)
		}
		r, err := levelRead(minority, k, cachev1.Consistency_CONSISTENCY_EVENTUAL, 0)
		if err != nil || !r.Found {
			t.Fatalf("eventual read of %s on the minority side after the bound = %v, %v; want an answer", k, r, err)
		}
	}

	c.Heal()
	for _, k := range keys {
		waitFor(t, 20*time.Second, "n0 converges on "+k, func() bool {
			r, err := levelRead(minority, k, cachev1.Consistency_CONSISTENCY_EVENTUAL, 0)
			return err == nil && r.Found && string(r.Entry.Value) == "after"
		})
	}
}

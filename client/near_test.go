package client_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/elcache/elcache/client"
	cachev1 "github.com/elcache/elcache/proto/cache/v1"
)

// nearClient starts a client with a near cache on the cluster of c.
func nearClient(t *testing.T, seeds []string, edit func(*client.Config)) *client.Client {
	t.Helper()
	cfg := client.DefaultConfig()
	cfg.Seeds = seeds
	cfg.NearCache = &client.NearCacheConfig{}
	return startClient(t, cfg, edit)
}

// nearHit reads key at opt until the near cache serves it, and returns
// the entry; it fails the test after timeout.
func nearHit(t *testing.T, cl *client.Client, key string, timeout time.Duration, opt client.ReadOption) client.Entry {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		e, err := cl.Get(t.Context(), []byte(key), opt)
		if err == nil && e.Meta.ServedBy == "near-cache" {
			return e
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no near-cache hit within %v (last: served by %q, err %v)", key, timeout, e.Meta.ServedBy, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestNearCacheServesAndInvalidates: a client's near cache serves a key
// it has read, at EVENTUAL, BOUNDED and SESSION, with the metadata of a
// server read; a write through another client drops the copy, and the
// next reads return the new value; LINEARIZABLE and LEASE reads never
// come from the near cache.
func TestNearCacheServesAndInvalidates(t *testing.T) {
	c, writer := clusterClient(t, 3, nil)
	cl := nearClient(t, []string{c.Nodes[0].Addr()}, nil)
	ctx := t.Context()
	if _, err := writer.Put(ctx, []byte("k"), []byte("v1")); err != nil {
		t.Fatal(err)
	}
	eventual := client.WithConsistency(cachev1.Consistency_CONSISTENCY_EVENTUAL)
	e := nearHit(t, cl, "k", 5*time.Second, eventual)
	if string(e.Value) != "v1" || e.Meta.Session.Index == 0 || e.Meta.AppliedIndex < e.Version {
		t.Fatalf("near hit %q, meta %+v, version %d", e.Value, e.Meta, e.Version)
	}
	b := nearHit(t, cl, "k", 5*time.Second, client.Bounded(100*time.Millisecond))
	if b.Meta.Staleness > 100*time.Millisecond || b.Meta.Consistency != cachev1.Consistency_CONSISTENCY_BOUNDED {
		t.Errorf("bounded near hit proves staleness %v at level %v", b.Meta.Staleness, b.Meta.Consistency)
	}
	nearHit(t, cl, "k", 5*time.Second, client.WithConsistency(cachev1.Consistency_CONSISTENCY_SESSION))
	for _, level := range []cachev1.Consistency{cachev1.Consistency_CONSISTENCY_LINEARIZABLE, cachev1.Consistency_CONSISTENCY_LEASE} {
		if e, err := cl.Get(ctx, []byte("k"), client.WithConsistency(level)); err != nil || e.Meta.ServedBy == "near-cache" {
			t.Errorf("%v read: served by %q, err %v", level, e.Meta.ServedBy, err)
		}
	}

	w, err := writer.Put(ctx, []byte("k"), []byte("v2"))
	if err != nil {
		t.Fatal(err)
	}
	acked := time.Now()
	// BOUNDED(100ms) started 100ms after the write was acknowledged must
	// see it, near cache or not.
	time.Sleep(100 * time.Millisecond)
	for range 20 {
		e, err := cl.Get(ctx, []byte("k"), client.Bounded(100*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		if string(e.Value) != "v2" {
			t.Fatalf("bounded read %v after the write was acknowledged returned %q (served by %s)", time.Since(acked), e.Value, e.Meta.ServedBy)
		}
	}
	e = nearHit(t, cl, "k", 5*time.Second, eventual)
	if string(e.Value) != "v2" || e.Version != w.Version {
		t.Fatalf("near hit after the write: %q version %d, want v2 version %d", e.Value, e.Version, w.Version)
	}
	n := cl.Counters().Near
	if n.Invalidations == 0 || n.Hits == 0 || n.Entries == 0 || n.Bytes == 0 {
		t.Errorf("near counters %+v: want invalidations, hits, entries and bytes", n)
	}
	t.Logf("near counters %+v", n)
}

// TestNearCacheBoundedNeverTooOld: one client increments a key's value
// while another reads it at BOUNDED(100ms) through its near cache: no
// read returns a value older than one acknowledged 100ms before the read
// began, and most reads are served locally.
func TestNearCacheBoundedNeverTooOld(t *testing.T) {
	c, writer := clusterClient(t, 3, nil)
	cl := nearClient(t, []string{c.Nodes[1].Addr()}, nil)
	ctx := t.Context()
	const bound = 100 * time.Millisecond
	keys := []string{"a", "b", "c", "d"}
	// acks[i] is when value i of every key was acknowledged.
	var mu sync.Mutex
	var acks []time.Time
	put := func(i int) {
		for _, k := range keys {
			if _, err := writer.Put(ctx, []byte(k), []byte(strconv.Itoa(i))); err != nil {
				if ctx.Err() == nil {
					t.Error(err)
				}
				return
			}
		}
		mu.Lock()
		acks = append(acks, time.Now())
		mu.Unlock()
	}
	put(0)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 1; i <= 60; i++ {
			put(i)
			time.Sleep(20 * time.Millisecond)
		}
	}()
	var reads, local int
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
		}
		for _, k := range keys {
			start := time.Now()
			e, err := cl.Get(ctx, []byte(k), client.Bounded(bound))
			got := -1 // not found: older than value 0
			switch {
			case err == nil:
				got, _ = strconv.Atoi(string(e.Value))
			case !errors.Is(err, client.ErrNotFound):
				t.Fatal(err)
			}
			mu.Lock()
			floor := -1
			for i, at := range acks {
				if at.Before(start.Add(-bound)) {
					floor = i
				}
			}
			mu.Unlock()
			if got < floor {
				t.Fatalf("%s: read begun at %v returned %d, but %d was acknowledged more than %v before (served by %s, staleness %v)",
					k, start.Format("15:04:05.000"), got, floor, bound, e.Meta.ServedBy, e.Meta.Staleness)
			}
			reads++
			if e.Meta.ServedBy == "near-cache" {
				local++
			}
		}
	}
	t.Logf("%d bounded reads, %d from the near cache; counters %+v", reads, local, cl.Counters().Near)
	if local == 0 {
		t.Error("no read was served by the near cache")
	}
}

// cutDialer dials TCP until cut: then every connection it made stops
// carrying bytes either way (a partition, not a reset), and new ones
// hang until their context ends.
type cutDialer struct {
	cut   atomic.Bool
	mu    sync.Mutex
	conns []*cutConn
}

func (d *cutDialer) dial(ctx context.Context, addr string) (net.Conn, error) {
	if d.cut.Load() {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	var nd net.Dialer
	c, err := nd.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	cc := &cutConn{Conn: c, d: d}
	d.mu.Lock()
	d.conns = append(d.conns, cc)
	d.mu.Unlock()
	return cc, nil
}

type cutConn struct {
	net.Conn
	d *cutDialer
}

func (c *cutConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	for c.d.cut.Load() && err == nil {
		// Drop what arrives while cut.
		n, err = c.Conn.Read(b)
	}
	return n, err
}

func (c *cutConn) Write(b []byte) (int, error) {
	if c.d.cut.Load() {
		return len(b), nil // lost
	}
	return c.Conn.Write(b)
}

// TestNearCachePartitionedClient: a client cut off from the whole
// cluster stops serving BOUNDED reads from its near cache within their
// bound, and SESSION reads within StreamTimeout; EVENTUAL reads go on
// for the grace and then stop too.
func TestNearCachePartitionedClient(t *testing.T) {
	c, writer := clusterClient(t, 3, nil)
	d := &cutDialer{}
	ncfg := client.NearCacheConfig{StreamTimeout: 200 * time.Millisecond, Grace: 300 * time.Millisecond}
	cl := nearClient(t, []string{c.Nodes[0].Addr()}, func(cfg *client.Config) {
		cfg.Dialer = d.dial
		cfg.NearCache = &ncfg
		cfg.MaxAttempts = 1
	})
	ctx := t.Context()
	if _, err := writer.Put(ctx, []byte("k"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	const bound = 100 * time.Millisecond
	nearHit(t, cl, "k", 5*time.Second, client.Bounded(bound))
	nearHit(t, cl, "k", 5*time.Second, client.WithConsistency(cachev1.Consistency_CONSISTENCY_SESSION))
	d.cut.Store(true)
	cut := time.Now()
	levels := []struct {
		opt   client.ReadOption
		name  string
		limit time.Duration // no local hit may begin later than this after the cut
	}{
		{client.Bounded(bound), "bounded", bound},
		{client.WithConsistency(cachev1.Consistency_CONSISTENCY_SESSION), "session", ncfg.StreamTimeout},
		{client.WithConsistency(cachev1.Consistency_CONSISTENCY_EVENTUAL), "eventual", ncfg.StreamTimeout + ncfg.Grace},
	}
	last := make(map[string]time.Duration)
	for time.Since(cut) < 2*time.Second {
		for _, l := range levels {
			start := time.Since(cut)
			rctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
			e, err := cl.Get(rctx, []byte("k"), l.opt)
			cancel()
			if err == nil && e.Meta.ServedBy == "near-cache" {
				if start > l.limit {
					t.Fatalf("%s read begun %v after the client was cut off was served by the near cache (limit %v)", l.name, start, l.limit)
				}
				last[l.name] = start
			} else if err == nil {
				t.Fatalf("%s read served by %s while the client is cut off", l.name, e.Meta.ServedBy)
			} else if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, client.ErrUnavailable) {
				t.Logf("%s read: %v", l.name, err)
			}
		}
	}
	t.Logf("last near-cache hits after the cut: %v", last)
	if _, ok := last["eventual"]; !ok {
		t.Error("no EVENTUAL read was served in the grace after the cut")
	}
	d.cut.Store(false)
	// Healed: the client reconnects, resumes, and serves locally again.
	nearHit(t, cl, "k", 10*time.Second, client.Bounded(bound))
	if n := cl.Counters().Near; n.Reconnects == 0 {
		t.Errorf("near counters %+v: no stream reconnected", n)
	}
}

// TestNearCacheLeaderChange: the node leading the partitions of a set of
// keys is stopped while another client rewrites them: the near cache
// follows each partition on its new leader from where it stopped, and no
// copy outlives its key's next write (BOUNDED reads started 100ms after
// the writes were acknowledged return them).
func TestNearCacheLeaderChange(t *testing.T) {
	c, writer := clusterClient(t, 3, nil)
	cl := nearClient(t, []string{c.Nodes[1].Addr(), c.Nodes[2].Addr()}, nil)
	ctx := t.Context()
	var keys []string
	for i := range 32 {
		k := fmt.Sprintf("key-%d", i)
		keys = append(keys, k)
		if _, err := writer.Put(ctx, []byte(k), []byte("old")); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range keys {
		nearHit(t, cl, k, 5*time.Second, client.WithConsistency(cachev1.Consistency_CONSISTENCY_EVENTUAL))
	}
	before := cl.Counters().Near
	c.Kill(0)
	for _, k := range keys {
		wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		_, err := writer.Put(wctx, []byte(k), []byte("new"))
		cancel()
		if err != nil {
			t.Fatal(err)
		}
	}
	acked := time.Now()
	time.Sleep(100 * time.Millisecond)
	for _, k := range keys {
		e, err := cl.Get(ctx, []byte(k), client.Bounded(100*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		if string(e.Value) != "new" {
			t.Fatalf("%s: bounded read %v after the writes were acknowledged returned %q (served by %s)", k, time.Since(acked), e.Value, e.Meta.ServedBy)
		}
	}
	// Every copy is read again and cached from the new leaders.
	for _, k := range keys {
		if e := nearHit(t, cl, k, 10*time.Second, client.WithConsistency(cachev1.Consistency_CONSISTENCY_EVENTUAL)); string(e.Value) != "new" {
			t.Fatalf("%s: near cache holds %q after the rewrite", k, e.Value)
		}
	}
	after := cl.Counters().Near
	t.Logf("near counters before the kill %+v, after %+v", before, after)
	if after.Restarts != 0 {
		t.Errorf("%d partitions restarted: their streams did not resume on the new leaders", after.Restarts)
	}
}

// TestNearCacheBrokenFeedIsCaught: with the nodes' Changes streams broken
// on purpose (Hooks.BreakChanges: no invalidations), the check of
// TestNearCacheServesAndInvalidates fails: a BOUNDED read begun well
// after a write was acknowledged returns the old value from the near
// cache. It proves that check can fail.
func TestNearCacheBrokenFeedIsCaught(t *testing.T) {
	c, writer := clusterClient(t, 3, nil)
	for _, h := range c.Hooks {
		h.BreakChanges(true)
	}
	cl := nearClient(t, []string{c.Nodes[0].Addr()}, nil)
	ctx := t.Context()
	if _, err := writer.Put(ctx, []byte("k"), []byte("v1")); err != nil {
		t.Fatal(err)
	}
	nearHit(t, cl, "k", 5*time.Second, client.Bounded(100*time.Millisecond))
	if _, err := writer.Put(ctx, []byte("k"), []byte("v2")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	e, err := cl.Get(ctx, []byte("k"), client.Bounded(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if string(e.Value) != "v1" || e.Meta.ServedBy != "near-cache" {
		t.Fatalf("with invalidations lost, a bounded read returned %q served by %s: want the stale v1 from the near cache (counters %+v)", e.Value, e.Meta.ServedBy, cl.Counters().Near)
	}
}

// TestNearCacheExpiry: a copy is not served past its entry's expiry, and
// a delete through another client reaches the near cache as a change:
// no read is served the deleted copy once StreamTimeout + Grace (1.5s by
// default, the longest an EVENTUAL copy outlives its stream's last mark)
// and some slack have passed.
func TestNearCacheExpiry(t *testing.T) {
	c, writer := clusterClient(t, 3, nil)
	cl := nearClient(t, []string{c.Nodes[0].Addr()}, nil)
	ctx := t.Context()
	eventual := client.WithConsistency(cachev1.Consistency_CONSISTENCY_EVENTUAL)
	if _, err := writer.Put(ctx, []byte("ttl"), []byte("v"), client.WithTTL(time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := writer.Put(ctx, []byte("del"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	e := nearHit(t, cl, "ttl", 5*time.Second, eventual)
	nearHit(t, cl, "del", 5*time.Second, eventual)
	if e.ExpiresAt.IsZero() {
		t.Fatal("the near cache's copy lost its expiry")
	}
	before := cl.Counters().Near.Invalidations
	if _, err := writer.Delete(ctx, []byte("del")); err != nil {
		t.Fatal(err)
	}
	deleted := time.Now()
	for time.Since(deleted) < 4*time.Second {
		start := time.Now()
		if got, err := cl.Get(ctx, []byte("del"), eventual); err == nil && got.Meta.ServedBy == client.NearCacheServedBy && start.Sub(deleted) > 2500*time.Millisecond {
			t.Fatalf("del: the near cache served %q %v after the key was deleted", got.Value, start.Sub(deleted))
		}
		if got, err := cl.Get(ctx, []byte("ttl"), eventual); err == nil && got.Meta.ServedBy == client.NearCacheServedBy && !start.Before(e.ExpiresAt) {
			t.Fatalf("ttl: the near cache served %q %v after it expired", got.Value, start.Sub(e.ExpiresAt))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := cl.Counters().Near; n.Invalidations <= before {
		t.Errorf("near counters %+v: the delete invalidated nothing", n)
	}
}

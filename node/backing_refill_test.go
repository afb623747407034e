package node_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/elcache/elcache/node"
	"github.com/elcache/elcache/node/nodetest"
	cachev1 "github.com/elcache/elcache/proto/cache/v1"
	"github.com/elcache/elcache/storage/sqlstore"
)

// TestWriteAroundFillRace forces the race memcache leases fix: a refill
// loads the old row, a write-around then writes a new one, and only then
// does the refill try to store what it loaded. The fence refuses it, and
// the next read returns the new value. With the fence broken
// (Hooks.BreakRefillFence) the stale row is stored and read back
// while the database holds the new one: the race is real, and the switch
// breaks what it claims to.
func TestWriteAroundFillRace(t *testing.T) {
	for _, d := range databases(t) {
		t.Run(d.name, func(t *testing.T) {
			for _, tc := range []struct {
				name   string
				broken bool
			}{{"fenced", false}, {"broken", true}} {
				t.Run(tc.name, func(t *testing.T) { writeAroundFillRace(t, d, "k-"+tc.name, tc.broken) })
			}
		})
	}
}

func writeAroundFillRace(t *testing.T, d *database, key string, broken bool) {
	n := startWith(t, d)
	n.Hooks.BreakRefillFence(broken)
	cl := dial(t, n.Addr())
	if _, err := putMode(t, cl, key, "old", cachev1.WriteMode_WRITE_MODE_WRITE_AROUND); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	var newVersion uint64
	n.Hooks.SetFillHook(func([]byte) {
		once.Do(func() {
			resp, err := putMode(t, cl, key, "new", cachev1.WriteMode_WRITE_MODE_WRITE_AROUND)
			if err != nil {
				t.Errorf("write-around during the fill: %v", err)
				return
			}
			newVersion = resp.Version
		})
	})
	// This read loaded "old"; the write-around ran before its fill.
	first := getKey(t, cl, key)
	n.Hooks.SetFillHook(nil)
	if !first.Found || string(first.Entry.Value) != "old" {
		t.Fatalf("first read = %v, want the old row it loaded", first)
	}
	if row, _ := d.row(t, key); string(row.Value) != "new" || row.Version != newVersion {
		t.Fatalf("database row %+v, want new at %d", row, newVersion)
	}
	second := getKey(t, cl, key)
	if broken {
		if !second.Found || string(second.Entry.Value) != "old" || second.Entry.Version != first.Entry.Version {
			t.Fatalf("with the fence broken, the read after the write-around = %v, want the stale fill (old at version %d)",
				second, first.Entry.Version)
		}
		return
	}
	if !second.Found || string(second.Entry.Value) != "new" || second.Entry.Version != newVersion {
		t.Fatalf("read after the write-around = %v, want \"new\" at version %d: a stale fill won", second, newVersion)
	}
}

// TestRefillJoinedAfterWrite: a read that begins after a write-around was
// acknowledged, misses on its fence and joins a load that began before
// the write, must not get that load's old row (the fill is refused, and
// the read loads again). The fault suite found it: such a read returned
// the previous version, 2 ms after the newer one was acknowledged.
func TestRefillJoinedAfterWrite(t *testing.T) {
	for _, d := range databases(t) {
		t.Run(d.name, func(t *testing.T) {
			n := startWith(t, d)
			cl := dial(t, n.Addr())
			const key = "joined-late"
			if _, err := putMode(t, cl, key, "old", cachev1.WriteMode_WRITE_MODE_WRITE_AROUND); err != nil {
				t.Fatal(err)
			}
			misses := func() uint64 {
				st, err := cl.Stats(opCtx(t), &cachev1.StatsRequest{})
				if err != nil {
					t.Error(err)
					return 0
				}
				return st.Misses
			}
			var once sync.Once
			var newVersion uint64
			late := make(chan *cachev1.GetResponse, 1)
			n.Hooks.SetFillHook(func([]byte) {
				once.Do(func() {
					resp, err := putMode(t, cl, key, "new", cachev1.WriteMode_WRITE_MODE_WRITE_AROUND)
					if err != nil {
						t.Errorf("write-around during the load: %v", err)
						return
					}
					newVersion = resp.Version
					before := misses()
					go func() { late <- getKey(t, cl, key) }()
					waitFor(t, 5*time.Second, "the late read misses", func() bool { return misses() > before })
					// From its miss to joining the load is a few
					// instructions.
					time.Sleep(50 * time.Millisecond)
				})
			})
			first := getKey(t, cl, key)
			n.Hooks.SetFillHook(nil)
			if !first.Found || string(first.Entry.Value) != "old" {
				t.Fatalf("first read = %v, want the old row it loaded", first)
			}
			second := <-late
			if !second.Found || string(second.Entry.Value) != "new" || second.Entry.Version != newVersion {
				t.Fatalf("a read that began after the write-around (version %d) was acknowledged got %v: an old row from a load it joined",
					newVersion, second)
			}
		})
	}
}

// TestThunderingHerd: 1,000 concurrent reads of a key the cache does not
// hold cost the database one load, as PostgreSQL itself counts.
func TestThunderingHerd(t *testing.T) {
	d := databases(t)[1]
	if _, err := d.store.Write(context.Background(), []sqlstore.Row{{Key: []byte("hot"), Value: []byte("from-db"), Version: 7}}); err != nil {
		t.Fatal(err)
	}
	n := startWith(t, d)
	conns := make([]cachev1.CacheClient, 20)
	for i := range conns {
		conns[i] = dial(t, n.Addr())
	}
	before := d.pg.Calls(t, sqlstore.LoadMarker)
	var wg sync.WaitGroup
	errs := make(chan error, 1000)
	for i := range 1000 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := conns[i%len(conns)].Get(context.Background(), &cachev1.GetRequest{Key: []byte("hot")})
			if err == nil && (!r.Found || string(r.Entry.Value) != "from-db" || r.Entry.Version != 7) {
				err = fmt.Errorf("read %v", r)
			}
			if err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent miss: %v", err)
	}
	if loads := d.pg.Calls(t, sqlstore.LoadMarker) - before; loads != 1 {
		t.Fatalf("1,000 concurrent misses made %d database loads, want 1", loads)
	}
}

// TestNegativeCaching: with a negative TTL, a key the database does not
// have is remembered as absent: misses within the TTL cost no load.
func TestNegativeCaching(t *testing.T) {
	d := databases(t)[1]
	cl := dial(t, startWith(t, d, func(c *node.Config) { c.Backing.NegativeTTL = time.Minute }).Addr())
	before := d.pg.Calls(t, sqlstore.LoadMarker)
	for range 5 {
		if r := getKey(t, cl, "nowhere"); r.Found {
			t.Fatalf("get of a key the database lacks = %v", r)
		}
	}
	if loads := d.pg.Calls(t, sqlstore.LoadMarker) - before; loads != 1 {
		t.Fatalf("5 misses of an absent key made %d loads, want 1 (then negative hits)", loads)
	}
	// A write replaces the negative entry at once.
	if _, err := putMode(t, cl, "nowhere", "now", cachev1.WriteMode_WRITE_MODE_WRITE_THROUGH); err != nil {
		t.Fatal(err)
	}
	if r := getKey(t, cl, "nowhere"); !r.Found || string(r.Entry.Value) != "now" {
		t.Fatalf("get after the write = %v", r)
	}
}

// TestRefillLoaderKilled: the node loading a missing key dies in the middle
// of the load (after its database read, before the fill), with readers
// waiting for that load through the other nodes. The new leader takes the
// load over: every waiting reader gets the row, and the database saw
// exactly two loads, the dead node's and its successor's.
func TestRefillLoaderKilled(t *testing.T) {
	d := databases(t)[1]
	if _, err := d.store.Write(context.Background(), []sqlstore.Row{{Key: []byte("hot"), Value: []byte("from-db"), Version: 7}}); err != nil {
		t.Fatal(err)
	}
	c := nodetest.StartCluster(t, 3, func(_ int, cfg *node.Config) { cfg.Backend = d.url })
	loading := make(chan int, 1) // the index of the first loader
	release := make(chan struct{})
	var first sync.Once
	for i, h := range c.Hooks {
		h.SetFillHook(func([]byte) {
			mine := false
			first.Do(func() { mine = true })
			if mine {
				loading <- i
				<-release // never released before the node dies
			}
		})
	}
	t.Cleanup(func() { close(release) })
	before := d.pg.Calls(t, sqlstore.LoadMarker)

	type result struct {
		via int
		r   *cachev1.GetResponse
		err error
	}
	results := make(chan result, 64)
	read := func(via int) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		r, err := dial(t, c.Nodes[via].Addr()).Get(ctx, &cachev1.GetRequest{Key: []byte("hot")})
		results <- result{via, r, err}
	}
	go read(0)
	var loader int
	select {
	case loader = <-loading:
	case <-time.After(20 * time.Second):
		t.Fatal("no node started loading the missing key")
	}
	// Readers through the other nodes join the load in flight on the
	// loader (their nodes forward the miss to it).
	const waiting = 40
	others := []int{(loader + 1) % 3, (loader + 2) % 3}
	for i := range waiting {
		go read(others[i%2])
	}
	time.Sleep(300 * time.Millisecond) // let the readers reach the loader
	c.Kill(loader)

	served := 0
	for range waiting + 1 {
		res := <-results
		if res.via == loader {
			continue // its client was connected to the node that died
		}
		if res.err != nil {
			t.Errorf("read through n%d after the loader died: %v", res.via, res.err)
			continue
		}
		if !res.r.Found || string(res.r.Entry.Value) != "from-db" || res.r.Entry.Version != 7 {
			t.Errorf("read through n%d = %v, want from-db at version 7", res.via, res.r)
			continue
		}
		served++
	}
	if loads := d.pg.Calls(t, sqlstore.LoadMarker) - before; loads != 2 {
		t.Errorf("the database saw %d loads of the key, want 2 (the dead loader's and one by its successor)", loads)
	}
	t.Logf("loader n%d killed mid-load; %d waiting readers served by the new leader", loader, served)
}

package storage

import (
	"bytes"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
)

// getEntry reads key from p and fails the test on an error.
func getEntry(tb testing.TB, p *Partition, key string) (Entry, bool) {
	tb.Helper()
	e, ok, err := p.Get([]byte(key), 0)
	if err != nil {
		tb.Fatalf("Get(%s): %v", key, err)
	}
	return e, ok
}

// A load that read Pebble before a write committed must not cache what
// it read once the write has told the cache.
func TestRowCacheFillAfterWrite(t *testing.T) {
	c := newRowCache(1 << 20)
	key := []byte("k")
	if _, _, ok := c.get(key); ok {
		t.Fatal("hit in an empty cache")
	}
	_, gen, _ := c.get(key)
	c.written(key, []byte("new")) // committed after the load read Pebble
	c.fill(key, []byte("old"), gen)
	if raw, _, ok := c.get(key); ok {
		t.Fatalf("get = %q after a write the load missed; want a miss", raw)
	}
	// A load with no write since is kept.
	_, gen, _ = c.get(key)
	c.fill(key, []byte("v"), gen)
	if raw, _, ok := c.get(key); !ok || string(raw) != "v" {
		t.Fatalf("get = %q, %v; want v", raw, ok)
	}
	// A write of a key the cache holds replaces its value...
	c.written(key, []byte("w"))
	if raw, _, ok := c.get(key); !ok || string(raw) != "w" {
		t.Fatalf("get = %q, %v after a write; want w", raw, ok)
	}
	// ...a delete drops it, and a write does not add a key.
	c.written(key, nil)
	c.written([]byte("other"), []byte("x"))
	for _, k := range []string{"k", "other"} {
		if raw, _, ok := c.get([]byte(k)); ok {
			t.Fatalf("get(%s) = %q; want a miss", k, raw)
		}
	}
}

// Readers racing a writer never see a version older than the last one
// committed before their read began.
func TestRowCacheNeverStale(t *testing.T) {
	db := openMemDB(t)
	p := mustPartition(t, db, 3)
	const keys, writes = 4, 2000
	var committed [keys]atomic.Uint64
	var wg sync.WaitGroup
	done := make(chan struct{})
	errs := make(chan error, 4)
	for r := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-done:
					return
				default:
				}
				k := (i + r) % keys
				before := committed[k].Load()
				e, ok, err := p.Get([]byte(strconv.Itoa(k)), 0)
				if err != nil {
					errs <- err
					return
				}
				if before > 0 && (!ok || e.Version < before) {
					errs <- fmt.Errorf("key %d: read version %d (found %v) after version %d committed", k, e.Version, ok, before)
					return
				}
				if ok && string(e.Value) != strconv.FormatUint(e.Version, 10) {
					errs <- fmt.Errorf("key %d: version %d holds %q", k, e.Version, e.Value)
					return
				}
			}
		}()
	}
	for v := uint64(1); v <= writes; v++ {
		k := int(v) % keys
		commitPuts(t, p, v, ent(strconv.Itoa(k), strconv.FormatUint(v, 10), v))
		committed[k].Store(v)
	}
	close(done)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// Writes and deletes reach the cache; a restore and a dropped replica
// empty it.
func TestRowCacheFollowsWrites(t *testing.T) {
	db := openMemDB(t)
	p := mustPartition(t, db, 5)
	commitPuts(t, p, 1, ent("a", "1", 1))
	snap := writeSnapshot(t, p)
	if e, ok := getEntry(t, p, "a"); !ok || string(e.Value) != "1" {
		t.Fatalf("a = %q, %v", e.Value, ok)
	}
	commitPuts(t, p, 2, ent("a", "2", 2))
	if e, ok := getEntry(t, p, "a"); !ok || string(e.Value) != "2" {
		t.Fatalf("a = %q, %v after a write; want 2", e.Value, ok)
	}
	commitDeletes(t, p, 3, []byte("a"))
	if e, ok := getEntry(t, p, "a"); ok {
		t.Fatalf("a = %q after its delete", e.Value)
	}
	commitPuts(t, p, 4, ent("a", "4", 4), ent("b", "4", 4))
	getEntry(t, p, "b")
	if err := p.Restore(bytes.NewReader(snap)); err != nil {
		t.Fatal(err)
	}
	if e, ok := getEntry(t, p, "a"); !ok || string(e.Value) != "1" {
		t.Fatalf("a = %q, %v after the restore; want 1", e.Value, ok)
	}
	if e, ok := getEntry(t, p, "b"); ok {
		t.Fatalf("b = %q after a restore of a snapshot without it", e.Value)
	}
	if err := db.DropReplica(5, 5); err != nil {
		t.Fatal(err)
	}
	if e, ok := getEntry(t, mustPartition(t, db, 5), "a"); ok {
		t.Fatalf("a = %q after its replica was dropped", e.Value)
	}
}

// The cache stays within its bytes, and entries it evicted are read
// from Pebble.
func TestRowCacheBounded(t *testing.T) {
	db := openMemDB(t)
	p := mustPartition(t, db, 1)
	value := string(bytes.Repeat([]byte("v"), 200))
	const n = 20000
	for i := range n / 100 {
		es := make([]Entry, 100)
		for j := range es {
			es[j] = ent(fmt.Sprintf("key-%05d", i*100+j), value, uint64(i+1))
		}
		commitPuts(t, p, uint64(i+1), es...)
	}
	for i := range n {
		if e, ok := getEntry(t, p, fmt.Sprintf("key-%05d", i)); !ok || string(e.Value) != value {
			t.Fatalf("key-%05d = %d bytes, %v", i, len(e.Value), ok)
		}
	}
	st := db.RowCacheStats()
	if st.Bytes > db.cfg.RowCacheBytes || st.Entries == 0 || st.Entries >= n {
		t.Fatalf("row cache holds %d entries in %d bytes; want some of %d within %d", st.Entries, st.Bytes, n, db.cfg.RowCacheBytes)
	}
	if st.Hits+st.Misses != n || st.Misses == 0 {
		t.Fatalf("row cache answered %d hits and %d misses to %d reads of more than it holds", st.Hits, st.Misses, n)
	}
}

func BenchmarkPartitionGetHot(b *testing.B) {
	db := openMemDB(b)
	p := mustPartition(b, db, 1)
	es := make([]Entry, 1000)
	for i := range es {
		es[i] = ent(fmt.Sprintf("key-%04d", i), "value", 1)
	}
	commitPuts(b, p, 1, es...)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, ok, err := p.Get(es[i%len(es)].Key, 0); err != nil || !ok {
			b.Fatal(ok, err)
		}
	}
}

package storage

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// openMemDB opens a DB on a fresh in-memory filesystem, closed when the test
// ends.
func openMemDB(tb testing.TB) *DB {
	tb.Helper()
	return openDBOn(tb, vfs.NewMem())
}

// openDBOn opens the DB in "db" on fs, closed when the test ends.
func openDBOn(tb testing.TB, fs vfs.FS) *DB {
	tb.Helper()
	db, err := Open(Config{Dir: "db", FS: fs, BlockCacheBytes: 8 << 20})
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

// mustPartition opens partition id of db.
func mustPartition(tb testing.TB, db *DB, id uint32) *Partition {
	tb.Helper()
	p, err := db.Partition(id)
	if err != nil {
		tb.Fatalf("Partition(%d): %v", id, err)
	}
	return p
}

// ent returns a clean entry without expiry.
func ent(key, value string, version uint64) Entry {
	return Entry{Key: []byte(key), Value: []byte(value), Version: version, WrittenAt: 1000}
}

// commitPuts stores es in one batch committed at applied.
func commitPuts(tb testing.TB, p *Partition, applied uint64, es ...Entry) {
	tb.Helper()
	b := p.NewBatch()
	defer b.Close()
	for _, e := range es {
		if err := b.Put(e); err != nil {
			tb.Fatalf("Put(%q): %v", e.Key, err)
		}
	}
	if err := b.Commit(applied); err != nil {
		tb.Fatalf("Commit(%d): %v", applied, err)
	}
}

// commitDeletes deletes keys in one batch committed at applied.
func commitDeletes(tb testing.TB, p *Partition, applied uint64, keys ...[]byte) {
	tb.Helper()
	b := p.NewBatch()
	defer b.Close()
	for _, k := range keys {
		if _, _, err := b.Delete(k); err != nil {
			tb.Fatalf("Delete(%q): %v", k, err)
		}
	}
	if err := b.Commit(applied); err != nil {
		tb.Fatalf("Commit(%d): %v", applied, err)
	}
}

// scanAll returns every stored entry of p, expired ones included.
func scanAll(tb testing.TB, p *Partition) []Entry {
	tb.Helper()
	var out []Entry
	var after []byte
	for {
		es, more, err := p.Scan(ScanOptions{After: after, Limit: 1000})
		if err != nil {
			tb.Fatalf("Scan: %v", err)
		}
		out = append(out, es...)
		if !more || len(es) == 0 {
			return out
		}
		after = es[len(es)-1].Key
	}
}

// metaAll returns every metadata record of p but the state record.
func metaAll(tb testing.TB, p *Partition) [][2][]byte {
	tb.Helper()
	ms, err := p.MetaScan("", 1<<20)
	if err != nil {
		tb.Fatalf("MetaScan: %v", err)
	}
	return slices.DeleteFunc(ms, func(m [2][]byte) bool { return string(m[0]) == "state" })
}

func equalEntry(a, b Entry) bool {
	return bytes.Equal(a.Key, b.Key) && bytes.Equal(a.Value, b.Value) && a.Version == b.Version &&
		a.ExpireAt == b.ExpireAt && a.WrittenAt == b.WrittenAt && a.Flags == b.Flags
}

func equalEntries(a, b []Entry) bool {
	return slices.EqualFunc(a, b, equalEntry)
}

func keysOf(es []Entry) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = string(e.Key)
	}
	return out
}

// stateOf returns the State counting es, at applied.
func stateOf(applied uint64, es ...Entry) State {
	st := State{Applied: applied}
	for _, e := range es {
		st.Keys++
		st.Bytes += e.Size()
		if e.Dirty() {
			st.Dirty++
		}
		if e.ExpireAt != 0 {
			st.Expiring++
		}
	}
	return st
}

func TestBatchReadOwnWrites(t *testing.T) {
	p := mustPartition(t, openMemDB(t), 1)
	commitPuts(t, p, 1, ent("a", "committed", 1), ent("b", "committed", 1))

	b := p.NewBatch()
	defer b.Close()
	if err := b.Put(ent("a", "batch", 2)); err != nil {
		t.Fatal(err)
	}
	if err := b.Put(ent("c", "batch", 2)); err != nil {
		t.Fatal(err)
	}
	old, ok, err := b.Delete([]byte("b"))
	if err != nil || !ok || !equalEntry(old, ent("b", "committed", 1)) {
		t.Fatalf("Delete(b) = %+v, %v, %v; want the committed entry", old, ok, err)
	}
	if _, ok, err := b.Delete([]byte("missing")); err != nil || ok {
		t.Fatalf("Delete(missing) = %v, %v; want false, nil", ok, err)
	}

	tests := []struct {
		key        string
		batchWant  string // "" means absent
		outerWant  string
		outerFound bool
	}{
		{"a", "batch", "committed", true},
		{"b", "", "committed", true},
		{"c", "batch", "", false},
		{"missing", "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			e, ok, err := b.Get([]byte(tt.key))
			if err != nil {
				t.Fatal(err)
			}
			if ok != (tt.batchWant != "") || string(e.Value) != tt.batchWant {
				t.Errorf("batch Get = %q, %v; want %q", e.Value, ok, tt.batchWant)
			}
			// The batch is invisible to the partition until it commits.
			e, ok, err = p.Get([]byte(tt.key), 0)
			if err != nil {
				t.Fatal(err)
			}
			if ok != tt.outerFound || string(e.Value) != tt.outerWant {
				t.Errorf("partition Get = %q, %v; want %q, %v", e.Value, ok, tt.outerWant, tt.outerFound)
			}
		})
	}

	if err := b.Commit(2); err != nil {
		t.Fatal(err)
	}
	got := keysOf(scanAll(t, p))
	if want := []string{"a", "c"}; !slices.Equal(got, want) {
		t.Fatalf("after commit keys = %q, want %q", got, want)
	}
}

func TestPartitionStateCounters(t *testing.T) {
	dirty := func(e Entry) Entry { e.Flags |= FlagDirty; return e }
	type op struct {
		del bool
		e   Entry // for a delete only the key counts
	}
	put := func(e Entry) op { return op{e: e} }
	del := func(key string) op { return op{del: true, e: Entry{Key: []byte(key)}} }
	tests := []struct {
		name string
		// batches run in order, each committed at its position + 1.
		batches [][]op
		want    []Entry // entries stored at the end
	}{
		{"empty", nil, nil},
		{"one put", [][]op{{put(ent("a", "1", 1))}}, []Entry{ent("a", "1", 1)}},
		{"dirty put", [][]op{{put(dirty(ent("a", "1", 1)))}}, []Entry{dirty(ent("a", "1", 1))}},
		{
			"overwrite grows value",
			[][]op{{put(ent("a", "1", 1))}, {put(ent("a", "longer value", 2))}},
			[]Entry{ent("a", "longer value", 2)},
		},
		{
			"overwrite in one batch",
			[][]op{{put(ent("a", "1", 1)), put(ent("a", "22", 1)), put(ent("b", "333", 1))}},
			[]Entry{ent("a", "22", 1), ent("b", "333", 1)},
		},
		{
			"clean overwrites dirty",
			[][]op{{put(dirty(ent("a", "1", 1))), put(dirty(ent("b", "1", 1)))}, {put(ent("a", "1", 2))}},
			[]Entry{ent("a", "1", 2), dirty(ent("b", "1", 1))},
		},
		{
			"dirty overwrites clean",
			[][]op{{put(ent("a", "1", 1))}, {put(dirty(ent("a", "2", 2)))}},
			[]Entry{dirty(ent("a", "2", 2))},
		},
		{
			"delete",
			[][]op{{put(ent("a", "1", 1)), put(dirty(ent("b", "2", 1)))}, {del("b")}},
			[]Entry{ent("a", "1", 1)},
		},
		{"delete absent", [][]op{{put(ent("a", "1", 1))}, {del("zz")}}, []Entry{ent("a", "1", 1)}},
		{"put then delete in one batch", [][]op{{put(dirty(ent("a", "1", 1))), del("a")}}, nil},
		{
			"delete everything",
			[][]op{{put(ent("a", "1", 1)), put(dirty(ent("b", "2", 1)))}, {del("a"), del("b")}},
			nil,
		},
		{
			"expired entries still count",
			[][]op{{put(Entry{Key: []byte("x"), Value: []byte("v"), ExpireAt: 1, Version: 1})}},
			[]Entry{{Key: []byte("x"), Value: []byte("v"), ExpireAt: 1, Version: 1}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := vfs.NewMem()
			db := openDBOn(t, fs)
			p := mustPartition(t, db, 3)
			for i, ops := range tt.batches {
				b := p.NewBatch()
				for _, o := range ops {
					var err error
					if o.del {
						_, _, err = b.Delete(o.e.Key)
					} else {
						err = b.Put(o.e)
					}
					if err != nil {
						t.Fatal(err)
					}
				}
				if err := b.Commit(uint64(i + 1)); err != nil {
					t.Fatal(err)
				}
				b.Close()
			}
			want := stateOf(uint64(len(tt.batches)), tt.want...)
			if got := p.State(); got != want {
				t.Errorf("State = %+v, want %+v", got, want)
			}
			if got := scanAll(t, p); !equalEntries(got, tt.want) {
				t.Errorf("entries = %+v, want %+v", got, tt.want)
			}
			// The state is durable: a reopened DB loads the same.
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			p2 := mustPartition(t, openDBOn(t, fs), 3)
			if got := p2.State(); got != want {
				t.Errorf("reopened State = %+v, want %+v", got, want)
			}
			if got := scanAll(t, p2); !equalEntries(got, tt.want) {
				t.Errorf("reopened entries = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestBatchDiscarded(t *testing.T) {
	fs := vfs.NewMem()
	db := openDBOn(t, fs)
	p := mustPartition(t, db, 1)
	commitPuts(t, p, 5, ent("keep", "v", 5))
	before := p.State()

	b := p.NewBatch()
	if err := b.Put(ent("gone", "v", 6)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.Delete([]byte("keep")); err != nil {
		t.Fatal(err)
	}
	if err := b.PutMeta("gone", []byte("m")); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	check := func(t *testing.T, p *Partition) {
		t.Helper()
		if got := p.State(); got != before {
			t.Errorf("State = %+v, want %+v", got, before)
		}
		if got := scanAll(t, p); !equalEntries(got, []Entry{ent("keep", "v", 5)}) {
			t.Errorf("entries = %+v", got)
		}
		b := p.NewBatch()
		defer b.Close()
		if _, ok, err := b.GetMeta("gone"); err != nil || ok {
			t.Errorf("GetMeta(gone) = %v, %v; want absent", ok, err)
		}
	}
	check(t, p)
	// A later batch starts from the committed state, not the discarded one.
	commitPuts(t, p, 6, ent("next", "v", 6))
	before = stateOf(6, ent("keep", "v", 5), ent("next", "v", 6))
	if got := p.State(); got != before {
		t.Fatalf("State after next commit = %+v, want %+v", got, before)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	p = mustPartition(t, openDBOn(t, fs), 1)
	if got := p.State(); got != before {
		t.Fatalf("reopened State = %+v, want %+v", got, before)
	}
}

func TestPartitionGetExpiry(t *testing.T) {
	const now = 1_000_000
	p := mustPartition(t, openMemDB(t), 1)
	tests := []struct {
		name     string
		expireAt int64
		flags    uint8
		visible  bool
	}{
		{"no expiry", 0, 0, true},
		{"expires later", now + 1, 0, true},
		{"expires now", now, 0, false},
		{"expired", now - 1, 0, false},
		{"expired long ago", 1, 0, false},
		{"expired dirty", now - 1, FlagDirty, false},
	}
	var es []Entry
	for _, tt := range tests {
		es = append(es, Entry{Key: []byte(tt.name), Value: []byte("v"), Version: 1, ExpireAt: tt.expireAt, Flags: tt.flags})
	}
	commitPuts(t, p, 1, es...)
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, ok, err := p.Get([]byte(tt.name), now)
			if err != nil {
				t.Fatal(err)
			}
			if ok != tt.visible {
				t.Fatalf("Get found = %v, want %v", ok, tt.visible)
			}
			if ok && !equalEntry(e, es[i]) {
				t.Fatalf("Get = %+v, want %+v", e, es[i])
			}
			// The batch sees stored entries, expired or not.
			b := p.NewBatch()
			defer b.Close()
			if e, ok, err := b.Get([]byte(tt.name)); err != nil || !ok || !equalEntry(e, es[i]) {
				t.Fatalf("batch Get = %+v, %v, %v; want %+v", e, ok, err, es[i])
			}
		})
	}
}

func TestPartitionScan(t *testing.T) {
	const now = 500
	p := mustPartition(t, openMemDB(t), 9)
	// Another partition's keys must never show up.
	commitPuts(t, mustPartition(t, p.db, 10), 1, ent("a/0", "other", 1), ent("zz", "other", 1))
	var es []Entry
	for _, k := range []string{"b/2", "a/1", "c", "a/3", "b/1", "a/2", "b", "\x00", "\xff\xff"} {
		es = append(es, ent(k, "value-"+k, 1))
	}
	es = append(es,
		Entry{Key: []byte("a/expired"), Value: []byte("v"), ExpireAt: now},
		Entry{Key: []byte("b/expired"), Value: []byte("v"), ExpireAt: 1, Flags: FlagDirty},
		Entry{Key: []byte("a/later"), Value: []byte("v"), ExpireAt: now + 1},
	)
	commitPuts(t, p, 1, es...)

	tests := []struct {
		name     string
		opts     ScanOptions
		want     []string
		wantMore bool
	}{
		{"all live in order", ScanOptions{Limit: 100, Now: now},
			[]string{"\x00", "a/1", "a/2", "a/3", "a/later", "b", "b/1", "b/2", "c", "\xff\xff"}, false},
		{"now zero shows all", ScanOptions{Limit: 100},
			[]string{"\x00", "a/1", "a/2", "a/3", "a/expired", "a/later", "b", "b/1", "b/2", "b/expired", "c", "\xff\xff"}, false},
		{"limit", ScanOptions{Limit: 3, Now: now}, []string{"\x00", "a/1", "a/2"}, true},
		{"limit equals count", ScanOptions{Limit: 10, Now: now},
			[]string{"\x00", "a/1", "a/2", "a/3", "a/later", "b", "b/1", "b/2", "c", "\xff\xff"}, false},
		{"prefix", ScanOptions{Prefix: []byte("a/"), Limit: 100, Now: now}, []string{"a/1", "a/2", "a/3", "a/later"}, false},
		{"prefix limit", ScanOptions{Prefix: []byte("b"), Limit: 2, Now: now}, []string{"b", "b/1"}, true},
		{"prefix 0xff", ScanOptions{Prefix: []byte{0xff}, Limit: 100, Now: now}, []string{"\xff\xff"}, false},
		{"prefix matches nothing", ScanOptions{Prefix: []byte("q"), Limit: 100, Now: now}, nil, false},
		{"after", ScanOptions{After: []byte("b"), Limit: 100, Now: now}, []string{"b/1", "b/2", "c", "\xff\xff"}, false},
		{"after absent key", ScanOptions{After: []byte("a/25"), Limit: 2, Now: now}, []string{"a/3", "a/later"}, true},
		{"after empty key", ScanOptions{After: []byte{}, Limit: 2, Now: now}, []string{"\x00", "a/1"}, true},
		{"after last", ScanOptions{After: []byte("\xff\xff"), Limit: 100, Now: now}, nil, false},
		{"after and prefix", ScanOptions{After: []byte("a/2"), Prefix: []byte("a/"), Limit: 100, Now: now}, []string{"a/3", "a/later"}, false},
		{"after before prefix", ScanOptions{After: []byte("0"), Prefix: []byte("a/"), Limit: 1, Now: now}, []string{"a/1"}, true},
		{"after past prefix", ScanOptions{After: []byte("b/0"), Prefix: []byte("a/"), Limit: 100, Now: now}, nil, false},
		{"keys only", ScanOptions{Prefix: []byte("c"), KeysOnly: true, Limit: 100, Now: now}, []string{"c"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, more, err := p.Scan(tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(keysOf(got), tt.want) || more != tt.wantMore {
				t.Fatalf("Scan = %q, more %v; want %q, more %v", keysOf(got), more, tt.want, tt.wantMore)
			}
			for _, e := range got {
				if tt.opts.KeysOnly {
					if e.Value != nil {
						t.Errorf("KeysOnly returned value %q for %q", e.Value, e.Key)
					}
					continue
				}
				i := slices.IndexFunc(es, func(s Entry) bool { return bytes.Equal(s.Key, e.Key) })
				if !equalEntry(e, es[i]) {
					t.Errorf("Scan entry = %+v, want %+v", e, es[i])
				}
			}
		})
	}
}

func TestPartitionScanLimit(t *testing.T) {
	p := mustPartition(t, openMemDB(t), 1)
	commitPuts(t, p, 1, ent("a", "v", 1))
	for _, limit := range []int{0, -1} {
		t.Run(fmt.Sprint(limit), func(t *testing.T) {
			if _, _, err := p.Scan(ScanOptions{Limit: limit}); err == nil {
				t.Fatalf("Scan(Limit %d) succeeded, want an error", limit)
			}
		})
	}
}

func TestPartitionScanPaging(t *testing.T) {
	const now = 1 << 40
	p := mustPartition(t, openMemDB(t), 2)
	commitPuts(t, mustPartition(t, p.db, 3), 1, ent("k00000", "other", 1))
	var want []string
	var es []Entry
	for i := range 1000 {
		e := ent(fmt.Sprintf("k%05d", i), "v", 1)
		if i%10 == 3 {
			e.ExpireAt = now - 1 // hidden, but still stored between pages
		} else {
			want = append(want, string(e.Key))
		}
		es = append(es, e)
	}
	commitPuts(t, p, 1, es...)
	for _, limit := range []int{1, 7, 100, 899, 900, 5000} {
		t.Run(fmt.Sprint(limit), func(t *testing.T) {
			var got []string
			var after []byte
			for pages := 0; ; pages++ {
				if pages > len(want)+1 {
					t.Fatal("paging does not end")
				}
				es, more, err := p.Scan(ScanOptions{After: after, Limit: limit, Now: now})
				if err != nil {
					t.Fatal(err)
				}
				if len(es) > limit {
					t.Fatalf("page of %d entries, limit %d", len(es), limit)
				}
				got = append(got, keysOf(es)...)
				if !more {
					break
				}
				if len(es) == 0 {
					t.Fatal("empty page with more")
				}
				after = es[len(es)-1].Key
			}
			if !slices.Equal(got, want) {
				t.Fatalf("paged %d keys, want %d; first differences: %v", len(got), len(want), firstDiff(got, want))
			}
		})
	}
}

func firstDiff(a, b []string) string {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return fmt.Sprintf("at %d: %q vs %q", i, a[i], b[i])
		}
	}
	return fmt.Sprintf("lengths %d vs %d", len(a), len(b))
}

func TestPartitionIsolation(t *testing.T) {
	tests := []struct {
		name string
		a, b uint32
	}{
		{"0 and 1", 0, 1},
		{"1 and 0", 1, 0},
		{"0 and max", 0, 0xffffffff},
		{"max-1 and max", 0xfffffffe, 0xffffffff},
		{"max and max-1", 0xffffffff, 0xfffffffe},
		{"0xff and 0x100", 0xff, 0x100},
		{"0x00ffffff and 0x01000000", 0x00ffffff, 0x01000000},
	}
	// Keys that could confuse a variable-width or unbounded prefix, in
	// byte order.
	keys := [][]byte{{}, {0}, {0, 0, 0, 1}, []byte("k"), {0xff}, {0xff, 0xff, 0xff, 0xff, 0xff}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := openMemDB(t)
			pa, pb := mustPartition(t, db, tt.a), mustPartition(t, db, tt.b)
			fill := func(p *Partition, tag string) []Entry {
				var es []Entry
				for i, k := range keys {
					e := ent(string(k), tag, 1)
					if i == 1 {
						e.ExpireAt = 1
					}
					es = append(es, e)
				}
				commitPuts(t, p, 1, es...)
				b := p.NewBatch()
				defer b.Close()
				if err := b.PutMeta("m", []byte(tag)); err != nil {
					t.Fatal(err)
				}
				if err := b.Commit(2); err != nil {
					t.Fatal(err)
				}
				return es
			}
			esa := fill(pa, "a")
			esb := fill(pb, "b")
			// Deleting a key from b leaves a's copy alone.
			commitDeletes(t, pb, 3, []byte("k"))
			esb = slices.DeleteFunc(esb, func(e Entry) bool { return string(e.Key) == "k" })

			for _, c := range []struct {
				p   *Partition
				tag string
				es  []Entry
			}{{pa, "a", esa}, {pb, "b", esb}} {
				if got := scanAll(t, c.p); !equalEntries(got, c.es) {
					t.Errorf("partition %d entries = %+v, want %+v", c.p.ID(), got, c.es)
				}
				for _, e := range c.es {
					got, ok, err := c.p.Get(e.Key, 0)
					if err != nil || !ok || !equalEntry(got, e) {
						t.Errorf("partition %d Get(%x) = %+v, %v, %v", c.p.ID(), e.Key, got, ok, err)
					}
				}
				sample, err := c.p.Sample(rand.New(rand.NewPCG(1, 2)), 100)
				if err != nil {
					t.Fatal(err)
				}
				for _, e := range sample {
					if string(e.Value) != c.tag {
						t.Errorf("partition %d Sample returned %+v", c.p.ID(), e)
					}
				}
				exp, _, err := c.p.Expired(nil, 10, 100)
				if err != nil {
					t.Fatal(err)
				}
				if len(exp) != 1 || !bytes.Equal(exp[0].Key, []byte{0}) {
					t.Errorf("partition %d Expired = %+v, want key 00 only", c.p.ID(), exp)
				}
				ms, err := c.p.MetaScan("m", 10)
				if err != nil {
					t.Fatal(err)
				}
				if len(ms) != 1 || string(ms[0][1]) != c.tag {
					t.Errorf("partition %d MetaScan = %q", c.p.ID(), ms)
				}
				if want := stateOf(c.p.State().Applied, c.es...); c.p.State() != want {
					t.Errorf("partition %d State = %+v, want %+v", c.p.ID(), c.p.State(), want)
				}
			}
		})
	}
}

func TestPartitionSample(t *testing.T) {
	db := openMemDB(t)
	p, other := mustPartition(t, db, 4), mustPartition(t, db, 5)
	live := map[string]Entry{}
	var es, dels []Entry
	for i := range 300 {
		e := ent(fmt.Sprintf("key-%04d", i), fmt.Sprintf("p4-%d", i), uint64(i+1))
		es = append(es, e)
		if i%3 == 0 {
			dels = append(dels, e)
		} else {
			live[string(e.Key)] = e
		}
	}
	commitPuts(t, p, 1, es...)
	for i := range es {
		es[i].Value = []byte("p5")
	}
	commitPuts(t, other, 1, es...)
	var delKeys [][]byte
	for _, e := range dels {
		delKeys = append(delKeys, e.Key)
	}
	commitDeletes(t, p, 2, delKeys...)

	for _, n := range []int{0, 1, 3, 10, 50, 200, 1000} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			for seed := range uint64(20) {
				got, err := p.Sample(rand.New(rand.NewPCG(seed, 99)), n)
				if err != nil {
					t.Fatal(err)
				}
				if len(got) > n {
					t.Fatalf("seed %d: %d entries, want at most %d", seed, len(got), n)
				}
				if n > 0 && len(got) == 0 {
					t.Fatalf("seed %d: no entries", seed)
				}
				seen := map[string]bool{}
				for _, e := range got {
					if seen[string(e.Key)] {
						t.Fatalf("seed %d: %q sampled twice", seed, e.Key)
					}
					seen[string(e.Key)] = true
					want, ok := live[string(e.Key)]
					if !ok || !equalEntry(e, want) {
						t.Fatalf("seed %d: sampled %+v, not a live entry of the partition", seed, e)
					}
				}
			}
		})
	}
	t.Run("empty partition", func(t *testing.T) {
		got, err := mustPartition(t, db, 6).Sample(rand.New(rand.NewPCG(1, 1)), 10)
		if err != nil || len(got) != 0 {
			t.Fatalf("Sample = %+v, %v; want nothing", got, err)
		}
	})
}

// TestPartitionSampleSpread checks that samples come from all over the
// partition for keys sharing leading bytes, as real keys do, and that a
// sample holds about n entries.
func TestPartitionSampleSpread(t *testing.T) {
	const keys, calls, n = 1000, 200, 16
	tests := []struct {
		name string
		key  func(i int, rng *rand.Rand) []byte
	}{
		{"padded decimal", func(i int, _ *rand.Rand) []byte { return fmt.Appendf(nil, "key-%04d", i) }},
		{"hex", func(i int, _ *rand.Rand) []byte { return fmt.Appendf(nil, "user:%08x", i) }},
		{"decimal", func(i int, _ *rand.Rand) []byte { return fmt.Append(nil, i) }},
		{"random binary", func(_ int, rng *rand.Rand) []byte { return binary.BigEndian.AppendUint64(nil, rng.Uint64()) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustPartition(t, openMemDB(t), 1)
			rng := rand.New(rand.NewPCG(7, 7))
			var es []Entry
			for i := range keys {
				es = append(es, Entry{Key: tt.key(i, rng), Value: []byte("v")})
			}
			commitPuts(t, p, 1, es...)
			counts := map[string]int{}
			total := 0
			for range calls {
				got, err := p.Sample(rng, n)
				if err != nil {
					t.Fatal(err)
				}
				total += len(got)
				for _, e := range got {
					counts[string(e.Key)]++
				}
			}
			if mean := float64(total) / calls; mean < 0.9*n {
				t.Errorf("mean sample size %.1f, want about %d", mean, n)
			}
			if len(counts) < keys/4 {
				t.Errorf("%d calls sampled only %d distinct keys of %d", calls, len(counts), keys)
			}
			for k, c := range counts {
				if c > total/10 {
					t.Errorf("key %q is %d of %d samples", k, c, total)
				}
			}
		})
	}
}

func TestPartitionExpired(t *testing.T) {
	const now = 10_000
	db := openMemDB(t)
	p := mustPartition(t, db, 7)
	// The neighbours hold expired entries that must never be returned.
	for _, id := range []uint32{6, 8} {
		commitPuts(t, mustPartition(t, db, id), 1, Entry{Key: []byte("k0000"), ExpireAt: 1}, Entry{Key: []byte("zzz"), ExpireAt: 1})
	}
	var es []Entry
	var want []string
	for i := range 100 {
		e := ent(fmt.Sprintf("k%04d", i), "v", 1)
		switch i % 5 {
		case 0: // no expiry
		case 1: // expired
			e.ExpireAt = now - int64(i)
			want = append(want, string(e.Key))
		case 2: // expired but dirty: kept until flushed
			e.ExpireAt = now - 1
			e.Flags = FlagDirty
		case 3: // expires exactly now
			e.ExpireAt = now
			want = append(want, string(e.Key))
		case 4: // expires later
			e.ExpireAt = now + 1
		}
		es = append(es, e)
	}
	commitPuts(t, p, 1, es...)

	tests := []struct {
		name   string
		budget int
		delete bool // delete what each call returns, as the expiry loop does
	}{
		{"budget 1", 1, false},
		{"budget 7", 7, false},
		{"budget 7 deleting", 7, true},
		{"budget 99", 99, false},
		{"budget 100", 100, false},
		{"budget 1000", 1000, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := openMemDB(t)
			p := mustPartition(t, db, 7)
			commitPuts(t, p, 1, es...)
			var got []string
			var cursor []byte
			calls := 0
			for {
				calls++
				if calls > 200 {
					t.Fatal("walk does not end")
				}
				out, next, err := p.Expired(cursor, now, tt.budget)
				if err != nil {
					t.Fatal(err)
				}
				if len(out) > tt.budget {
					t.Fatalf("%d entries from a budget of %d", len(out), tt.budget)
				}
				var keys [][]byte
				for _, e := range out {
					if !e.Expired(now) || e.Dirty() {
						t.Fatalf("returned %+v, which is not expired and clean", e)
					}
					got = append(got, string(e.Key))
					keys = append(keys, e.Key)
				}
				if tt.delete && len(keys) > 0 {
					commitDeletes(t, p, uint64(calls+1), keys...)
				}
				if next == nil {
					break
				}
				cursor = next
			}
			if wantCalls := (len(es) + tt.budget - 1) / tt.budget; !tt.delete && calls > wantCalls+1 {
				t.Errorf("%d calls, want at most %d", calls, wantCalls+1)
			}
			if !slices.Equal(got, want) {
				t.Fatalf("expired = %q, want %q", got, want)
			}
			if tt.delete {
				// A second walk finds nothing left.
				if out, next, err := p.Expired(nil, now, 1000); err != nil || len(out) != 0 || next != nil {
					t.Fatalf("second walk = %+v, %q, %v", out, next, err)
				}
				if got := p.State(); got.Keys != uint64(len(es)-len(want)) {
					t.Fatalf("Keys = %d after deleting expired, want %d", got.Keys, len(es)-len(want))
				}
			}
		})
	}
	t.Run("empty partition", func(t *testing.T) {
		out, next, err := mustPartition(t, db, 100).Expired(nil, now, 10)
		if err != nil || len(out) != 0 || next != nil {
			t.Fatalf("Expired = %+v, %q, %v; want nothing", out, next, err)
		}
	})
}

func TestPartitionMeta(t *testing.T) {
	fs := vfs.NewMem()
	db := openDBOn(t, fs)
	p := mustPartition(t, db, 1)
	b := p.NewBatch()
	for _, kv := range [][2]string{{"cfg/b", "2"}, {"cfg/a", "1"}, {"cfg/c", "3"}, {"other", "x"}, {"cfg/empty", ""}} {
		if err := b.PutMeta(kv[0], []byte(kv[1])); err != nil {
			t.Fatal(err)
		}
	}
	// Read your own batch.
	if v, ok, err := b.GetMeta("cfg/b"); err != nil || !ok || string(v) != "2" {
		t.Fatalf("batch GetMeta(cfg/b) = %q, %v, %v", v, ok, err)
	}
	if err := b.DeleteMeta("other"); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := b.GetMeta("other"); err != nil || ok {
		t.Fatalf("GetMeta after DeleteMeta = %v, %v", ok, err)
	}
	// Not visible before commit.
	if ms, err := p.MetaScan("cfg/", 10); err != nil || len(ms) != 0 {
		t.Fatalf("MetaScan before commit = %q, %v", ms, err)
	}
	if err := b.Commit(1); err != nil {
		t.Fatal(err)
	}
	b.Close()

	tests := []struct {
		name   string
		prefix string
		limit  int
		want   []string // name=value
	}{
		{"prefix", "cfg/", 10, []string{"cfg/a=1", "cfg/b=2", "cfg/c=3", "cfg/empty="}},
		{"limit", "cfg/", 2, []string{"cfg/a=1", "cfg/b=2"}},
		{"zero limit", "cfg/", 0, nil},
		{"exact name", "cfg/c", 10, []string{"cfg/c=3"}},
		{"deleted", "other", 10, nil},
		{"no match", "zzz", 10, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ms, err := p.MetaScan(tt.prefix, tt.limit)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, m := range ms {
				got = append(got, string(m[0])+"="+string(m[1]))
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("MetaScan(%q, %d) = %q, want %q", tt.prefix, tt.limit, got, tt.want)
			}
		})
	}

	// Meta records do not count as entries, and survive a reopen.
	if got := p.State(); got != (State{Applied: 1}) {
		t.Fatalf("State = %+v, want only Applied 1", got)
	}
	b = p.NewBatch()
	if err := b.DeleteMeta("cfg/a"); err != nil {
		t.Fatal(err)
	}
	if err := b.PutMeta("cfg/b", []byte("22")); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(2); err != nil {
		t.Fatal(err)
	}
	b.Close()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	p = mustPartition(t, openDBOn(t, fs), 1)
	b = p.NewBatch()
	defer b.Close()
	for _, c := range []struct {
		name, want string
		ok         bool
	}{{"cfg/a", "", false}, {"cfg/b", "22", true}, {"cfg/c", "3", true}, {"cfg/empty", "", true}} {
		v, ok, err := b.GetMeta(c.name)
		if err != nil || ok != c.ok || string(v) != c.want {
			t.Errorf("reopened GetMeta(%q) = %q, %v, %v; want %q, %v", c.name, v, ok, err, c.want, c.ok)
		}
	}
}

// TestPartitionModel applies random batches of puts and deletes, some
// discarded, and compares contents and counters with a map after each.
func TestPartitionModel(t *testing.T) {
	for seed := range uint64(8) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 0x5eed))
			fs := vfs.NewMem()
			db := openDBOn(t, fs)
			p := mustPartition(t, db, uint32(rng.Uint32()))
			// A neighbour with the same keys must not interfere.
			neighbour := mustPartition(t, db, p.ID()+1)
			model := map[string]Entry{}
			var applied uint64
			for round := range 60 {
				work := maps.Clone(model)
				b := p.NewBatch()
				for range rng.IntN(20) + 1 {
					key := fmt.Sprintf("k%02d", rng.IntN(40))
					if rng.IntN(3) == 0 {
						old, ok, err := b.Delete([]byte(key))
						if err != nil {
							t.Fatal(err)
						}
						want, wok := work[key]
						if ok != wok || (ok && !equalEntry(old, want)) {
							t.Fatalf("round %d: Delete(%s) = %+v, %v; model %+v, %v", round, key, old, ok, want, wok)
						}
						delete(work, key)
						continue
					}
					e := Entry{
						Key:       []byte(key),
						Value:     bytes.Repeat([]byte{byte(rng.IntN(256))}, rng.IntN(50)),
						Version:   applied + 1,
						WrittenAt: rng.Int64N(1 << 40),
					}
					if rng.IntN(4) == 0 {
						e.Flags = FlagDirty
					}
					if rng.IntN(4) == 0 {
						e.ExpireAt = rng.Int64N(100) + 1
					}
					if err := b.Put(e); err != nil {
						t.Fatal(err)
					}
					work[key] = e
					if got, ok, err := b.Get(e.Key); err != nil || !ok || !equalEntry(got, e) {
						t.Fatalf("round %d: batch Get(%s) = %+v, %v, %v; want %+v", round, key, got, ok, err, e)
					}
				}
				if rng.IntN(5) == 0 {
					if err := b.Close(); err != nil {
						t.Fatal(err)
					}
				} else {
					applied++
					if err := b.Commit(applied); err != nil {
						t.Fatal(err)
					}
					b.Close()
					model = work
				}
				if round%10 == 0 {
					commitPuts(t, neighbour, uint64(round+1), ent(fmt.Sprintf("k%02d", rng.IntN(40)), "n", 1))
				}
				checkModel(t, p, model, applied)
			}
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			checkModel(t, mustPartition(t, openDBOn(t, fs), p.ID()), model, applied)
		})
	}
}

func checkModel(t *testing.T, p *Partition, model map[string]Entry, applied uint64) {
	t.Helper()
	want := make([]Entry, 0, len(model))
	for _, e := range model {
		want = append(want, e)
	}
	sort.Slice(want, func(i, j int) bool { return bytes.Compare(want[i].Key, want[j].Key) < 0 })
	if got := p.State(); got != stateOf(applied, want...) {
		t.Fatalf("State = %+v, model %+v", got, stateOf(applied, want...))
	}
	if got := scanAll(t, p); !equalEntries(got, want) {
		t.Fatalf("entries = %+v\nmodel %+v", got, want)
	}
	const now = 50
	for _, e := range want {
		got, ok, err := p.Get(e.Key, now)
		if err != nil || ok == e.Expired(now) || (ok && !equalEntry(got, e)) {
			t.Fatalf("Get(%s) = %+v, %v, %v; model %+v", e.Key, got, ok, err, e)
		}
	}
}

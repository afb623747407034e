package storage

import (
	"bytes"
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

// openDBOn opens the DB in "db" on fs, closed when the test ends, with a
// row cache, so that every test reads through it.
func openDBOn(tb testing.TB, fs vfs.FS) *DB {
	tb.Helper()
	db, err := Open(Config{Dir: "db", FS: fs, BlockCacheBytes: 8 << 20, RowCacheBytes: 2 << 20})
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

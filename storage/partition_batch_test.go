package storage

import (
	"slices"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// Batches: reads of a batch's own writes, the counters of the partition's
// state, and discarded batches.

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

package storage

import (
	"bytes"
	"testing"
)

// TestTombstonesAndDirtyIndex: tombstones are invisible to reads and scans
// and are not counted as keys; the dirty index follows every commit and is
// rebuilt from the entries when the partition is opened again and after a
// snapshot restore.
func TestTombstonesAndDirtyIndex(t *testing.T) {
	db := openMemDB(t)
	p := mustPartition(t, db, 3)
	b := p.NewBatch()
	for i, e := range []Entry{
		{Key: []byte("live"), Value: []byte("v"), Version: 1},
		{Key: []byte("dirty"), Value: []byte("d"), Version: 2, Flags: FlagDirty},
		{Key: []byte("gone"), Version: 3, Flags: FlagTombstone, ExpireAt: 100},
		{Key: []byte("dirtygone"), Version: 4, Flags: FlagTombstone | FlagDirty},
	} {
		if err := b.Put(e); err != nil {
			t.Fatalf("put %d: %v", i, err)
		}
	}
	if err := b.Commit(4); err != nil {
		t.Fatal(err)
	}
	b.Close()
	if st := p.State(); st.Keys != 2 || st.Dirty != 2 || st.Expiring != 1 {
		t.Fatalf("state %+v: want 2 keys (tombstones not counted), 2 dirty, 1 expiring", st)
	}
	for _, k := range []string{"gone", "dirtygone"} {
		if _, ok, err := p.Get([]byte(k), 0); ok || err != nil {
			t.Errorf("Get(%s) = found %v, %v; a tombstone reads as absent", k, ok, err)
		}
		if e, ok, err := p.Lookup([]byte(k)); !ok || err != nil || !e.Tombstone() {
			t.Errorf("Lookup(%s) = %+v, %v, %v; want the tombstone", k, e, ok, err)
		}
	}
	es, _, err := p.Scan(ScanOptions{Limit: 10})
	if err != nil || len(es) != 2 {
		t.Fatalf("scan = %d entries, %v; want the 2 live ones", len(es), err)
	}
	want := []DirtyKey{{Key: []byte("dirty"), Version: 2}, {Key: []byte("dirtygone"), Version: 4}}
	check := func(when string, p *Partition, want []DirtyKey) {
		t.Helper()
		got := p.Dirty(10)
		if len(got) != len(want) {
			t.Fatalf("%s: Dirty = %v, want %v", when, got, want)
		}
		for i := range want {
			if !bytes.Equal(got[i].Key, want[i].Key) || got[i].Version != want[i].Version {
				t.Fatalf("%s: Dirty = %v, want %v", when, got, want)
			}
		}
	}
	check("after commit", p, want)
	check("reopened", mustPartition(t, db, 3), want)

	// Cleaning one and deleting the other empties the index.
	b = p.NewBatch()
	if err := b.Put(Entry{Key: []byte("dirty"), Value: []byte("d"), Version: 2}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.Delete([]byte("dirtygone")); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(5); err != nil {
		t.Fatal(err)
	}
	b.Close()
	check("after cleaning", p, nil)
	if st := p.State(); st.Dirty != 0 {
		t.Fatalf("state %+v: want no dirty entries", st)
	}

	// A snapshot carries dirty entries to another replica's index.
	b = p.NewBatch()
	if err := b.Put(Entry{Key: []byte("again"), Value: []byte("x"), Version: 6, Flags: FlagDirty}); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(6); err != nil {
		t.Fatal(err)
	}
	b.Close()
	var snap bytes.Buffer
	if _, err := p.WriteSnapshot(&snap); err != nil {
		t.Fatal(err)
	}
	other := mustPartition(t, openMemDB(t), 3)
	if err := other.Restore(&snap); err != nil {
		t.Fatal(err)
	}
	check("restored", other, []DirtyKey{{Key: []byte("again"), Version: 6}})
}

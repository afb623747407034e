package storage

import (
	"testing"

	"github.com/hashicorp/raft"
)

func TestDropReplica(t *testing.T) {
	db := openMemDB(t)
	write := func(part uint32) {
		p, err := db.Partition(part)
		if err != nil {
			t.Fatal(err)
		}
		b := p.NewBatch()
		if err := b.Put(Entry{Key: []byte("k"), Value: []byte("v"), Version: 7}); err != nil {
			t.Fatal(err)
		}
		if err := b.PutMeta("x", []byte("y")); err != nil {
			t.Fatal(err)
		}
		if err := b.Commit(7); err != nil {
			t.Fatal(err)
		}
		ls := db.LogStore(uint64(part))
		if err := ls.StoreLogs([]*raft.Log{{Index: 1, Term: 1, Data: []byte("a")}, {Index: 2, Term: 1}}); err != nil {
			t.Fatal(err)
		}
		if err := ls.SetUint64([]byte("CurrentTerm"), 3); err != nil {
			t.Fatal(err)
		}
	}
	write(1)
	write(2)
	if err := db.DropReplica(1, 1); err != nil {
		t.Fatal(err)
	}

	p1, _ := db.Partition(1)
	if _, ok, _ := p1.Get([]byte("k"), 0); ok {
		t.Error("partition 1 entry survived the drop")
	}
	if st := p1.State(); st.Applied != 0 || st.Keys != 0 {
		t.Errorf("partition 1 state after drop = %+v, want zero", st)
	}
	ls1 := db.LogStore(1)
	if last, _ := ls1.LastIndex(); last != 0 {
		t.Errorf("partition 1 log last index after drop = %d, want 0", last)
	}
	if term, err := ls1.GetUint64([]byte("CurrentTerm")); err != nil || term != 3 {
		t.Errorf("partition 1 term after drop = %d, %v; the stable store must stay", term, err)
	}

	p2, _ := db.Partition(2)
	if _, ok, _ := p2.Get([]byte("k"), 0); !ok {
		t.Error("partition 2 lost its entry")
	}
	if st := p2.State(); st.Applied != 7 {
		t.Errorf("partition 2 applied = %d, want 7", st.Applied)
	}
	if last, _ := db.LogStore(2).LastIndex(); last != 2 {
		t.Errorf("partition 2 log last index = %d, want 2", last)
	}
}

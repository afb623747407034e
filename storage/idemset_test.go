package storage

import (
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// TestIdemSet: the set follows Add and Remove counts, so removing one of
// two records of a key keeps it, and Load rebuilds it from the records a
// partition holds under a prefix, ignoring other metadata.
func TestIdemSet(t *testing.T) {
	s := NewIdemSet()
	if s.MayHave("a") {
		t.Fatal("empty set has a")
	}
	s.Add("a")
	s.Add("a")
	s.Add("b")
	s.Remove("a")
	if s.Len() != 2 {
		t.Fatalf("Len = %d after 3 adds and a remove, want 2", s.Len())
	}
	if !s.MayHave("a") || !s.MayHave("b") {
		t.Fatal("a key added twice and removed once, or b, is gone")
	}
	s.Remove("a")
	s.Remove("b")
	if s.MayHave("a") || s.MayHave("b") {
		t.Fatal("removed keys still there")
	}
	s.Remove("never") // removing an absent key does nothing

	db := openTestDB(t, vfs.NewMem())
	p, err := db.Partition(3)
	if err != nil {
		t.Fatal(err)
	}
	b := p.NewBatch()
	for _, name := range []string{"i/k1", "i/k2", "x/other"} {
		if err := b.PutMeta(name, []byte("r")); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Commit(1); err != nil {
		t.Fatal(err)
	}
	s.Add("stale")
	if err := s.Load(p, "i/"); err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]bool{"k1": true, "k2": true, "other": false, "x/other": false, "stale": false} {
		if got := s.MayHave(key); got != want {
			t.Errorf("after Load, MayHave(%q) = %v, want %v", key, got, want)
		}
	}
}

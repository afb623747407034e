package node

import (
	"math"
	"testing"
)

// readAll reads every change after cur.
func readAll(t *testing.T, f *changeFeed, cur cursor) ([]change, cursor, uint64, bool) {
	t.Helper()
	var out []change
	for {
		got, next, through, ok := f.read(cur, nil, 7)
		if !ok {
			return out, cur, through, false
		}
		out, cur = append(out, got...), next
		if len(got) < 7 || next.pos == f.head {
			return out, cur, through, true
		}
	}
}

// TestChangeFeed: readers get the changes after their index in order,
// complete through the index the feed has published; a reader that
// falls further behind than the ring holds, resumes from an index older
// than the feed, or reads across a reset learns that changes were lost.
func TestChangeFeed(t *testing.T) {
	f := newChangeFeed(10)
	if _, _, ok := f.from(9); ok {
		t.Fatal("from(9) on a feed that starts at 10: want lost")
	}
	start, through, ok := f.from(10)
	if !ok || through != 10 {
		t.Fatalf("from(10) = through %d ok %v", through, ok)
	}
	// Index 11 changes two keys; 12 is a configuration entry (no change).
	f.publish([]change{{hash: 1, index: 11}, {hash: 2, index: 11}}, 12)
	f.publish([]change{{hash: 3, index: 13}}, 13)
	got, cur, through, ok := readAll(t, f, start)
	if !ok || through != 13 || len(got) != 3 || got[2] != (change{3, 13}) {
		t.Fatalf("read = %v through %d ok %v", got, through, ok)
	}
	// Resume after 11: only 13.
	mid, _, ok := f.from(11)
	if got, _, _, _ := readAll(t, f, mid); !ok || len(got) != 1 || got[0].index != 13 {
		t.Fatalf("from(11) read %v", got)
	}
	// An index beyond the feed starts at its end.
	end, _, ok := f.from(math.MaxUint64)
	if !ok || end.pos != f.head {
		t.Fatalf("from(max) = %+v ok %v", end, ok)
	}
	// A read cut at max is complete only below the first change unread.
	part, _, th, ok := f.read(start, nil, 1)
	if !ok || len(part) != 1 || th != 10 {
		t.Fatalf("read 1 = %v through %d, want one change, through 10", part, th)
	}
	// Overflow: the ring drops the oldest; the old cursor is lost, and so
	// is a resume from before the oldest kept.
	for i := range feedSize {
		f.publish([]change{{hash: uint64(i), index: uint64(14 + i)}}, uint64(14+i))
	}
	if _, _, _, ok := f.read(start, nil, 10); ok {
		t.Fatal("a reader overtaken by the ring was not told")
	}
	if got, _, _, ok := f.read(cur, nil, 1); !ok || got[0].index != 14 {
		t.Fatalf("a reader the ring just holds read %v ok %v", got, ok)
	}
	if _, _, ok := f.from(12); ok {
		t.Fatal("a resume from before the oldest change kept was not refused")
	}
	if c, _, ok := f.from(20); !ok {
		t.Fatal("a resume from a kept index was refused")
	} else if got, _, _, _ := readAll(t, f, c); len(got) != feedSize+14-1-21+1 || got[0].index != 21 {
		t.Fatalf("resume from 20: %d changes from %v", len(got), got[0])
	}
	// Reset: a new generation; old cursors are lost, old indexes unknown.
	live, _, _ := f.from(math.MaxUint64)
	f.reset(5000)
	if _, _, _, ok := f.read(live, nil, 10); ok {
		t.Fatal("a cursor from before a reset still reads")
	}
	if _, _, ok := f.from(4999); ok {
		t.Fatal("a resume from before the reset was accepted")
	}
	if c, through, ok := f.from(5000); !ok || through != 5000 || c.pos != 0 {
		t.Fatalf("from(5000) after reset = %+v through %d ok %v", c, through, ok)
	}
}

// TestChangeFeedWakes: a watcher is woken by a publish and by a reset,
// and not after it stops watching.
func TestChangeFeedWakes(t *testing.T) {
	f := newChangeFeed(0)
	ch := make(chan struct{}, 1)
	stop := f.watch(func() {
		select {
		case ch <- struct{}{}:
		default:
		}
	})
	f.publish(nil, 1)
	select {
	case <-ch:
	default:
		t.Fatal("publish did not wake the watcher")
	}
	f.reset(2)
	select {
	case <-ch:
	default:
		t.Fatal("reset did not wake the watcher")
	}
	stop()
	f.publish(nil, 3)
	select {
	case <-ch:
		t.Fatal("woken after it stopped watching")
	default:
	}
}

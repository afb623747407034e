package storage

import (
	"testing"
	"time"
)

func TestRecency(t *testing.T) {
	// LastUse has second resolution counted from the Recency's creation, so
	// a read is never reported before the Recency existed.
	before := time.Now()
	r := NewRecency(20)
	old := before.Add(-time.Hour).UnixNano()
	future := before.Add(time.Hour).UnixNano()
	tests := []struct {
		name      string
		touch     bool
		partition uint32 // the partition touched, if touch
		writtenAt int64
		wantRead  bool // LastUse reports the read, not WrittenAt
	}{
		{"untouched", false, 0, old, false},
		{"untouched zero WrittenAt", false, 0, 0, false},
		{"touched", true, 1, old, true},
		{"touched, written after the read", true, 1, future, false},
		{"touched in another partition", true, 2, old, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := Entry{Key: []byte("key " + tt.name), WrittenAt: tt.writtenAt}
			if tt.touch {
				r.TouchAt(tt.partition, e.Key, time.Now())
				r.TouchAt(tt.partition, e.Key, time.Now()) // a second read in the same second
			}
			got := r.LastUse(1, e)
			after := time.Now().UnixNano()
			if got < e.WrittenAt {
				t.Fatalf("LastUse = %d, before WrittenAt %d", got, e.WrittenAt)
			}
			if !tt.wantRead {
				if got != e.WrittenAt {
					t.Fatalf("LastUse = %d, want WrittenAt %d", got, e.WrittenAt)
				}
				return
			}
			if got < before.UnixNano() || got > after {
				t.Fatalf("LastUse = %v, want between %v and %v", time.Unix(0, got), before, time.Unix(0, after))
			}
		})
	}
}

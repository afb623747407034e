package ring

import (
	"fmt"
	"testing"
)

func TestNewPartitionerBounds(t *testing.T) {
	for _, tt := range []struct {
		count uint32
		ok    bool
	}{{0, false}, {1, true}, {64, true}, {MaxPartitions, true}, {MaxPartitions + 1, false}} {
		t.Run(fmt.Sprint(tt.count), func(t *testing.T) {
			_, err := NewPartitioner(tt.count)
			if (err == nil) != tt.ok {
				t.Fatalf("NewPartitioner(%d) error = %v, want ok=%v", tt.count, err, tt.ok)
			}
		})
	}
}

// The key-to-partition function is a wire contract: these values must never
// change.
func TestPartitionIsStable(t *testing.T) {
	p, _ := NewPartitioner(64)
	for key, want := range map[string]uint32{"": 25, "a": 27, "user:42": 2, "k": 35} {
		if got := p.Partition([]byte(key)); got != want {
			t.Errorf("Partition(%q) = %d, want %d", key, got, want)
		}
	}
}

func TestPartitionSpread(t *testing.T) {
	p, _ := NewPartitioner(64)
	counts := make([]int, 64)
	const n = 64000
	for i := 0; i < n; i++ {
		counts[p.Partition([]byte(fmt.Sprintf("key-%d", i)))]++
	}
	for part, c := range counts {
		// Each partition expects 1000 keys; a fair hash stays within 15%.
		if c < 850 || c > 1150 {
			t.Errorf("partition %d has %d keys, want about 1000", part, c)
		}
	}
}

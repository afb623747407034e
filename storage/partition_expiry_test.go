package storage

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// Expiry and eviction sampling: reads never return expired entries,
// samples come from all over the partition, and Expired finds what is due.

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

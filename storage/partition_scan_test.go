package storage

import (
	"bytes"
	"fmt"
	"slices"
	"testing"
)

// Scans: order, limits and paging.

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

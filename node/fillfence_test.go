package node

import (
	"testing"
	"time"

	peerv1 "github.com/elcache/elcache/proto/peer/v1"
	"github.com/elcache/elcache/storage"
)

// TestFillFence: the refill fence's decision for every branch of the
// rule: the load's age first, then what the key holds against the row's
// version (5 here).
func TestFillFence(t *testing.T) {
	const now = int64(1_000_000) * int64(time.Second)
	const row = 5
	fresh := now - int64(time.Second)
	tomb := storage.FlagTombstone
	dirty := storage.FlagDirty
	entry := func(version uint64, flags uint8, expireAt int64) *storage.Entry {
		return &storage.Entry{Key: []byte("k"), Value: []byte("v"), Version: version, Flags: flags, ExpireAt: expireAt}
	}
	tests := []struct {
		name    string
		started int64          // the fill's FillStartedAt
		cur     *storage.Entry // the key's entry; nil: absent
		want    fillVerdict
	}{
		{"absent key", fresh, nil, fillStore},
		{"load start unknown", 0, nil, fillUnstamped},
		{"load too old", now - int64(fillMaxAge) - 1, nil, fillTooOld},
		{"load exactly fillMaxAge old", now - int64(fillMaxAge), nil, fillStore},
		{"load started after now (clock skew)", now + int64(time.Second), nil, fillStore},
		{"load too old, whatever the key holds", now - int64(fillMaxAge) - 1, entry(1, tomb, now+1), fillTooOld},
		{"load start unknown, whatever the key holds", 0, entry(1, tomb, now+1), fillUnstamped},

		{"live value, older than the row", fresh, entry(row-1, 0, 0), fillLive},
		{"live value, the row's version", fresh, entry(row, 0, 0), fillLive},
		{"live value, newer than the row", fresh, entry(row+1, 0, 0), fillLive},
		{"live value expiring later", fresh, entry(row-1, 0, now+1), fillLive},
		{"live dirty value", fresh, entry(row-1, dirty, 0), fillLive},

		{"dirty tombstone (write-back delete)", fresh, entry(row-1, tomb|dirty, 0), fillDirty},
		{"dirty value expired", fresh, entry(row-1, dirty, now), fillDirty},

		{"fence older than the row", fresh, entry(row-1, tomb, now+1), fillStore},
		{"fence at the row's version (write-through's own fill)", fresh, entry(row, tomb, now+1), fillStore},
		{"fence newer than the row", fresh, entry(row+1, tomb, now+1), fillFenced},
		{"fence past its expiry, newer than the row", fresh, entry(row+1, tomb, now), fillFenced},
		{"negative entry older than the row", fresh, entry(row-1, tomb|storage.FlagNegative, now+1), fillStore},

		{"expired value older than the row", fresh, entry(row-1, 0, now), fillStore},
		{"expired value at the row's version", fresh, entry(row, 0, now), fillStore},
		{"expired value newer than the row", fresh, entry(row+1, 0, now), fillFenced},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			op := &peerv1.Op{Kind: peerv1.Op_KIND_FILL, Key: []byte("k"), Value: []byte("row"), IfVersion: row, FillStartedAt: tt.started}
			var cur storage.Entry
			if tt.cur != nil {
				cur = *tt.cur
			}
			if got := fillFence(op, now, cur, tt.cur != nil); got != tt.want {
				t.Fatalf("fillFence(started %d, cur %+v) = %d, want %d", tt.started, tt.cur, got, tt.want)
			}
		})
	}
}

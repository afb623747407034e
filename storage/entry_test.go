package storage

import (
	"bytes"
	"errors"
	"testing"
)

func TestEntryRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		e    Entry
	}{
		{"empty value", Entry{Key: []byte("k"), Value: []byte{}, Version: 1}},
		{"all fields", Entry{Key: []byte("key"), Value: []byte("value"), Version: 9, ExpireAt: 1e18, WrittenAt: 5, Flags: FlagDirty}},
		{"binary value", Entry{Key: []byte{0, 0xff}, Value: bytes.Repeat([]byte{0xff, 0}, 1000), Version: 1 << 60}},
		{"idempotency key", Entry{Key: []byte("k"), Value: []byte("v"), Version: 3, Flags: FlagDirty, IdemKey: "0190c2d4-5e6f-7abc-8def-0123456789ab"}},
		{"tombstone with idempotency key", Entry{Key: []byte("k"), Value: []byte{}, Version: 4, Flags: FlagDirty | FlagTombstone, IdemKey: "x"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeEntry(tt.e.Key, tt.e.appendEncoded(nil))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.Key, tt.e.Key) || !bytes.Equal(got.Value, tt.e.Value) || got.Version != tt.e.Version || got.ExpireAt != tt.e.ExpireAt ||
				got.WrittenAt != tt.e.WrittenAt || got.Flags != tt.e.Flags || got.IdemKey != tt.e.IdemKey {
				t.Fatalf("round trip: got %+v, want %+v", got, tt.e)
			}
			if got.Dirty() != (tt.e.Flags&FlagDirty != 0) {
				t.Fatalf("Dirty() = %v", got.Dirty())
			}
		})
	}
}

func TestDecodeEntryCorrupt(t *testing.T) {
	idem := func(tail ...byte) []byte {
		return append(append([]byte{entryFormatIdem}, make([]byte, entryHeaderLen-1)...), tail...)
	}
	for _, b := range [][]byte{nil, {1}, make([]byte, entryHeaderLen-1), append([]byte{9}, make([]byte, entryHeaderLen)...),
		idem(), idem(0), idem(0, 0), idem(0, 5, 'a')} {
		if _, err := DecodeEntry(nil, b); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("DecodeEntry(%x) = %v, want ErrCorrupt", b, err)
		}
	}
}

func TestEntryExpired(t *testing.T) {
	e := Entry{ExpireAt: 100}
	if e.Expired(99) || !e.Expired(100) || !e.Expired(101) {
		t.Fatal("expiry boundary wrong")
	}
	if (Entry{}).Expired(1 << 62) {
		t.Fatal("entry without expiry expired")
	}
}

func FuzzDecodeEntry(f *testing.F) {
	f.Add([]byte("k"), Entry{Value: []byte("v"), Version: 1}.appendEncoded(nil))
	f.Add([]byte("k"), Entry{Value: []byte("v"), Version: 1, IdemKey: "id"}.appendEncoded(nil))
	f.Add([]byte{}, []byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, key, b []byte) {
		e, err := DecodeEntry(key, b)
		if err != nil {
			return
		}
		// A decodable entry re-encodes to the same bytes.
		if got := e.appendEncoded(nil); !bytes.Equal(got, b) {
			t.Fatalf("re-encode: got %x, want %x", got, b)
		}
	})
}

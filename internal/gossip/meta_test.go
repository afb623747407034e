package gossip

import (
	"slices"
	"strings"
	"testing"
)

func TestMembershipMeta(t *testing.T) {
	full := nodeMeta{ID: "id-1", Name: "node one", GRPCAddr: "10.0.0.1:7000", BootID: "boot", HasCluster: true, Leaving: true}
	for _, nm := range []nodeMeta{full, {ID: "x"}, {ID: "é", Name: strings.Repeat("n", 400)}} {
		got, err := decodeNodeMeta(nm.encode())
		if err != nil || got != nm {
			t.Errorf("round trip of %+v: %+v, %v", nm, got, err)
		}
	}

	enc := full.encode()
	newer := append([]byte{2, 0xff}, enc[2:]...) // a later version: more flags, more fields
	newer = append(newer, 0x03, 'x', 'y', 'z')
	if got, err := decodeNodeMeta(newer); err != nil || got.ID != full.ID || got.BootID != full.BootID || !got.HasCluster {
		t.Errorf("newer version: %+v, %v", got, err)
	}

	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"version only", []byte{1}},
		{"version 0", append([]byte{0}, enc[1:]...)},
		{"unknown flag", append([]byte{1, 0x80}, enc[2:]...)},
		{"truncated", enc[:len(enc)-1]},
		{"trailing", append(slices.Clone(enc), 0)},
		{"huge length", []byte{1, 0, 0xff, 0xff, 0xff, 0xff, 0x0f}},
		{"bad utf8", []byte{1, 0, 2, 0xff, 0xfe, 0, 0, 0}},
		{"empty id", nodeMeta{Name: "n"}.encode()},
		{"too large", append([]byte{2, 0, 1, 'x', 0, 0, 0}, make([]byte, 600)...)},
	} {
		if got, err := decodeNodeMeta(tc.b); err == nil {
			t.Errorf("%s: decoded %+v, want an error", tc.name, got)
		}
	}
}

package gossip

import (
	"encoding/binary"
	"fmt"
	"unicode/utf8"

	"github.com/hashicorp/memberlist"
)

// nodeMeta is the metadata a node gossips about itself.
//
// Encoding: a version byte, a flags byte, then ID, Name, GRPCAddr and
// BootID, each as a uvarint length and UTF-8 bytes. A later version may
// append fields and flags: decoders read what they know and ignore the
// rest of a newer record.
type nodeMeta struct {
	ID, Name, GRPCAddr, BootID string
	HasCluster                 bool
	Leaving                    bool // Leave was called: a failure that follows is a departure
	Bootstrapper               bool // started with a bootstrap expectation
}

const (
	nodeMetaVersion  = 1
	metaFlagCluster  = 1 << 0
	metaFlagLeaving  = 1 << 1
	metaFlagBoot     = 1 << 2
	metaKnownFlagsV1 = metaFlagCluster | metaFlagLeaving | metaFlagBoot
)

func (nm nodeMeta) encode() []byte {
	fields := [...]string{nm.ID, nm.Name, nm.GRPCAddr, nm.BootID}
	size := 2
	for _, f := range fields {
		size += binary.MaxVarintLen32 + len(f)
	}
	var flags byte
	if nm.HasCluster {
		flags |= metaFlagCluster
	}
	if nm.Leaving {
		flags |= metaFlagLeaving
	}
	if nm.Bootstrapper {
		flags |= metaFlagBoot
	}
	b := make([]byte, 0, size)
	b = append(b, nodeMetaVersion, flags)
	for _, f := range fields {
		b = binary.AppendUvarint(b, uint64(len(f)))
		b = append(b, f...)
	}
	return b
}

func decodeNodeMeta(b []byte) (nodeMeta, error) {
	bad := func(format string, args ...any) (nodeMeta, error) {
		return nodeMeta{}, fmt.Errorf("gossip: metadata: "+format, args...)
	}
	switch {
	case len(b) > memberlist.MetaMaxSize:
		return bad("%d bytes, over the %d limit", len(b), memberlist.MetaMaxSize)
	case len(b) < 2:
		return bad("%d bytes, too short", len(b))
	case b[0] == 0:
		return bad("version 0")
	case b[0] == nodeMetaVersion && b[1]&^metaKnownFlagsV1 != 0:
		return bad("unknown flags %#x", b[1])
	}
	version, flags, rest := b[0], b[1], b[2:]
	var fields [4]string
	for i := range fields {
		n, k := binary.Uvarint(rest)
		if k <= 0 || n > uint64(len(rest)-k) {
			return bad("field %d truncated", i)
		}
		f := rest[k : k+int(n)]
		if !utf8.Valid(f) {
			return bad("field %d is not UTF-8", i)
		}
		fields[i], rest = string(f), rest[k+int(n):]
	}
	if version == nodeMetaVersion && len(rest) > 0 {
		return bad("%d trailing bytes", len(rest))
	}
	if fields[0] == "" {
		return bad("empty node id")
	}
	return nodeMeta{ID: fields[0], Name: fields[1], GRPCAddr: fields[2], BootID: fields[3],
		HasCluster: flags&metaFlagCluster != 0, Leaving: flags&metaFlagLeaving != 0, Bootstrapper: flags&metaFlagBoot != 0}, nil
}

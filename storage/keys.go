package storage

import "encoding/binary"

// Key layout. Every key starts with a one-byte space tag so the spaces never
// interleave:
//
//	'd' partition(u32) userkey     entry of a user key
//	'm' partition(u32) name        partition metadata (applied index, counters)
//	'l' group(u64) index(u64)      raft log entry
//	's' group(u64) name            raft stable store value
//	'n' group(u64) name            snapshot store metadata
//
// Integers are big-endian so byte order equals numeric order.
const (
	spaceData     byte = 'd'
	spaceMeta     byte = 'm'
	spaceLog      byte = 'l'
	spaceStable   byte = 's'
	spaceSnapshot byte = 'n'
)

// dataPrefix returns the prefix of all entries of partition p.
func dataPrefix(p uint32) []byte {
	b := make([]byte, 5)
	b[0] = spaceData
	binary.BigEndian.PutUint32(b[1:], p)
	return b
}

// dataKey returns the storage key of a user key in partition p.
func dataKey(p uint32, key []byte) []byte {
	return appendDataKey(make([]byte, 0, 5+len(key)), p, key)
}

// appendDataKey appends the storage key of a user key in partition p to b.
func appendDataKey(b []byte, p uint32, key []byte) []byte {
	b = append(b, spaceData)
	b = binary.BigEndian.AppendUint32(b, p)
	return append(b, key...)
}

// metaKey returns the storage key of a partition metadata record.
func metaKey(p uint32, name string) []byte {
	b := make([]byte, 5+len(name))
	b[0] = spaceMeta
	binary.BigEndian.PutUint32(b[1:], p)
	copy(b[5:], name)
	return b
}

// groupPrefix returns the prefix of a raft group's keys in a space.
func groupPrefix(space byte, group uint64) []byte {
	b := make([]byte, 9)
	b[0] = space
	binary.BigEndian.PutUint64(b[1:], group)
	return b
}

// logKey returns the storage key of raft log entry index of a group.
func logKey(group, index uint64) []byte {
	b := make([]byte, 17)
	b[0] = spaceLog
	binary.BigEndian.PutUint64(b[1:], group)
	binary.BigEndian.PutUint64(b[9:], index)
	return b
}

// groupKey returns the storage key of a named value of a group in a space.
func groupKey(space byte, group uint64, name []byte) []byte {
	b := make([]byte, 9+len(name))
	b[0] = space
	binary.BigEndian.PutUint64(b[1:], group)
	copy(b[9:], name)
	return b
}

// prefixEnd returns the smallest key greater than every key with prefix p,
// or nil when there is none (p is all 0xff).
func prefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		end[i]++
		if end[i] != 0 {
			return end[:i+1]
		}
	}
	return nil
}

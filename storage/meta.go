package storage

import (
	"errors"

	"github.com/cockroachdb/pebble/v2"
)

// Meta returns a named metadata value of the partition as last committed.
func (p *Partition) Meta(name string) ([]byte, bool, error) {
	return p.db.get(metaKey(p.id, name))
}

// MetaScan returns, through the batch (seeing its own writes), up to limit
// metadata records whose names start with prefix, in name order, as
// (name, value) pairs.
func (b *Batch) MetaScan(prefix string, limit int) ([][2][]byte, error) {
	return metaScan(b.b, b.p.id, prefix, limit)
}

// iterReader is what metaScan reads from: the DB or an indexed batch.
type iterReader interface {
	NewIter(*pebble.IterOptions) (*pebble.Iterator, error)
}

func metaScan(r iterReader, partition uint32, prefix string, limit int) ([][2][]byte, error) {
	lower := metaKey(partition, prefix)
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: prefixEnd(lower)})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var out [][2][]byte
	for valid := it.First(); valid && len(out) < limit; valid = it.Next() {
		name := append([]byte(nil), it.Key()[5:]...)
		out = append(out, [2][]byte{name, append([]byte(nil), it.Value()...)})
	}
	return out, it.Error()
}

// MetaNames calls fn with the name of each of the partition's metadata
// values whose name starts with prefix, in name order, as last committed.
// The name is valid only during the call.
func (p *Partition) MetaNames(prefix string, fn func(name []byte) error) error {
	lower := metaKey(p.id, prefix)
	it, err := p.db.pdb.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: prefixEnd(lower)})
	if err != nil {
		return err
	}
	for valid := it.First(); valid && err == nil; valid = it.Next() {
		err = fn(it.Key()[5:])
	}
	return errors.Join(err, it.Error(), it.Close())
}

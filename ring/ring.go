// Package ring maps keys to partitions and, in a cluster, partitions to
// nodes. It is pure: no I/O, no goroutines, no clocks; the same inputs give
// the same answer on every node and in every version.
package ring

import (
	"errors"
	"fmt"

	"github.com/cespare/xxhash/v2"
)

// MaxPartitions is the largest partition count a cluster may be created with.
const MaxPartitions = 4096

// Partitioner maps keys to a fixed number of partitions. The count is
// chosen when a cluster is created and never changes: changing it would move
// almost every key.
type Partitioner struct {
	count uint32
}

// NewPartitioner returns a Partitioner over count partitions.
func NewPartitioner(count uint32) (Partitioner, error) {
	if count == 0 || count > MaxPartitions {
		return Partitioner{}, fmt.Errorf("ring: partition count must be in [1, %d], got %d", MaxPartitions, count)
	}
	return Partitioner{count: count}, nil
}

// ErrNoPartitions is returned when a zero Partitioner is used.
var ErrNoPartitions = errors.New("ring: partitioner has no partitions")

// Count returns the number of partitions.
func (p Partitioner) Count() uint32 { return p.count }

// Partition returns the partition of key: xxhash64(key) mod count. The
// function is part of the wire contract: clients compute it too.
func (p Partitioner) Partition(key []byte) uint32 {
	if p.count == 0 {
		return 0
	}
	return uint32(xxhash.Sum64(key) % uint64(p.count))
}

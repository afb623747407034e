package bench

import "context"

// Target is a system under test: an elcache cluster at one consistency
// level and write mode, Redis, or etcd. A Target is shared by all the
// benchmark's workers and must be safe for concurrent use.
type Target interface {
	// Name identifies the target in tables and reports, e.g.
	// "elcache/eventual", "redis/appendfsync-always", "etcd/linearizable".
	Name() string
	// Get reads key; a missing key is not an error.
	Get(ctx context.Context, key string) error
	// Put writes value under key.
	Put(ctx context.Context, key string, value []byte) error
	// Close releases the target's connections.
	Close() error
}

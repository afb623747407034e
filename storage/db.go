package storage

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"syscall"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/hashicorp/raft"
)

// ErrClosed is returned by operations on a closed DB.
var ErrClosed = errors.New("storage: closed")

// Config configures a DB.
type Config struct {
	// Dir is the directory of the Pebble database. Required.
	Dir string
	// FS is the filesystem; nil means the OS filesystem. Tests pass
	// vfs.NewMem() or vfs.NewCrashableMem().
	FS vfs.FS
	// BlockCacheBytes is the size of Pebble's block cache.
	BlockCacheBytes int64
	// MemTableBytes is the size of one Pebble memtable; up to two are held
	// (one being flushed). Raft log entries live briefly (a group's log is
	// truncated every SnapshotThreshold entries), and those that are
	// written and truncated within one memtable never reach an sstable:
	// a larger memtable saves most flush and compaction work on a
	// write-heavy node (DESIGN.md "Storage tuning"). 0 is Pebble's
	// default (4 MiB).
	MemTableBytes uint64
	// LogSegmentBytes is the size of one file of the Raft log engine
	// (DESIGN.md "The Raft log engine"); the engine keeps a few, more
	// only while a group's log holds many live entries.
	LogSegmentBytes int64
	// LogSyncInterval bounds how long a REPLICATED Raft log entry, written
	// to the operating system when it is acknowledged, waits for its
	// fsync.
	LogSyncInterval time.Duration
	// LogSyncGap is the least time between the start of two fsyncs of
	// the Raft log: SYNC appends that arrive meanwhile wait and share the
	// next one, which costs each up to the gap in latency and saves the
	// CPU of the fsyncs it merges (DESIGN.md "The Raft log engine").
	// Negative turns the gap off.
	LogSyncGap time.Duration
	// Zero values of the four Log fields mean their defaults.
	//
	// LogCacheBytes bounds the memory of recent Raft log entries kept for
	// replication and apply, which read every entry back.
	LogCacheBytes int64
	// RowCacheBytes bounds the row cache: the stored form of recently
	// read and written entries, kept in front of Pebble so that a read of
	// a hot key skips Pebble's search (DESIGN.md "The row cache"). Below
	// 1 MiB there is none.
	RowCacheBytes int64
	// Logger receives Pebble's messages. Nil discards them.
	Logger *slog.Logger
}

// DefaultConfig returns a complete configuration for dir.
func DefaultConfig(dir string) Config {
	return Config{Dir: dir, BlockCacheBytes: 64 << 20, MemTableBytes: 16 << 20,
		LogSegmentBytes: 16 << 20, LogSyncInterval: 10 * time.Millisecond, LogSyncGap: time.Millisecond, LogCacheBytes: 16 << 20,
		RowCacheBytes: 32 << 20}
}

// Validate reports every problem with the configuration.
func (c Config) Validate() error {
	var errs []error
	if c.Dir == "" {
		errs = append(errs, errors.New("storage: Dir is required"))
	}
	if c.MemTableBytes != 0 && (c.MemTableBytes < 1<<20 || c.MemTableBytes >= 4<<30) {
		errs = append(errs, fmt.Errorf("storage: MemTableBytes must be 0 (Pebble's default) or in [1 MiB, 4 GiB), got %d", c.MemTableBytes))
	}
	if c.LogSegmentBytes != 0 && c.LogSegmentBytes < 64<<10 {
		errs = append(errs, fmt.Errorf("storage: LogSegmentBytes must be 0 (the default) or at least 64 KiB, got %d", c.LogSegmentBytes))
	}
	if c.LogSyncInterval < 0 || c.LogSyncInterval > time.Second {
		errs = append(errs, fmt.Errorf("storage: LogSyncInterval must be 0 (the default) or in (0, 1s], got %v", c.LogSyncInterval))
	}
	if c.LogSyncGap > 10*time.Millisecond {
		errs = append(errs, fmt.Errorf("storage: LogSyncGap must be at most 10ms (0: the default; negative: none), got %v", c.LogSyncGap))
	}
	if c.LogCacheBytes < 0 {
		errs = append(errs, fmt.Errorf("storage: LogCacheBytes must not be negative, got %d", c.LogCacheBytes))
	}
	if c.RowCacheBytes < 0 {
		errs = append(errs, fmt.Errorf("storage: RowCacheBytes must not be negative, got %d", c.RowCacheBytes))
	}
	if c.BlockCacheBytes < 0 {
		errs = append(errs, fmt.Errorf("storage: BlockCacheBytes must not be negative, got %d", c.BlockCacheBytes))
	}
	return errors.Join(errs...)
}

// cacheBytes is the block cache to create for cfg. Pebble charges its
// memtables to the block cache, so the cache has room for two of them (one
// filling, one flushing) on top of BlockCacheBytes: sized for blocks alone,
// 64 MiB memtables would leave no cache for blocks at all.
func cacheBytes(cfg Config) int64 {
	memtable := cfg.MemTableBytes
	if memtable == 0 {
		memtable = 4 << 20 // Pebble's default
	}
	return cfg.BlockCacheBytes + 2*int64(memtable)
}

// DB is one node's Pebble database. It is safe for concurrent use.
type DB struct {
	cfg  Config
	pdb  *pebble.DB
	logs *logEngine
	rows *rowCache // nil: none

	closeOnce sync.Once
	closeErr  error
}

// Open opens (creating if needed) the database in cfg.Dir.
func Open(cfg Config) (*DB, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	def := DefaultConfig(cfg.Dir)
	if cfg.LogSegmentBytes == 0 {
		cfg.LogSegmentBytes = def.LogSegmentBytes
	}
	if cfg.LogSyncInterval == 0 {
		cfg.LogSyncInterval = def.LogSyncInterval
	}
	if cfg.LogCacheBytes == 0 {
		cfg.LogCacheBytes = def.LogCacheBytes
	}
	if cfg.LogSyncGap == 0 {
		cfg.LogSyncGap = def.LogSyncGap
	}
	fs := cfg.FS
	if fs == nil {
		fs = vfs.Default
	}
	logs, err := openLogEngine(logEngineConfig{
		fs: fs, dir: fs.PathJoin(cfg.Dir, "raftlog"), segmentBytes: cfg.LogSegmentBytes,
		maxSegments: 4, syncInterval: cfg.LogSyncInterval, syncGap: max(cfg.LogSyncGap, 0), cacheBytes: cfg.LogCacheBytes,
	})
	if err != nil {
		return nil, err
	}
	cache := pebble.NewCache(cacheBytes(cfg))
	defer cache.Unref()
	opts := &pebble.Options{
		FS:     syncFirstFS{FS: fs, before: logs.sync},
		Cache:  cache,
		Logger: pebbleLogger{cfg.Logger},

		MemTableSize: cfg.MemTableBytes,
	}
	// Bloom filters on every level: most point reads in the write path
	// look for keys that do not exist (each write's idempotency key), and
	// without a filter such a read searches every level's tables.
	for i := range opts.Levels {
		opts.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
	}
	pdb, err := pebble.Open(cfg.Dir, opts)
	if errors.Is(err, syscall.EAGAIN) {
		err = fmt.Errorf("%w (another process holds this database: is an elcache already running on this data dir?)", err)
	}
	if err != nil {
		return nil, errors.Join(fmt.Errorf("storage: open %s: %w", cfg.Dir, err), logs.close())
	}
	d := &DB{cfg: cfg, pdb: pdb, logs: logs, rows: newRowCache(cfg.RowCacheBytes)}
	if err := d.migrateLogs(); err != nil {
		return nil, errors.Join(err, d.Close())
	}
	return d, nil
}

// Close closes the database. It is idempotent. Pebble closes first: it
// syncs through the log engine.
func (d *DB) Close() error {
	d.closeOnce.Do(func() { d.closeErr = errors.Join(d.pdb.Close(), d.logs.close()) })
	return d.closeErr
}

// Sync makes every write committed so far durable, including unsynced
// ones, Raft log entries first.
func (d *DB) Sync() error {
	return d.pdb.LogData(nil, pebble.Sync)
}

// BreakReplicatedForTest breaks (or mends) the promise of REPLICATED
// writes, for the fault suite's self-test: the log engine keeps their
// records in memory for up to a second, so a kill -9 loses writes that
// were acknowledged.
func (d *DB) BreakReplicatedForTest(on bool) error { return d.logs.breakReplicatedForTest(on) }

// DiskUsage returns the bytes the database's files take on disk
// (sstables, write-ahead log and the Raft log engine's segments).
func (d *DB) DiskUsage() uint64 {
	m := d.pdb.Metrics()
	return m.DiskSpaceUsage() + d.logs.diskBytes()
}

// migrateLogs moves Raft log entries that an earlier version kept in
// Pebble's log ('l') key space into the log engine, synced, then deletes
// them from Pebble.
func (d *DB) migrateLogs() error {
	lo := []byte{spaceLog}
	hi := prefixEnd(lo)
	it, err := d.pdb.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return fmt.Errorf("storage: migrate raft logs: %w", err)
	}
	var (
		group uint64
		batch []*raft.Log
		moved int
	)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		pos, err := d.logs.storeLogs(group, batch)
		if err == nil {
			err = d.logs.waitSynced(pos)
		}
		moved += len(batch)
		batch = batch[:0]
		return err
	}
	for it.First(); it.Valid() && err == nil; it.Next() {
		k := it.Key()
		if len(k) != 17 {
			err = fmt.Errorf("%w: raft log key %x", ErrCorrupt, k)
			break
		}
		g := binary.BigEndian.Uint64(k[1:9])
		if g != group || len(batch) >= 256 {
			err = flush()
			group = g
		}
		l := new(raft.Log)
		if err == nil {
			err = decodeLog(append([]byte(nil), it.Value()...), l)
		}
		batch = append(batch, l)
	}
	if err == nil {
		err = flush()
	}
	err = errors.Join(err, it.Error(), it.Close())
	if err == nil && moved > 0 {
		err = d.pdb.DeleteRange(lo, hi, pebble.Sync)
	}
	if err != nil {
		return fmt.Errorf("storage: migrate raft logs: %w", err)
	}
	return nil
}

// Compact compacts the whole database, reclaiming the space of deleted
// entries and truncated Raft logs. Pebble leaves garbage in place until a
// level fills (64 MiB for the base level), which for a cache that churns a
// small budget can be several times the live data; the node calls Compact
// when disk use runs well past its budget.
func (d *DB) Compact() error {
	return d.pdb.Compact(context.Background(), []byte{0}, []byte{0xff}, true)
}

// get returns a copy of the value at key, or nil, false.
func (d *DB) get(key []byte) ([]byte, bool, error) {
	v, closer, err := d.pdb.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	out := append([]byte(nil), v...)
	return out, true, closer.Close()
}

// pebbleLogger adapts slog to pebble's Logger.
type pebbleLogger struct{ l *slog.Logger }

func (p pebbleLogger) Infof(format string, args ...any) {
	if p.l != nil {
		p.l.Debug(fmt.Sprintf(format, args...), "component", "pebble")
	}
}

func (p pebbleLogger) Errorf(format string, args ...any) {
	if p.l != nil {
		p.l.Error(fmt.Sprintf(format, args...), "component", "pebble")
	}
}

func (p pebbleLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if p.l != nil {
		p.l.Error(msg, "component", "pebble")
	}
	panic("storage: pebble fatal: " + msg)
}

package storage

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/hashicorp/raft"
)

// openLogDB opens a DB on fs with a small log engine: segments of
// segBytes and REPLICATED entries synced every interval.
//
// The sync gap is off: these tests count on synced appends one after
// another going at the speed of the file system (TestLogEngineSyncGap
// tests the gap).
func openLogDB(t *testing.T, fs vfs.FS, segBytes int64, interval time.Duration) *DB {
	t.Helper()
	db, err := Open(Config{Dir: "db", FS: fs, BlockCacheBytes: 1 << 20, LogSegmentBytes: segBytes, LogSyncInterval: interval, LogSyncGap: -1})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// replicatedLog is testLog marked REPLICATED.
func replicatedLog(i, term uint64) *raft.Log {
	l := testLog(i, term)
	l.Extensions = ReplicatedExtensions()
	return l
}

// TestLogEngineDurability checks each durability level against a process
// crash (the files as written: the operating system keeps them) and a
// power loss (only what was synced).
func TestLogEngineDurability(t *testing.T) {
	for _, tc := range []struct {
		name     string
		entry    func(i, term uint64) *raft.Log
		crash    func(fs *vfs.MemFS) *vfs.MemFS
		survives bool
	}{
		{"sync, power loss", testLog, func(fs *vfs.MemFS) *vfs.MemFS { return fs.CrashClone(vfs.CrashCloneCfg{}) }, true},
		{"replicated, process crash", replicatedLog, func(fs *vfs.MemFS) *vfs.MemFS {
			// Everything written survives, synced or not.
			return fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 100, RNG: rand.New(rand.NewPCG(1, 2))})
		}, true},
		// Acknowledged before its sync: a power loss right after loses it.
		{"replicated, power loss", replicatedLog, func(fs *vfs.MemFS) *vfs.MemFS { return fs.CrashClone(vfs.CrashCloneCfg{}) }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := vfs.NewCrashableMem()
			// An interval far longer than the test: nothing is synced
			// unless a write asks for it.
			db := openLogDB(t, fs, 1<<20, time.Second)
			s := db.LogStore(1)
			for i := uint64(1); i <= 10; i++ {
				if err := s.StoreLogs([]*raft.Log{tc.entry(i, 1)}); err != nil {
					t.Fatal(err)
				}
			}
			after := openLogDB(t, tc.crash(fs), 1<<20, time.Second).LogStore(1)
			if tc.survives {
				checkBounds(t, after, 1, 10)
				checkLogs(t, after, 10, span(1, 10)...)
			} else {
				checkBounds(t, after, 0, 0)
			}
		})
	}
}

// TestLogEngineReplicatedSyncedWithinInterval: a REPLICATED entry is synced
// by the sync loop without anyone asking.
func TestLogEngineReplicatedSyncedWithinInterval(t *testing.T) {
	fs := vfs.NewCrashableMem()
	db := openLogDB(t, fs, 1<<20, 5*time.Millisecond)
	if err := db.LogStore(1).StoreLogs([]*raft.Log{replicatedLog(1, 1)}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the sync loop to sync", func() bool {
		db.logs.smu.Lock()
		defer db.logs.smu.Unlock()
		return db.logs.synced >= db.logs.pos
	})
	after := openLogDB(t, fs.CrashClone(vfs.CrashCloneCfg{}), 1<<20, time.Second).LogStore(1)
	checkLogs(t, after, 1, 1)
}

// TestLogEngineStateNotAheadOfLog: whatever Pebble makes durable, the log
// entries written before it are durable too (syncfs.go). Without that, a
// power loss could keep a state machine that applied entries its log lost.
func TestLogEngineStateNotAheadOfLog(t *testing.T) {
	fs := vfs.NewCrashableMem()
	db := openLogDB(t, fs, 1<<20, time.Second)
	if err := db.LogStore(1).StoreLogs([]*raft.Log{replicatedLog(1, 1), replicatedLog(2, 1)}); err != nil {
		t.Fatal(err)
	}
	// The state machine's write of those entries, unsynced, then a sync
	// of Pebble (as before a snapshot, or by a memtable flush).
	if err := db.pdb.Set([]byte("state"), []byte("applied 2"), nil); err != nil {
		t.Fatal(err)
	}
	if err := db.Sync(); err != nil {
		t.Fatal(err)
	}
	after := openLogDB(t, fs.CrashClone(vfs.CrashCloneCfg{}), 1<<20, time.Second)
	if v, ok, err := after.get([]byte("state")); err != nil || !ok || string(v) != "applied 2" {
		t.Fatalf("state = %q, %v, %v; want it synced", v, ok, err)
	}
	checkLogs(t, after.LogStore(1), 2, 1, 2)
}

// segmentNames lists the engine's segment files.
func segmentNames(t *testing.T, fs vfs.FS) []string {
	t.Helper()
	names, err := fs.List("db/raftlog")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, n := range names {
		if strings.HasSuffix(n, ".rlog") {
			out = append(out, n)
		}
	}
	slices.Sort(out) // oldest first
	return out
}

// corruptFile overwrites the byte at off (from the end if negative).
func corruptFile(t *testing.T, fs vfs.FS, name string, off int64) {
	t.Helper()
	f, err := fs.OpenReadWrite(name, vfs.WriteCategoryUnspecified)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if off < 0 {
		st, err := f.Stat()
		if err != nil {
			t.Fatal(err)
		}
		off += st.Size()
	}
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0xff
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// TestLogEngineTornTail: a bad record at the end of the last segment (a
// write cut by a power loss) ends the log there, and stays cut.
func TestLogEngineTornTail(t *testing.T) {
	fs := vfs.NewMem()
	db := openLogDB(t, fs, 1<<20, time.Second)
	s := db.LogStore(1)
	for i := uint64(1); i <= 5; i++ {
		storeRange(t, s, i, i)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	// The last record is entry 5's; the run after it started another,
	// empty segment. Tear entry 5 in the segment before it.
	names := segmentNames(t, fs)
	if len(names) != 1 {
		t.Fatalf("segments = %v; want 1", names)
	}
	corruptFile(t, fs, "db/raftlog/"+names[0], -3)
	for run := 0; run < 2; run++ {
		db := openLogDB(t, fs, 1<<20, time.Second)
		checkBounds(t, db.LogStore(1), 1, 4)
		checkLogs(t, db.LogStore(1), 5, span(1, 4)...)
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestLogEngineCorruptSegment: a bad record in a segment that is not the
// last is corruption, and the log refuses to open.
func TestLogEngineCorruptSegment(t *testing.T) {
	fs := vfs.NewMem()
	db := openLogDB(t, fs, 1<<20, time.Second)
	storeRange(t, db.LogStore(1), 1, 5)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openLogDB(t, fs, 1<<20, time.Second)
	storeRange(t, db.LogStore(1), 6, 10)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	names := segmentNames(t, fs)
	if len(names) < 2 {
		t.Fatalf("segments = %v; want at least 2", names)
	}
	corruptFile(t, fs, "db/raftlog/"+names[0], 12)
	_, err := Open(Config{Dir: "db", FS: fs, BlockCacheBytes: 1 << 20})
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open = %v; want ErrCorrupt", err)
	}
}

// TestLogEngineCollect: segments whose entries are all gone are deleted,
// and a group that stopped writing does not pin old segments: its live
// entries are moved to the end of the log.
func TestLogEngineCollect(t *testing.T) {
	fs := vfs.NewMem()
	db := openLogDB(t, fs, 64<<10, time.Second)
	busy, idle := db.LogStore(1), db.LogStore(2)
	storeRange(t, idle, 1, 3)
	big := strings.Repeat("x", 1000)
	for i := uint64(1); i <= 1000; i++ {
		l := testLog(i, 1)
		l.Data = []byte(big)
		if err := busy.StoreLogs([]*raft.Log{l}); err != nil {
			t.Fatal(err)
		}
		if i > 100 {
			if err := busy.DeleteRange(i-100, i-100); err != nil {
				t.Fatal(err)
			}
		}
	}
	if n := len(segmentNames(t, fs)); n < 10 {
		t.Fatalf("%d segments before collecting; want at least 10 (1 MB in 64 KiB segments)", n)
	}
	for range 20 {
		db.logs.collect()
	}
	if n := len(segmentNames(t, fs)); n > 5 {
		t.Errorf("%d segments after collecting; want at most 5 (maxSegments 4, plus the one written)", n)
	}
	checkLogs(t, idle, 3, 1, 2, 3)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openLogDB(t, fs, 64<<10, time.Second)
	checkLogs(t, db.LogStore(2), 3, 1, 2, 3)
	checkBounds(t, db.LogStore(1), 901, 1000)
}

// TestLogEngineDrop: DropReplica removes the group's log, durably.
func TestLogEngineDrop(t *testing.T) {
	fs := vfs.NewCrashableMem()
	db := openLogDB(t, fs, 1<<20, time.Second)
	storeRange(t, db.LogStore(3), 1, 10)
	storeRange(t, db.LogStore(4), 1, 2)
	if err := db.DropReplica(3, 3); err != nil {
		t.Fatal(err)
	}
	checkBounds(t, db.LogStore(3), 0, 0)
	after := openLogDB(t, fs.CrashClone(vfs.CrashCloneCfg{}), 1<<20, time.Second)
	checkBounds(t, after.LogStore(3), 0, 0)
	checkLogs(t, after.LogStore(4), 2, 1, 2)
}

// TestLogEngineMigrate: entries an earlier version kept in Pebble move to
// the engine when the DB opens.
func TestLogEngineMigrate(t *testing.T) {
	fs := vfs.NewMem()
	db := openLogDB(t, fs, 1<<20, time.Second)
	for g := uint64(1); g <= 2; g++ {
		for i := uint64(1); i <= 300; i++ {
			if err := db.pdb.Set(logKey(g, i), appendLog(nil, testLog(i, 1)), nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openLogDB(t, fs, 1<<20, time.Second)
	for g := uint64(1); g <= 2; g++ {
		checkBounds(t, db.LogStore(g), 1, 300)
		checkLogs(t, db.LogStore(g), 300, span(1, 300)...)
	}
	if _, ok, err := db.get(logKey(1, 1)); err != nil || ok {
		t.Errorf("old log key still in Pebble (%v, %v)", ok, err)
	}
}

// slowSyncFS delays every sync of the engine's segments, as a disk does,
// and counts them.
type slowSyncFS struct {
	vfs.FS
	syncs *atomic.Int64
}

func (fs slowSyncFS) Create(name string, c vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.Create(name, c)
	if err != nil || !strings.HasSuffix(name, ".rlog") {
		return f, err
	}
	return slowSyncFile{f, fs.syncs}, nil
}

type slowSyncFile struct {
	vfs.File
	syncs *atomic.Int64
}

func (f slowSyncFile) SyncData() error {
	f.syncs.Add(1)
	time.Sleep(2 * time.Millisecond)
	return f.File.SyncData()
}

// TestLogEngineGroupCommit: synced appends of many groups at once share
// fsyncs.
func TestLogEngineGroupCommit(t *testing.T) {
	var syncs atomic.Int64
	db := openLogDB(t, slowSyncFS{vfs.NewMem(), &syncs}, 1<<20, time.Second)
	const groups, each = 32, 20
	syncs.Store(0)
	var wg sync.WaitGroup
	errs := make(chan error, groups)
	for g := uint64(1); g <= groups; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := db.LogStore(g)
			for i := uint64(1); i <= each; i++ {
				if err := s.StoreLogs([]*raft.Log{testLog(i, 1)}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := syncs.Load(); n >= groups*each/4 {
		t.Errorf("%d fsyncs for %d synced appends; want them shared (fewer than a quarter)", n, groups*each)
	}
	for g := uint64(1); g <= groups; g++ {
		checkBounds(t, db.LogStore(g), 1, each)
	}
}

// TestLogEngineSyncGap: fsyncs start at least LogSyncGap apart, so synced
// appends one after another wait for it (TestLogEngineGroupCommit shows
// concurrent ones sharing fsyncs); a gap above 10ms is refused.
func TestLogEngineSyncGap(t *testing.T) {
	const gap, serial = 5 * time.Millisecond, 20
	var syncs atomic.Int64
	db, err := Open(Config{Dir: "db", FS: slowSyncFS{vfs.NewMem(), &syncs}, BlockCacheBytes: 1 << 20, LogSyncGap: gap})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s := db.LogStore(1)
	start := time.Now()
	syncs.Store(0)
	for i := uint64(1); i <= serial; i++ {
		if err := s.StoreLogs([]*raft.Log{testLog(i, 1)}); err != nil {
			t.Fatal(err)
		}
	}
	if took, least := time.Since(start), (serial-1)*gap; took < least {
		t.Errorf("%d synced appends one after another took %v; with a %v gap between fsyncs they take at least %v", serial, took, gap, least)
	}
	if n := syncs.Load(); n < serial {
		t.Errorf("%d fsyncs for %d synced appends one after another; want one each", n, serial)
	}
	checkBounds(t, s, 1, serial)
	if _, err := Open(Config{Dir: "x", FS: vfs.NewMem(), LogSyncGap: 11 * time.Millisecond}); err == nil || !strings.Contains(err.Error(), "LogSyncGap") {
		t.Errorf("Open with an 11ms LogSyncGap: %v; want an error naming LogSyncGap", err)
	}
}

// TestLogEngineCacheBounded: the cache of recent entries stays within its
// budget, and entries read back from the files are the same.
func TestLogEngineCacheBounded(t *testing.T) {
	db, err := Open(Config{Dir: "db", FS: vfs.NewMem(), BlockCacheBytes: 1 << 20, LogCacheBytes: 4 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s := db.LogStore(1)
	storeRange(t, s, 1, 1000)
	if n := db.logs.cacheN; n > 4<<10 {
		t.Errorf("cache holds %d bytes; want at most 4096", n)
	}
	checkLogs(t, s, 1000, span(1, 1000)...)
}

// TestLogEngineClosed: calls after Close fail with ErrClosed.
func TestLogEngineClosed(t *testing.T) {
	db := openLogDB(t, vfs.NewMem(), 1<<20, time.Second)
	s := db.LogStore(1)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.StoreLogs([]*raft.Log{testLog(1, 1)}); !errors.Is(err, ErrClosed) {
		t.Errorf("StoreLogs after Close = %v; want ErrClosed", err)
	}
	if _, err := s.LastIndex(); !errors.Is(err, ErrClosed) {
		t.Errorf("LastIndex after Close = %v; want ErrClosed", err)
	}
	if err := s.DeleteRange(0, math.MaxUint64); !errors.Is(err, ErrClosed) {
		t.Errorf("DeleteRange after Close = %v; want ErrClosed", err)
	}

}

// TestLogEngineBrokenReplicated: the self-test's broken mode really loses
// acknowledged REPLICATED entries in a process crash, which the mended
// engine does not (TestLogEngineDurability).
func TestLogEngineBrokenReplicated(t *testing.T) {
	fs := vfs.NewCrashableMem()
	db := openLogDB(t, fs, 1<<20, time.Second)
	if err := db.BreakReplicatedForTest(true); err != nil {
		t.Fatal(err)
	}
	s := db.LogStore(1)
	storeRange(t, s, 1, 2) // synced
	for i := uint64(3); i <= 5; i++ {
		if err := s.StoreLogs([]*raft.Log{replicatedLog(i, 1)}); err != nil {
			t.Fatal(err)
		}
	}
	checkLogs(t, s, 5, span(1, 5)...)
	crash := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 100, RNG: rand.New(rand.NewPCG(1, 2))})
	checkBounds(t, openLogDB(t, crash, 1<<20, time.Second).LogStore(1), 1, 2)
}

package storage

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/hashicorp/raft"
	"go.uber.org/goleak"
)

// openTestDB opens a DB in "db" on fs, closed when the test ends.
func openTestDB(tb testing.TB, fs vfs.FS) *DB {
	tb.Helper()
	db, err := Open(Config{Dir: "db", FS: fs, BlockCacheBytes: 1 << 20})
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

// testLog returns a command entry at index i whose data names i.
func testLog(i, term uint64) *raft.Log {
	return &raft.Log{Index: i, Term: term, Type: raft.LogCommand, Data: fmt.Appendf(nil, "cmd-%d", i)}
}

// storeRange stores entries lo..hi in one StoreLogs call.
func storeRange(t *testing.T, s *LogStore, lo, hi uint64) {
	t.Helper()
	var logs []*raft.Log
	for i := lo; i <= hi; i++ {
		logs = append(logs, testLog(i, 1))
	}
	if err := s.StoreLogs(logs); err != nil {
		t.Fatalf("StoreLogs(%d-%d): %v", lo, hi, err)
	}
}

// checkBounds checks FirstIndex and LastIndex of s.
func checkBounds(t *testing.T, s *LogStore, first, last uint64) {
	t.Helper()
	if got, err := s.FirstIndex(); err != nil || got != first {
		t.Errorf("FirstIndex = %d, %v; want %d", got, err, first)
	}
	if got, err := s.LastIndex(); err != nil || got != last {
		t.Errorf("LastIndex = %d, %v; want %d", got, err, last)
	}
}

// checkLogs checks that s holds exactly the entries of testLog at the
// indexes in want among 0..upTo.
func checkLogs(t *testing.T, s *LogStore, upTo uint64, want ...uint64) {
	t.Helper()
	present := make(map[uint64]bool, len(want))
	for _, i := range want {
		present[i] = true
	}
	for i := uint64(0); i <= upTo; i++ {
		var l raft.Log
		err := s.GetLog(i, &l)
		switch {
		case present[i] && err != nil:
			t.Errorf("GetLog(%d) = %v; want entry", i, err)
		case present[i] && !bytes.Equal(l.Data, testLog(i, 1).Data):
			t.Errorf("GetLog(%d).Data = %q; want %q", i, l.Data, testLog(i, 1).Data)
		case !present[i] && err != raft.ErrLogNotFound:
			t.Errorf("GetLog(%d) = %v; want raft.ErrLogNotFound", i, err)
		}
	}
}

// span returns lo..hi.
func span(lo, hi uint64) []uint64 {
	var s []uint64
	for i := lo; i <= hi; i++ {
		s = append(s, i)
	}
	return s
}

// equalLogs reports whether two entries are the same, comparing times with
// Equal.
func equalLogs(a, b *raft.Log) bool {
	return a.Index == b.Index && a.Term == b.Term && a.Type == b.Type &&
		bytes.Equal(a.Data, b.Data) && bytes.Equal(a.Extensions, b.Extensions) &&
		a.AppendedAt.Equal(b.AppendedAt)
}

func TestLogStoreEmpty(t *testing.T) {
	s := openTestDB(t, vfs.NewMem()).LogStore(1)
	checkBounds(t, s, 0, 0)
	checkLogs(t, s, 3)
	if err := s.StoreLogs(nil); err != nil {
		t.Errorf("StoreLogs(nil) = %v", err)
	}
	if err := s.DeleteRange(1, 10); err != nil {
		t.Errorf("DeleteRange on empty log = %v", err)
	}
	checkBounds(t, s, 0, 0)
}

func TestLogStoreStoreLogs(t *testing.T) {
	for _, tc := range []struct {
		name        string
		batches     [][2]uint64 // lo, hi of each StoreLogs call
		first, last uint64
		want        []uint64
	}{
		{"one", [][2]uint64{{1, 1}}, 1, 1, []uint64{1}},
		{"many", [][2]uint64{{1, 100}}, 1, 100, span(1, 100)},
		{"appends", [][2]uint64{{1, 3}, {4, 4}, {5, 9}}, 1, 9, span(1, 9)},
		{"starts late", [][2]uint64{{50, 60}}, 50, 60, span(50, 60)},
		{"gap", [][2]uint64{{1, 3}, {10, 12}}, 1, 12, append(span(1, 3), span(10, 12)...)},
		{"below first", [][2]uint64{{10, 12}, {3, 4}}, 3, 12, append(span(3, 4), span(10, 12)...)},
		{"overwrite", [][2]uint64{{1, 10}, {5, 7}}, 1, 10, span(1, 10)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := openTestDB(t, vfs.NewMem())
			s := db.LogStore(1)
			for _, b := range tc.batches {
				if b[0] == b[1] {
					if err := s.StoreLog(testLog(b[0], 1)); err != nil {
						t.Fatalf("StoreLog(%d): %v", b[0], err)
					}
					continue
				}
				storeRange(t, s, b[0], b[1])
			}
			checkBounds(t, s, tc.first, tc.last)
			checkLogs(t, s, tc.last+2, tc.want...)
			// A fresh LogStore reads the bounds from Pebble, not the cache.
			checkBounds(t, db.LogStore(1), tc.first, tc.last)
		})
	}
}

func TestLogStoreStoreLogsOverwrite(t *testing.T) {
	s := openTestDB(t, vfs.NewMem()).LogStore(1)
	storeRange(t, s, 1, 5)
	want := &raft.Log{Index: 3, Term: 2, Type: raft.LogNoop, Data: []byte("new")}
	if err := s.StoreLog(want); err != nil {
		t.Fatal(err)
	}
	var got raft.Log
	if err := s.GetLog(3, &got); err != nil || !equalLogs(&got, want) {
		t.Errorf("GetLog(3) = %+v, %v; want %+v", got, err, want)
	}
}

func TestLogStoreDeleteRange(t *testing.T) {
	for _, tc := range []struct {
		name        string
		lo, hi      uint64
		first, last uint64
		want        []uint64
	}{
		{"prefix", 1, 4, 5, 10, span(5, 10)},
		{"prefix from zero", 0, 4, 5, 10, span(5, 10)},
		{"suffix", 7, 10, 1, 6, span(1, 6)},
		{"suffix to max", 7, math.MaxUint64, 1, 6, span(1, 6)},
		{"middle", 4, 6, 1, 10, append(span(1, 3), span(7, 10)...)},
		{"first only", 1, 1, 2, 10, span(2, 10)},
		{"last only", 10, 10, 1, 9, span(1, 9)},
		{"everything", 1, 10, 0, 0, nil},
		{"everything to max", 0, math.MaxUint64, 0, 0, nil},
		{"beyond", 11, 20, 1, 10, span(1, 10)},
		{"empty range", 5, 4, 1, 10, span(1, 10)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := openTestDB(t, vfs.NewMem())
			s := db.LogStore(1)
			storeRange(t, s, 1, 10)
			checkBounds(t, s, 1, 10) // fill the cache
			if err := s.DeleteRange(tc.lo, tc.hi); err != nil {
				t.Fatalf("DeleteRange(%d, %d): %v", tc.lo, tc.hi, err)
			}
			checkBounds(t, s, tc.first, tc.last)
			checkBounds(t, db.LogStore(1), tc.first, tc.last)
			checkLogs(t, s, 12, tc.want...)

			// The log keeps working after the delete.
			storeRange(t, s, 11, 12)
			first := tc.first
			if first == 0 {
				first = 11
			}
			checkBounds(t, s, first, 12)
		})
	}
}

func TestLogStoreGroupsIsolated(t *testing.T) {
	groups := []uint64{0, 1, 2, math.MaxUint64}
	for _, victim := range groups {
		t.Run(fmt.Sprintf("delete group %d", victim), func(t *testing.T) {
			db := openTestDB(t, vfs.NewMem())
			for n, g := range groups {
				s := db.LogStore(g)
				storeRange(t, s, uint64(10*n+1), uint64(10*n+5))
				if err := s.SetUint64([]byte("CurrentTerm"), g); err != nil {
					t.Fatal(err)
				}
			}
			if err := db.LogStore(victim).DeleteRange(0, math.MaxUint64); err != nil {
				t.Fatal(err)
			}
			for n, g := range groups {
				s := db.LogStore(g)
				lo, hi := uint64(10*n+1), uint64(10*n+5)
				if g == victim {
					checkBounds(t, s, 0, 0)
					checkLogs(t, s, 50)
				} else {
					checkBounds(t, s, lo, hi)
					checkLogs(t, s, 50, span(lo, hi)...)
				}
				if v, err := s.GetUint64([]byte("CurrentTerm")); err != nil || v != g {
					t.Errorf("group %d: GetUint64 = %d, %v; want %d", g, v, err, g)
				}
			}
		})
	}
}

func TestLogStoreRoundtrip(t *testing.T) {
	big := make([]byte, 1<<20)
	for i := range big {
		big[i] = byte(i * 7)
	}
	for _, tc := range []struct {
		name string
		log  raft.Log
	}{
		{"minimal", raft.Log{Index: 1}},
		{"command", raft.Log{Index: 2, Term: 3, Type: raft.LogCommand, Data: []byte("set k v")}},
		{"configuration", raft.Log{Index: 3, Term: 3, Type: raft.LogConfiguration, Data: []byte{0, 1, 2}}},
		{"extensions", raft.Log{Index: 4, Term: 3, Data: []byte("d"), Extensions: []byte("chunk 1/3")}},
		{"appended at", raft.Log{Index: 5, Term: 3, AppendedAt: time.Date(2025, 3, 1, 12, 0, 0, 123456789, time.UTC)}},
		{"appended at epoch", raft.Log{Index: 6, AppendedAt: time.Unix(0, 0)}},
		{"appended before epoch", raft.Log{Index: 7, AppendedAt: time.Unix(-5, 1)}},
		{"large data", raft.Log{Index: 8, Term: 4, Data: big, Extensions: []byte{1}}},
		{"max index and term", raft.Log{Index: math.MaxUint64, Term: math.MaxUint64, Type: raft.LogType(255)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := openTestDB(t, vfs.NewMem()).LogStore(1)
			if err := s.StoreLog(&tc.log); err != nil {
				t.Fatal(err)
			}
			var got raft.Log
			if err := s.GetLog(tc.log.Index, &got); err != nil {
				t.Fatal(err)
			}
			if !equalLogs(&got, &tc.log) {
				t.Errorf("GetLog = %+v; want %+v", got, tc.log)
			}
			checkBounds(t, s, tc.log.Index, tc.log.Index)
		})
	}
}

func TestDecodeLogCorrupt(t *testing.T) {
	valid := appendLog(nil, &raft.Log{Index: 300, Term: 2, Data: []byte("data"), Extensions: []byte("ext"), AppendedAt: time.Unix(1, 2)})
	cases := map[string][]byte{
		"trailing byte": append(append([]byte(nil), valid...), 0),
		"bad version":   append([]byte{9}, valid[1:]...),
		"bad flags":     append([]byte{logVersion, 0x80}, valid[2:]...),
		"huge length":   {logVersion, 0, 1, 1, 0, 0xff, 0xff, 0xff, 0xff, 0x0f},
		"long varint":   {logVersion, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
	}
	for n := range valid {
		cases[fmt.Sprintf("truncated to %d", n)] = valid[:n]
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			var l raft.Log
			if err := decodeLog(b, &l); !errors.Is(err, ErrCorrupt) {
				t.Errorf("decodeLog = %v; want ErrCorrupt", err)
			}
		})
	}
}

// TestLogStoreConcurrent races appends against compaction, as raft's main
// and snapshot goroutines do, then checks the cached bounds against a fresh
// look at the keys.
func TestLogStoreConcurrent(t *testing.T) {
	db := openTestDB(t, vfs.NewMem())
	s := db.LogStore(1)
	done := make(chan error)
	go func() {
		defer close(done)
		for lo := uint64(1); lo <= 500; lo += 10 {
			var logs []*raft.Log
			for i := lo; i < lo+10; i++ {
				logs = append(logs, testLog(i, 1))
			}
			if err := s.StoreLogs(logs); err != nil {
				done <- err
				return
			}
		}
	}()
	for running := true; running; {
		select {
		case err, ok := <-done:
			if err != nil {
				t.Fatal(err)
			}
			running = ok
		default:
		}
		last, err := s.LastIndex()
		if err != nil {
			t.Fatal(err)
		}
		if last > 20 {
			if err := s.DeleteRange(0, last-20); err != nil {
				t.Fatal(err)
			}
		}
	}
	first, _ := s.FirstIndex()
	last, _ := s.LastIndex()
	checkBounds(t, db.LogStore(1), first, last)
	if last != 500 || first > 481 {
		t.Errorf("bounds = %d-%d; want last 500, first <= 481", first, last)
	}
}

func TestStableStore(t *testing.T) {
	s := openTestDB(t, vfs.NewMem()).LogStore(1)
	for _, tc := range []struct {
		name string
		set  []byte // nil: key left unset
		want []byte
	}{
		{"value", []byte("n1"), []byte("n1")},
		{"empty value", []byte{}, nil},
		{"missing", nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key := []byte("Get/" + tc.name)
			if tc.set != nil {
				if err := s.Set(key, tc.set); err != nil {
					t.Fatal(err)
				}
			}
			got, err := s.Get(key)
			if tc.set == nil {
				if err == nil || err.Error() != "not found" {
					t.Errorf("Get(missing) = %q, %v; want error \"not found\"", got, err)
				}
				return
			}
			if err != nil || !bytes.Equal(got, tc.want) {
				t.Errorf("Get = %q, %v; want %q", got, err, tc.want)
			}
		})
	}

	t.Run("overwrite", func(t *testing.T) {
		key := []byte("LastVoteCand")
		for _, v := range []string{"n1", "n2"} {
			if err := s.Set(key, []byte(v)); err != nil {
				t.Fatal(err)
			}
			if got, err := s.Get(key); err != nil || string(got) != v {
				t.Errorf("Get = %q, %v; want %q", got, err, v)
			}
		}
	})

	t.Run("uint64", func(t *testing.T) {
		for _, v := range []uint64{0, 1, 1 << 40, math.MaxUint64} {
			if err := s.SetUint64([]byte("CurrentTerm"), v); err != nil {
				t.Fatal(err)
			}
			if got, err := s.GetUint64([]byte("CurrentTerm")); err != nil || got != v {
				t.Errorf("GetUint64 = %d, %v; want %d", got, err, v)
			}
		}
	})

	t.Run("uint64 missing", func(t *testing.T) {
		got, err := s.GetUint64([]byte("LastVoteTerm"))
		if got != 0 || err == nil || err.Error() != "not found" {
			t.Errorf("GetUint64(missing) = %d, %v; want 0, \"not found\"", got, err)
		}
	})

	t.Run("uint64 wrong size", func(t *testing.T) {
		if err := s.Set([]byte("short"), []byte{1, 2}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetUint64([]byte("short")); !errors.Is(err, ErrCorrupt) {
			t.Errorf("GetUint64(2 bytes) = %v; want ErrCorrupt", err)
		}
	})
}

func TestLogStoreReopen(t *testing.T) {
	for _, tc := range []struct {
		name string
		// reopen stops db, which has been using fs, and returns the
		// filesystem to open again.
		reopen func(t *testing.T, db *DB, fs *vfs.MemFS) *vfs.MemFS
	}{
		{"clean close", func(t *testing.T, db *DB, fs *vfs.MemFS) *vfs.MemFS {
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			return fs
		}},
		{"crash", func(t *testing.T, db *DB, fs *vfs.MemFS) *vfs.MemFS {
			// Only synced data survives; db is abandoned, not closed.
			return fs.CrashClone(vfs.CrashCloneCfg{})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := vfs.NewCrashableMem()
			db := openTestDB(t, fs)
			s := db.LogStore(1)
			for lo := uint64(1); lo <= 100; lo += 10 {
				storeRange(t, s, lo, lo+9)
			}
			if err := s.DeleteRange(1, 20); err != nil {
				t.Fatal(err)
			}
			if err := s.DeleteRange(91, 100); err != nil {
				t.Fatal(err)
			}
			if err := s.SetUint64([]byte("CurrentTerm"), 7); err != nil {
				t.Fatal(err)
			}
			if err := s.Set([]byte("LastVoteCand"), []byte("n2")); err != nil {
				t.Fatal(err)
			}
			other := db.LogStore(2)
			storeRange(t, other, 1, 3)

			s = openTestDB(t, tc.reopen(t, db, fs)).LogStore(1)
			checkBounds(t, s, 21, 90)
			checkLogs(t, s, 100, span(21, 90)...)
			if v, err := s.GetUint64([]byte("CurrentTerm")); err != nil || v != 7 {
				t.Errorf("GetUint64(CurrentTerm) = %d, %v; want 7", v, err)
			}
			if v, err := s.Get([]byte("LastVoteCand")); err != nil || string(v) != "n2" {
				t.Errorf("Get(LastVoteCand) = %q, %v; want n2", v, err)
			}
		})
	}
}

// countFSM is a raft.FSM that counts applied commands.
type countFSM struct{ n atomic.Uint64 }

func (f *countFSM) Apply(l *raft.Log) any {
	if l.Type == raft.LogCommand {
		f.n.Add(1)
	}
	return nil
}

func (f *countFSM) Snapshot() (raft.FSMSnapshot, error) {
	return nil, errors.New("countFSM: snapshots not supported")
}

func (f *countFSM) Restore(rc io.ReadCloser) error { return rc.Close() }

// waitFor polls cond until it holds, failing the test after timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// startRaft starts a single-node raft "n1" on group 1 of db.
func startRaft(t *testing.T, db *DB, fsm raft.FSM) (*raft.Raft, *raft.InmemTransport) {
	t.Helper()
	conf := raft.DefaultConfig()
	conf.LocalID = "n1"
	conf.HeartbeatTimeout = 50 * time.Millisecond
	conf.ElectionTimeout = 50 * time.Millisecond
	conf.LeaderLeaseTimeout = 50 * time.Millisecond
	conf.CommitTimeout = 5 * time.Millisecond
	conf.LogOutput = io.Discard
	store := db.LogStore(1)
	_, trans := raft.NewInmemTransport("n1")
	r, err := raft.NewRaft(conf, fsm, store, store, raft.NewInmemSnapshotStore(), trans)
	if err != nil {
		t.Fatalf("NewRaft: %v", err)
	}
	return r, trans
}

// stopRaft shuts r down.
func stopRaft(t *testing.T, r *raft.Raft, trans *raft.InmemTransport) {
	t.Helper()
	if err := r.Shutdown().Error(); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := trans.Close(); err != nil {
		t.Fatalf("transport Close: %v", err)
	}
}

func TestLogStoreRaft(t *testing.T) {
	defer goleak.VerifyNone(t)
	fs := vfs.NewMem()
	db, err := Open(Config{Dir: "db", FS: fs, BlockCacheBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	fsm := &countFSM{}
	r, trans := startRaft(t, db, fsm)
	cfg := raft.Configuration{Servers: []raft.Server{{ID: "n1", Address: trans.LocalAddr()}}}
	if err := r.BootstrapCluster(cfg).Error(); err != nil {
		t.Fatalf("BootstrapCluster: %v", err)
	}
	waitFor(t, 5*time.Second, "leadership", func() bool { return r.State() == raft.Leader })
	for i := range 100 {
		if err := r.Apply(fmt.Appendf(nil, "cmd-%d", i), 5*time.Second).Error(); err != nil {
			t.Fatalf("Apply %d: %v", i, err)
		}
	}
	if got := fsm.n.Load(); got != 100 {
		t.Fatalf("FSM applied %d commands; want 100", got)
	}
	lastIndex, term := r.LastIndex(), r.CurrentTerm()
	stopRaft(t, r, trans)

	// Restart on the same data after reopening the DB.
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if db, err = Open(Config{Dir: "db", FS: fs, BlockCacheBytes: 1 << 20}); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	store := db.LogStore(1)
	if got, err := store.LastIndex(); err != nil || got != lastIndex {
		t.Fatalf("LastIndex after restart = %d, %v; want %d", got, err, lastIndex)
	}
	if ok, err := raft.HasExistingState(store, store, raft.NewInmemSnapshotStore()); err != nil || !ok {
		t.Fatalf("HasExistingState = %v, %v; want true", ok, err)
	}

	fsm = &countFSM{}
	r, trans = startRaft(t, db, fsm)
	defer stopRaft(t, r, trans)
	waitFor(t, 5*time.Second, "leadership after restart", func() bool { return r.State() == raft.Leader })
	if got := r.CurrentTerm(); got < term {
		t.Errorf("term after restart = %d; want >= %d", got, term)
	}
	// The new leader commits its no-op, which replays the 100 commands.
	waitFor(t, 5*time.Second, "replay", func() bool { return fsm.n.Load() == 100 })
	if got := r.LastIndex(); got <= lastIndex {
		t.Errorf("LastIndex after restart = %d; want > %d", got, lastIndex)
	}
}

func FuzzDecodeLog(f *testing.F) {
	f.Add(appendLog(nil, testLog(1, 1)), uint64(1), uint64(1), uint8(0), int64(0), []byte(nil), []byte("d"))
	f.Add(appendLog(nil, &raft.Log{Index: 9, Extensions: []byte("x"), AppendedAt: time.Unix(1, 2)}),
		uint64(math.MaxUint64), uint64(0), uint8(5), int64(-1), []byte("ext"), []byte(nil))
	f.Add([]byte{logVersion, 1}, uint64(0), uint64(0), uint8(0), int64(math.MaxInt64), []byte{}, []byte{})
	f.Fuzz(func(t *testing.T, raw []byte, index, term uint64, typ uint8, ns int64, ext, data []byte) {
		// Arbitrary bytes never panic, and what decodes survives a re-encode.
		var l raft.Log
		if err := decodeLog(raw, &l); err == nil {
			var again raft.Log
			if err := decodeLog(appendLog(nil, &l), &again); err != nil || !equalLogs(&l, &again) {
				t.Fatalf("re-decode of %+v = %+v, %v", l, again, err)
			}
		} else if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("decodeLog error %v does not wrap ErrCorrupt", err)
		}

		// A valid entry round-trips.
		want := raft.Log{Index: index, Term: term, Type: raft.LogType(typ), Data: data, Extensions: ext}
		if ns != 0 {
			want.AppendedAt = time.Unix(0, ns)
		}
		var got raft.Log
		if err := decodeLog(appendLog(nil, &want), &got); err != nil || !equalLogs(&got, &want) {
			t.Fatalf("roundtrip of %+v = %+v, %v", want, got, err)
		}
	})
}

func BenchmarkLogStoreStoreLogs(b *testing.B) {
	db, err := Open(Config{Dir: b.TempDir(), BlockCacheBytes: 8 << 20})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	s := db.LogStore(1)
	const batch, size = 16, 256
	logs := make([]*raft.Log, batch)
	for i := range logs {
		logs[i] = &raft.Log{Term: 1, Type: raft.LogCommand, Data: bytes.Repeat([]byte{'x'}, size), AppendedAt: time.Now()}
	}
	b.SetBytes(batch * size)
	b.ReportAllocs()
	next := uint64(1)
	for b.Loop() {
		for _, l := range logs {
			l.Index = next
			next++
		}
		if err := s.StoreLogs(logs); err != nil {
			b.Fatal(err)
		}
	}
}

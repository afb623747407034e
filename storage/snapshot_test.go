package storage

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/hashicorp/raft"
)

// partitionDump is everything a snapshot carries of a partition.
type partitionDump struct {
	entries []Entry
	meta    [][2][]byte
	state   State
}

func dumpPartition(tb testing.TB, p *Partition) partitionDump {
	tb.Helper()
	return partitionDump{entries: scanAll(tb, p), meta: metaAll(tb, p), state: p.State()}
}

func checkDump(tb testing.TB, what string, got, want partitionDump) {
	tb.Helper()
	if got.state != want.state {
		tb.Errorf("%s: State = %+v, want %+v", what, got.state, want.state)
	}
	if !equalEntries(got.entries, want.entries) {
		tb.Errorf("%s: %d entries %q, want %d %q", what, len(got.entries), keysOf(got.entries), len(want.entries), keysOf(want.entries))
	}
	if !slices.EqualFunc(got.meta, want.meta, func(a, b [2][]byte) bool {
		return bytes.Equal(a[0], b[0]) && bytes.Equal(a[1], b[1])
	}) {
		tb.Errorf("%s: meta = %q, want %q", what, got.meta, want.meta)
	}
}

// fillForSnapshot gives p entries of every kind and metadata, committed at
// applied.
func fillForSnapshot(tb testing.TB, p *Partition, tag string, applied uint64) {
	tb.Helper()
	es := []Entry{
		ent("plain", tag, 1),
		{Key: []byte("dirty"), Value: []byte(tag), Version: 2, WrittenAt: 5, Flags: FlagDirty},
		{Key: []byte("expired"), Value: []byte(tag), Version: 3, ExpireAt: 1},
		{Key: []byte("expires"), Value: []byte(tag), Version: 4, ExpireAt: 1 << 62},
		{Key: []byte{}, Value: []byte(tag), Version: 5},
		{Key: []byte{0, 0xff, 0}, Value: []byte{}, Version: 6},
		// Larger than the snapshot's write and read buffers.
		{Key: []byte("big"), Value: bytes.Repeat([]byte(tag), 300<<10), Version: 7},
	}
	for i := range 50 {
		es = append(es, ent(fmt.Sprintf("%s-%03d", tag, i), tag, uint64(i)))
	}
	b := p.NewBatch()
	defer b.Close()
	for _, e := range es {
		if err := b.Put(e); err != nil {
			tb.Fatal(err)
		}
	}
	for _, name := range []string{"cfg/a", "cfg/b", "lease"} {
		if err := b.PutMeta(name, []byte(tag+"-"+name)); err != nil {
			tb.Fatal(err)
		}
	}
	if err := b.PutMeta("empty", nil); err != nil {
		tb.Fatal(err)
	}
	if err := b.Commit(applied); err != nil {
		tb.Fatal(err)
	}
}

func writeSnapshot(tb testing.TB, p *Partition) []byte {
	tb.Helper()
	var buf bytes.Buffer
	if _, err := p.WriteSnapshot(&buf); err != nil {
		tb.Fatalf("WriteSnapshot: %v", err)
	}
	return buf.Bytes()
}

func TestSnapshotRestore(t *testing.T) {
	src := openMemDB(t)
	full := mustPartition(t, src, 7)
	fillForSnapshot(t, full, "src", 42)
	// Neighbours must not leak into the snapshot.
	fillForSnapshot(t, mustPartition(t, src, 6), "six", 1)
	fillForSnapshot(t, mustPartition(t, src, 8), "eight", 1)
	empty := mustPartition(t, src, 9)

	tests := []struct {
		name     string
		from     *Partition
		applied  uint64
		existing bool // the target partition already holds other data
	}{
		{"into fresh db", full, 42, false},
		{"replaces existing data", full, 42, true},
		{"empty snapshot clears partition", empty, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			applied, err := tt.from.WriteSnapshot(&buf)
			if err != nil {
				t.Fatal(err)
			}
			if applied != tt.applied {
				t.Fatalf("WriteSnapshot applied = %d, want %d", applied, tt.applied)
			}
			want := dumpPartition(t, tt.from)

			fs := vfs.NewMem()
			dst := openDBOn(t, fs)
			id := tt.from.ID()
			target := mustPartition(t, dst, id)
			var neighbours []partitionDump
			if tt.existing {
				fillForSnapshot(t, target, "old", 100)
				commitPuts(t, target, 101, ent("only-in-target", "x", 101))
				for _, nid := range []uint32{id - 1, id + 1} {
					fillForSnapshot(t, mustPartition(t, dst, nid), fmt.Sprint("n", nid), 3)
					neighbours = append(neighbours, dumpPartition(t, mustPartition(t, dst, nid)))
				}
			}
			if err := target.Restore(bytes.NewReader(buf.Bytes())); err != nil {
				t.Fatalf("Restore: %v", err)
			}
			checkDump(t, "restored", dumpPartition(t, target), want)
			if _, ok, _ := target.Get([]byte("only-in-target"), 0); ok {
				t.Error("entry absent from the snapshot survived Restore")
			}

			// Restore syncs; a reopened DB loads the same partition.
			if err := dst.Close(); err != nil {
				t.Fatal(err)
			}
			dst = openDBOn(t, fs)
			checkDump(t, "reopened", dumpPartition(t, mustPartition(t, dst, id)), want)
			for i, nid := range []uint32{id - 1, id + 1} {
				if tt.existing {
					checkDump(t, fmt.Sprint("neighbour ", nid), dumpPartition(t, mustPartition(t, dst, nid)), neighbours[i])
				}
			}
			// A snapshot of the restored partition is byte for byte the same.
			if got := writeSnapshot(t, mustPartition(t, dst, id)); !bytes.Equal(got, buf.Bytes()) {
				t.Error("snapshot of the restored partition differs from the original")
			}
		})
	}
}

func TestRestoreWrongPartition(t *testing.T) {
	src := mustPartition(t, openMemDB(t), 7)
	fillForSnapshot(t, src, "src", 42)
	snap := writeSnapshot(t, src)
	target := mustPartition(t, openMemDB(t), 8)
	fillForSnapshot(t, target, "old", 5)
	before := dumpPartition(t, target)
	if err := target.Restore(bytes.NewReader(snap)); err == nil {
		t.Fatal("Restore of partition 7's snapshot into partition 8 succeeded")
	}
	checkDump(t, "after failed restore", dumpPartition(t, target), before)
}

func TestRestoreCorrupt(t *testing.T) {
	src := mustPartition(t, openMemDB(t), 7)
	fillForSnapshot(t, src, "src", 42)
	snap := writeSnapshot(t, src)

	// header(44) then the first record: kind(1) keylen(4).
	const firstKeyLen = 8 + 4 + stateLen + 1
	corrupt := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(snap)) }
	tests := []struct {
		name string
		snap []byte
	}{
		{"flip middle byte", corrupt(func(b []byte) []byte { b[len(b)/2] ^= 0xff; return b })},
		{"flip magic", corrupt(func(b []byte) []byte { b[0] ^= 1; return b })},
		{"flip partition id", corrupt(func(b []byte) []byte { b[11] ^= 1; return b })},
		{"flip state", corrupt(func(b []byte) []byte { b[20] ^= 1; return b })},
		{"flip end marker", corrupt(func(b []byte) []byte { b[len(b)-5] ^= 1; return b })},
		{"flip checksum", corrupt(func(b []byte) []byte { b[len(b)-1] ^= 1; return b })},
		{"huge key length", corrupt(func(b []byte) []byte {
			copy(b[firstKeyLen:], []byte{0xff, 0xff, 0xff, 0xff})
			return b
		})},
		{"truncated to half", snap[:len(snap)/2]},
		{"truncated by one byte", snap[:len(snap)-1]},
		{"checksum missing", snap[:len(snap)-4]},
		{"header only", snap[:firstKeyLen-1]},
		{"short header", snap[:10]},
		{"empty", nil},
		{"live marker", liveMarker(t, 7, 42)},
	}
	fs := vfs.NewMem()
	db := openDBOn(t, fs)
	target := mustPartition(t, db, 7)
	fillForSnapshot(t, target, "old", 5)
	before := dumpPartition(t, target)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			allocated := ms.TotalAlloc
			if err := target.Restore(bytes.NewReader(tt.snap)); err == nil {
				t.Fatal("Restore succeeded")
			}
			runtime.ReadMemStats(&ms)
			if n := ms.TotalAlloc - allocated; n > 256<<20 {
				t.Errorf("Restore allocated %d MiB for a %d byte snapshot", n>>20, len(tt.snap))
			}
			checkDump(t, "after failed restore", dumpPartition(t, target), before)
		})
	}
	t.Run("every byte", func(t *testing.T) {
		small := mustPartition(t, openMemDB(t), 7)
		commitPuts(t, small, 3, ent("a", "1", 1), Entry{Key: []byte("b"), Value: []byte("22"), Flags: FlagDirty, ExpireAt: 9})
		b := small.NewBatch()
		if err := b.PutMeta("m", []byte("v")); err != nil {
			t.Fatal(err)
		}
		if err := b.Commit(4); err != nil {
			t.Fatal(err)
		}
		b.Close()
		good := writeSnapshot(t, small)
		for i := range good {
			for _, bit := range []byte{0x01, 0x80} {
				bad := bytes.Clone(good)
				bad[i] ^= bit
				if err := target.Restore(bytes.NewReader(bad)); err == nil {
					t.Fatalf("Restore with byte %d ^ %#x succeeded", i, bit)
				}
			}
		}
		checkDump(t, "after failed restores", dumpPartition(t, target), before)
	})
	// Nothing half-applied reached the disk either.
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	checkDump(t, "reopened", dumpPartition(t, mustPartition(t, openDBOn(t, fs), 7)), before)
}

func liveMarker(tb testing.TB, partition uint32, applied uint64) []byte {
	tb.Helper()
	var buf bytes.Buffer
	if err := WriteLiveMarker(&buf, partition, applied); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

func TestLiveMarker(t *testing.T) {
	src := mustPartition(t, openMemDB(t), 3)
	commitPuts(t, src, 9, ent("k", "v", 9))
	full := writeSnapshot(t, src)
	tests := []struct {
		name    string
		in      []byte
		live    bool
		applied uint64
	}{
		{"marker", liveMarker(t, 3, 77), true, 77},
		{"marker at zero", liveMarker(t, 0, 0), true, 0},
		{"marker at max", liveMarker(t, 0xffffffff, 1<<64-1), true, 1<<64 - 1},
		{"full snapshot", full, false, 0},
		{"short marker", liveMarker(t, 3, 77)[:15], false, 0},
		{"empty", nil, false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			applied, live, rest, err := ReadLiveMarker(bytes.NewReader(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if live != tt.live || applied != tt.applied {
				t.Fatalf("ReadLiveMarker = %d, %v; want %d, %v", applied, live, tt.applied, tt.live)
			}
			// The rest reader yields the whole stream, marker included.
			got, err := io.ReadAll(rest)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tt.in) {
				t.Fatalf("rest = %d bytes, want the %d input bytes", len(got), len(tt.in))
			}
		})
	}
	t.Run("marker size", func(t *testing.T) {
		if n := len(liveMarker(t, 1, 1)); n != 20 {
			t.Fatalf("marker is %d bytes, want 20", n)
		}
	})
}

// snapshotEnv is a DB on a temporary directory with partition 7 and the
// snapshot store of its group.
type snapshotEnv struct {
	dir   string
	db    *DB
	p     *Partition
	store *SnapshotStore
}

func newSnapshotEnv(t *testing.T) *snapshotEnv {
	t.Helper()
	dir := t.TempDir()
	db, err := Open(Config{Dir: filepath.Join(dir, "db"), BlockCacheBytes: 8 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	env := &snapshotEnv{dir: filepath.Join(dir, "snapshots"), db: db, p: mustPartition(t, db, 7)}
	env.store = env.openStore(t)
	return env
}

func (e *snapshotEnv) openStore(t *testing.T) *SnapshotStore {
	t.Helper()
	s, err := e.db.SnapshotStore(70, e.p, e.dir)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var testConfiguration = raft.Configuration{Servers: []raft.Server{
	{Suffrage: raft.Voter, ID: "n1", Address: "127.0.0.1:1"},
	{Suffrage: raft.Voter, ID: "n2", Address: "127.0.0.1:2"},
}}

// createSnapshot writes data as a snapshot at index and term and closes it.
func (e *snapshotEnv) createSnapshot(t *testing.T, index, term uint64, data []byte) string {
	t.Helper()
	sink, err := e.store.Create(1, index, term, testConfiguration, index-1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sink.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := sink.Close(); err != nil {
		t.Fatal(err)
	}
	return sink.ID()
}

func (e *snapshotEnv) files(t *testing.T) []string {
	t.Helper()
	des, err := os.ReadDir(e.dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, de := range des {
		out = append(out, de.Name())
	}
	return out
}

func (e *snapshotEnv) listOne(t *testing.T) *raft.SnapshotMeta {
	t.Helper()
	metas, err := e.store.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(metas) != 1 {
		t.Fatalf("List returned %d snapshots, want 1", len(metas))
	}
	return metas[0]
}

func readSnapshot(t *testing.T, s *SnapshotStore, id string) (*raft.SnapshotMeta, []byte) {
	t.Helper()
	meta, rc, err := s.Open(id)
	if err != nil {
		t.Fatalf("Open(%s): %v", id, err)
	}
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	if err := rc.Close(); err != nil {
		t.Fatal(err)
	}
	return meta, data
}

func TestSnapshotStoreLive(t *testing.T) {
	env := newSnapshotEnv(t)
	if metas, err := env.store.List(); err != nil || len(metas) != 0 {
		t.Fatalf("List on a new store = %v, %v", metas, err)
	}
	fillForSnapshot(t, env.p, "live", 42)
	if err := env.db.Sync(); err != nil {
		t.Fatal(err)
	}
	id := env.createSnapshot(t, 42, 3, liveMarker(t, env.p.ID(), 42))

	meta := env.listOne(t)
	if meta.ID != id || meta.Index != 42 || meta.Term != 3 || meta.ConfigurationIndex != 41 || meta.Version != 1 {
		t.Fatalf("List = %+v", meta)
	}
	if !slices.Equal(meta.Configuration.Servers, testConfiguration.Servers) {
		t.Fatalf("configuration = %+v", meta.Configuration)
	}
	if meta.Size != 20 {
		t.Fatalf("recorded size %d, want the marker's 20", meta.Size)
	}

	// Writes after the snapshot show up when it is opened: the store sends
	// the partition as it is at Open.
	commitPuts(t, env.p, 43, ent("after", "x", 43))
	want := dumpPartition(t, env.p)
	openMeta, data := readSnapshot(t, env.store, id)
	if openMeta.Size != int64(len(data)) {
		t.Fatalf("Open size %d, read %d bytes", openMeta.Size, len(data))
	}
	if openMeta.Index != 42 || openMeta.ID != id {
		t.Fatalf("Open meta = %+v", openMeta)
	}
	if _, live, _, _ := ReadLiveMarker(bytes.NewReader(data)); live {
		t.Fatal("Open returned the live marker, not a full snapshot")
	}
	target := mustPartition(t, openMemDB(t), env.p.ID())
	if err := target.Restore(bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	checkDump(t, "restored from opened live snapshot", dumpPartition(t, target), want)

	// The materialised file is gone once the reader is closed.
	if got := env.files(t); !slices.Equal(got, []string{id + ".snap"}) {
		t.Fatalf("files after Open/Close = %q, want only %s.snap", got, id)
	}
}

func TestSnapshotStoreFull(t *testing.T) {
	env := newSnapshotEnv(t)
	leader := mustPartition(t, openMemDB(t), 7)
	fillForSnapshot(t, leader, "leader", 99)
	snap := writeSnapshot(t, leader)
	id := env.createSnapshot(t, 99, 4, snap)
	if meta := env.listOne(t); meta.ID != id || meta.Size != int64(len(snap)) {
		t.Fatalf("List = %+v, want %s of %d bytes", meta, id, len(snap))
	}
	meta, data := readSnapshot(t, env.store, id)
	if !bytes.Equal(data, snap) {
		t.Fatalf("Open returned %d bytes, not the %d written", len(data), len(snap))
	}
	if meta.Size != int64(len(snap)) || meta.Index != 99 || meta.Term != 4 {
		t.Fatalf("Open meta = %+v", meta)
	}
	if _, _, err := env.store.Open("no-such-snapshot"); err == nil {
		t.Fatal("Open of an unknown id succeeded")
	}
}

func TestSnapshotStoreReplacesOlder(t *testing.T) {
	env := newSnapshotEnv(t)
	first := env.createSnapshot(t, 10, 1, liveMarker(t, 7, 10))
	second := env.createSnapshot(t, 20, 1, liveMarker(t, 7, 20))
	third := env.createSnapshot(t, 30, 2, []byte("opaque snapshot bytes"))
	if meta := env.listOne(t); meta.ID != third || meta.Index != 30 {
		t.Fatalf("List = %+v, want %s", meta, third)
	}
	if got := env.files(t); !slices.Equal(got, []string{third + ".snap"}) {
		t.Fatalf("files = %q, want only %s.snap", got, third)
	}
	for _, id := range []string{first, second} {
		if _, _, err := env.store.Open(id); err == nil {
			t.Fatalf("Open(%s) of a replaced snapshot succeeded", id)
		}
	}
	// The record survives a restart of the store.
	env.store = env.openStore(t)
	if meta := env.listOne(t); meta.ID != third {
		t.Fatalf("List after reopening the store = %+v", meta)
	}
}

func TestSnapshotStoreCancel(t *testing.T) {
	env := newSnapshotEnv(t)
	kept := env.createSnapshot(t, 5, 1, []byte("kept"))
	sink, err := env.store.Create(1, 10, 1, testConfiguration, 9, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sink.Write([]byte("partial")); err != nil {
		t.Fatal(err)
	}
	if got := env.files(t); len(got) != 2 {
		t.Fatalf("files while writing = %q, want the kept snapshot and a temp file", got)
	}
	if err := sink.Cancel(); err != nil {
		t.Fatal(err)
	}
	if got := env.files(t); !slices.Equal(got, []string{kept + ".snap"}) {
		t.Fatalf("files after Cancel = %q, want only %s.snap", got, kept)
	}
	if err := sink.Close(); err != nil {
		t.Fatalf("Close after Cancel: %v", err)
	}
	if meta := env.listOne(t); meta.ID != kept {
		t.Fatalf("List = %+v, want %s", meta, kept)
	}
}

func TestSnapshotStoreVersion(t *testing.T) {
	env := newSnapshotEnv(t)
	for _, v := range []raft.SnapshotVersion{0, 2} {
		if _, err := env.store.Create(v, 1, 1, testConfiguration, 1, nil); err == nil {
			t.Errorf("Create(version %d) succeeded", v)
		}
	}
}

func TestSnapshotStoreRemovesStaleFiles(t *testing.T) {
	env := newSnapshotEnv(t)
	kept := env.createSnapshot(t, 5, 1, []byte("kept"))
	stale := []string{"00000000000000000001-00000000000000000009-1.tmp", "send-123.live"}
	for _, name := range append(stale, "unrelated.txt") {
		if err := os.WriteFile(filepath.Join(env.dir, name), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	env.store = env.openStore(t)
	got := env.files(t)
	if want := []string{kept + ".snap", "unrelated.txt"}; !slices.Equal(got, want) {
		t.Fatalf("files = %q, want %q", got, want)
	}
	if meta := env.listOne(t); meta.ID != kept {
		t.Fatalf("List = %+v, want %s", meta, kept)
	}
}

func TestSnapshotStoreGroupsIsolated(t *testing.T) {
	env := newSnapshotEnv(t)
	other, err := env.db.SnapshotStore(71, mustPartition(t, env.db, 8), filepath.Join(env.dir, "..", "other"))
	if err != nil {
		t.Fatal(err)
	}
	id := env.createSnapshot(t, 5, 1, []byte("mine"))
	if metas, err := other.List(); err != nil || len(metas) != 0 {
		t.Fatalf("other group's List = %+v, %v", metas, err)
	}
	if _, _, err := other.Open(id); err == nil {
		t.Fatal("other group opened this group's snapshot")
	}
	if meta := env.listOne(t); meta.ID != id {
		t.Fatalf("List = %+v", meta)
	}
}

func TestDBMaintenance(t *testing.T) {
	db, err := Open(Config{Dir: t.TempDir(), BlockCacheBytes: 8 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	p := mustPartition(t, db, 1)
	var es []Entry
	var dels [][]byte
	for i := range 2000 {
		e := ent(fmt.Sprintf("k%05d", i), string(bytes.Repeat([]byte{byte(i)}, 1000)), 1)
		es = append(es, e)
		if i%2 == 0 {
			dels = append(dels, e.Key)
		}
	}
	commitPuts(t, p, 1, es...)
	if err := db.Sync(); err != nil {
		t.Fatalf("Sync: %v", err)
	}
	if n := db.DiskUsage(); n == 0 {
		t.Fatal("DiskUsage = 0 after writes")
	}
	commitDeletes(t, p, 2, dels...)
	if err := db.Compact(); err != nil {
		t.Fatalf("Compact: %v", err)
	}
	if n := db.DiskUsage(); n == 0 {
		t.Fatal("DiskUsage = 0 after compaction")
	}
	got := scanAll(t, p)
	if len(got) != 1000 || p.State().Keys != 1000 {
		t.Fatalf("%d entries, Keys %d after compaction; want 1000", len(got), p.State().Keys)
	}
	for _, e := range got {
		i := 0
		fmt.Sscanf(string(e.Key), "k%05d", &i)
		if i%2 == 0 || !equalEntry(e, es[i]) {
			t.Fatalf("entry %q wrong after compaction", e.Key)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

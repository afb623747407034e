package storage

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/hashicorp/raft"
)

// Snapshot stream formats. A full snapshot carries a partition's entries and
// metadata; a live marker only names the applied index, because a local
// snapshot's data is already in this node's Pebble.
const (
	fullMagic = "ELCSNAP1"
	liveMagic = "ELCLIVE1"
)

const (
	recData byte = 'd'
	recMeta byte = 'm'
	recEnd  byte = 'e'
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// WriteSnapshot streams a consistent copy of the partition (entries,
// metadata and state) to w, and returns the applied index it holds. Dirty
// entries and every metadata record are included.
func (p *Partition) WriteSnapshot(w io.Writer) (uint64, error) {
	snap := p.db.pdb.NewSnapshot()
	defer snap.Close()
	st, err := p.snapshotState(snap)
	if err != nil {
		return 0, err
	}
	crc := crc32.New(crcTable)
	bw := bufio.NewWriterSize(io.MultiWriter(w, crc), 256<<10)
	hdr := make([]byte, 0, 8+4+stateLen)
	hdr = append(hdr, fullMagic...)
	hdr = binary.BigEndian.AppendUint32(hdr, p.id)
	hdr = append(hdr, st.encode()...)
	if _, err := bw.Write(hdr); err != nil {
		return 0, err
	}
	metaLower := metaKey(p.id, "")
	spaces := []struct {
		kind         byte
		lower, upper []byte
		skip         []byte
	}{
		{recData, p.prefix, p.end, nil},
		{recMeta, metaLower, prefixEnd(metaLower), p.stateKey},
	}
	var lens [4]byte
	for _, sp := range spaces {
		it, err := snap.NewIter(&pebble.IterOptions{LowerBound: sp.lower, UpperBound: sp.upper})
		if err != nil {
			return 0, err
		}
		for valid := it.First(); valid; valid = it.Next() {
			if sp.skip != nil && bytes.Equal(it.Key(), sp.skip) {
				continue
			}
			v, err := it.ValueAndErr()
			if err != nil {
				it.Close()
				return 0, err
			}
			k := it.Key()[5:]
			bw.WriteByte(sp.kind)
			binary.BigEndian.PutUint32(lens[:], uint32(len(k)))
			bw.Write(lens[:])
			bw.Write(k)
			binary.BigEndian.PutUint32(lens[:], uint32(len(v)))
			bw.Write(lens[:])
			if _, err := bw.Write(v); err != nil {
				it.Close()
				return 0, err
			}
		}
		if err := errors.Join(it.Error(), it.Close()); err != nil {
			return 0, err
		}
	}
	bw.WriteByte(recEnd)
	if err := bw.Flush(); err != nil {
		return 0, err
	}
	_, err = w.Write(binary.BigEndian.AppendUint32(nil, crc.Sum32()))
	return st.Applied, err
}

// Restore replaces the partition's entries, metadata and state with a full
// snapshot from r, in one atomic batch, and syncs it.
func (p *Partition) Restore(r io.Reader) error {
	crc := crc32.New(crcTable)
	br := bufio.NewReaderSize(r, 256<<10)
	tr := io.TeeReader(br, crc)
	hdr := make([]byte, 8+4+stateLen)
	if _, err := io.ReadFull(tr, hdr); err != nil {
		return fmt.Errorf("storage: snapshot header: %w", err)
	}
	if string(hdr[:8]) != fullMagic {
		return fmt.Errorf("%w: snapshot magic %q", ErrCorrupt, hdr[:8])
	}
	if id := binary.BigEndian.Uint32(hdr[8:]); id != p.id {
		return fmt.Errorf("storage: snapshot of partition %d restored into partition %d", id, p.id)
	}
	st, err := decodeState(hdr[12:])
	if err != nil {
		return err
	}
	b := p.db.pdb.NewBatch()
	defer b.Close()
	metaLower := metaKey(p.id, "")
	if err := b.DeleteRange(p.prefix, p.end, nil); err != nil {
		return err
	}
	if err := b.DeleteRange(metaLower, prefixEnd(metaLower), nil); err != nil {
		return err
	}
	var lens [4]byte
	readField := func() ([]byte, error) {
		if _, err := io.ReadFull(tr, lens[:]); err != nil {
			return nil, err
		}
		n := binary.BigEndian.Uint32(lens[:])
		if n <= 1<<20 {
			buf := make([]byte, n)
			_, err := io.ReadFull(tr, buf)
			return buf, err
		}
		// Grow a large field as its bytes arrive, so that a corrupt length
		// cannot allocate gigabytes before the checksum is checked.
		var buf bytes.Buffer
		if _, err := io.CopyN(&buf, tr, int64(n)); err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		return buf.Bytes(), nil
	}
	for {
		kind := []byte{0}
		if _, err := io.ReadFull(tr, kind); err != nil {
			return fmt.Errorf("storage: snapshot record: %w", err)
		}
		if kind[0] == recEnd {
			break
		}
		k, err := readField()
		if err != nil {
			return fmt.Errorf("storage: snapshot key: %w", err)
		}
		v, err := readField()
		if err != nil {
			return fmt.Errorf("storage: snapshot value: %w", err)
		}
		switch kind[0] {
		case recData:
			if _, err := DecodeEntry(k, v); err != nil {
				return err
			}
			err = b.Set(dataKey(p.id, k), v, nil)
		case recMeta:
			err = b.Set(metaKey(p.id, string(k)), v, nil)
		default:
			return fmt.Errorf("%w: snapshot record kind %d", ErrCorrupt, kind[0])
		}
		if err != nil {
			return err
		}
	}
	want := crc.Sum32()
	if _, err := io.ReadFull(br, lens[:]); err != nil {
		return fmt.Errorf("storage: snapshot checksum: %w", err)
	}
	if got := binary.BigEndian.Uint32(lens[:]); got != want {
		return fmt.Errorf("%w: snapshot checksum %08x, computed %08x", ErrCorrupt, got, want)
	}
	if err := b.Set(p.stateKey, st.encode(), nil); err != nil {
		return err
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("storage: partition %d restore: %w", p.id, err)
	}
	if p.db.rows != nil {
		p.db.rows.clear()
	}
	p.state.Store(&st)
	return p.rebuildDirty()
}

// WriteLiveMarker writes the stand-in for a local snapshot at applied: the
// data itself stays in Pebble.
func WriteLiveMarker(w io.Writer, partition uint32, applied uint64) error {
	b := append([]byte(liveMagic), binary.BigEndian.AppendUint32(nil, partition)...)
	_, err := w.Write(binary.BigEndian.AppendUint64(b, applied))
	return err
}

// ReadLiveMarker reports whether r starts with a live marker, returning the
// applied index it names. The returned reader yields the whole stream.
func ReadLiveMarker(r io.Reader) (applied uint64, live bool, rest io.Reader, err error) {
	br := bufio.NewReader(r)
	head, err := br.Peek(len(liveMagic) + 12)
	if err != nil && !errors.Is(err, io.EOF) {
		return 0, false, br, err
	}
	if len(head) == len(liveMagic)+12 && string(head[:len(liveMagic)]) == liveMagic {
		return binary.BigEndian.Uint64(head[len(liveMagic)+4:]), true, br, nil
	}
	return 0, false, br, nil
}

// SnapshotStore is a raft.SnapshotStore for one partition's Raft group.
//
// A local snapshot (the FSM persisting a live marker) costs a few bytes: the
// data is already in this node's Pebble, which is synced before the marker
// is taken. When Raft opens such a snapshot to send it to a follower, the
// store materialises a full snapshot of the partition as it is at that
// moment, which may be newer than the snapshot's index; the state machine
// skips replayed commands at or below its own applied index, so that is
// safe. Snapshots received from a leader are kept as full files until a
// newer snapshot replaces them.
type SnapshotStore struct {
	db    *DB
	group uint64
	part  *Partition
	dir   string

	mu sync.Mutex
}

var _ raft.SnapshotStore = (*SnapshotStore)(nil)

// SnapshotStore returns the snapshot store of a Raft group whose state
// machine is partition p. Files go under dir.
func (d *DB) SnapshotStore(group uint64, p *Partition, dir string) (*SnapshotStore, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("storage: snapshot dir: %w", err)
	}
	// Leftovers of an interrupted write or send are garbage.
	for _, pat := range []string{"*.tmp", "*.live"} {
		files, _ := filepath.Glob(filepath.Join(dir, pat))
		for _, f := range files {
			os.Remove(f)
		}
	}
	return &SnapshotStore{db: d, group: group, part: p, dir: dir}, nil
}

// Create starts a new snapshot.
func (s *SnapshotStore) Create(version raft.SnapshotVersion, index, term uint64, configuration raft.Configuration,
	configurationIndex uint64, _ raft.Transport) (raft.SnapshotSink, error) {
	if version != 1 {
		return nil, fmt.Errorf("storage: unsupported snapshot version %d", version)
	}
	id := fmt.Sprintf("%020d-%020d-%d", term, index, time.Now().UnixNano())
	f, err := os.Create(filepath.Join(s.dir, id+".tmp"))
	if err != nil {
		return nil, fmt.Errorf("storage: create snapshot: %w", err)
	}
	meta := raft.SnapshotMeta{Version: version, ID: id, Index: index, Term: term,
		Configuration: configuration, ConfigurationIndex: configurationIndex}
	return &snapshotSink{store: s, f: f, meta: meta}, nil
}

// List returns the latest snapshot, if any.
func (s *SnapshotStore) List() ([]*raft.SnapshotMeta, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	metas, err := s.metasLocked()
	if err != nil || len(metas) == 0 {
		return nil, err
	}
	return metas[:1], nil
}

// metasLocked returns every recorded snapshot, newest first.
func (s *SnapshotStore) metasLocked() ([]*raft.SnapshotMeta, error) {
	lower := groupPrefix(spaceSnapshot, s.group)
	it, err := s.db.pdb.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: prefixEnd(lower)})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var out []*raft.SnapshotMeta
	for valid := it.First(); valid; valid = it.Next() {
		m := new(raft.SnapshotMeta)
		if err := json.Unmarshal(it.Value(), m); err != nil {
			return nil, fmt.Errorf("%w: snapshot meta: %v", ErrCorrupt, err)
		}
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID > out[j].ID })
	return out, it.Error()
}

// Open opens a snapshot for reading. A live marker is expanded into a full
// snapshot of the partition as it is now.
func (s *SnapshotStore) Open(id string) (*raft.SnapshotMeta, io.ReadCloser, error) {
	raw, ok, err := s.db.get(groupKey(spaceSnapshot, s.group, []byte(id)))
	if err != nil {
		return nil, nil, err
	}
	if !ok {
		return nil, nil, fmt.Errorf("storage: snapshot %s not found", id)
	}
	meta := new(raft.SnapshotMeta)
	if err := json.Unmarshal(raw, meta); err != nil {
		return nil, nil, fmt.Errorf("%w: snapshot meta: %v", ErrCorrupt, err)
	}
	f, err := os.Open(filepath.Join(s.dir, id+".snap"))
	if err != nil {
		return nil, nil, fmt.Errorf("storage: open snapshot: %w", err)
	}
	head := make([]byte, len(liveMagic))
	n, _ := io.ReadFull(f, head)
	if string(head[:n]) != liveMagic {
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			f.Close()
			return nil, nil, err
		}
		return meta, f, nil
	}
	f.Close()
	// Materialise the live partition into a temporary file so Raft knows the
	// size before it sends.
	tmp, err := os.CreateTemp(s.dir, "send-*.live")
	if err != nil {
		return nil, nil, err
	}
	if _, err := s.part.WriteSnapshot(tmp); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return nil, nil, err
	}
	size, err := tmp.Seek(0, io.SeekCurrent)
	if err == nil {
		_, err = tmp.Seek(0, io.SeekStart)
	}
	if err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return nil, nil, err
	}
	meta.Size = size
	return meta, &removeOnClose{File: tmp}, nil
}

// commit records a finished snapshot and drops older ones.
func (s *SnapshotStore) commit(meta raft.SnapshotMeta) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	raw, err := json.Marshal(meta)
	if err != nil {
		return err
	}
	if err := s.db.pdb.Set(groupKey(spaceSnapshot, s.group, []byte(meta.ID)), raw, pebble.Sync); err != nil {
		return fmt.Errorf("storage: record snapshot: %w", err)
	}
	metas, err := s.metasLocked()
	if err != nil {
		return err
	}
	for _, m := range metas {
		if m.ID == meta.ID {
			continue
		}
		if err := s.db.pdb.Delete(groupKey(spaceSnapshot, s.group, []byte(m.ID)), pebble.NoSync); err != nil {
			return err
		}
		os.Remove(filepath.Join(s.dir, m.ID+".snap"))
	}
	return nil
}

type snapshotSink struct {
	store *SnapshotStore
	f     *os.File
	meta  raft.SnapshotMeta
	done  bool
}

func (k *snapshotSink) ID() string { return k.meta.ID }

func (k *snapshotSink) Write(p []byte) (int, error) {
	n, err := k.f.Write(p)
	k.meta.Size += int64(n)
	return n, err
}

func (k *snapshotSink) Close() error {
	if k.done {
		return nil
	}
	k.done = true
	tmp := k.f.Name()
	if err := errors.Join(k.f.Sync(), k.f.Close()); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("storage: write snapshot: %w", err)
	}
	if err := os.Rename(tmp, strings.TrimSuffix(tmp, ".tmp")+".snap"); err != nil {
		return err
	}
	return k.store.commit(k.meta)
}

func (k *snapshotSink) Cancel() error {
	if k.done {
		return nil
	}
	k.done = true
	k.f.Close()
	return os.Remove(k.f.Name())
}

type removeOnClose struct{ *os.File }

func (r *removeOnClose) Close() error {
	err := r.File.Close()
	os.Remove(r.File.Name())
	return err
}

// EachLive calls fn with every live entry of the partition (tombstones and
// entries expired at now left out), in key order, all from one snapshot of
// the store, and returns the applied index that snapshot holds; start, if
// set, gets that index before the first entry. It stops at fn's first
// error.
func (p *Partition) EachLive(now int64, start func(applied uint64), fn func(Entry) error) (uint64, error) {
	snap := p.db.pdb.NewSnapshot()
	defer snap.Close()
	st, err := p.snapshotState(snap)
	if err != nil {
		return 0, err
	}
	if start != nil {
		start(st.Applied)
	}
	it, err := snap.NewIter(&pebble.IterOptions{LowerBound: p.prefix, UpperBound: p.end})
	if err != nil {
		return 0, err
	}
	defer it.Close()
	for valid := it.First(); valid; valid = it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			return 0, err
		}
		e, err := DecodeEntry(append([]byte(nil), it.Key()[5:]...), v)
		if err != nil {
			return 0, err
		}
		if e.Tombstone() || e.Expired(now) {
			continue
		}
		e.Value = append([]byte(nil), e.Value...)
		if err := fn(e); err != nil {
			return 0, err
		}
	}
	return st.Applied, it.Error()
}

// snapshotState is the partition's state in snap (zero if it has none).
func (p *Partition) snapshotState(snap *pebble.Snapshot) (State, error) {
	raw, closer, err := snap.Get(p.stateKey)
	if errors.Is(err, pebble.ErrNotFound) {
		return State{}, nil
	}
	if err != nil {
		return State{}, err
	}
	defer closer.Close()
	return decodeState(raw)
}

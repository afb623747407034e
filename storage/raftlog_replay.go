package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/hashicorp/raft"
)

// Opening the log engine: segments are read in order into the in-memory
// index; a torn tail of the last segment is cut off.

// replay reads every segment in order into the index.
func (e *logEngine) replay() error {
	names, err := e.cfg.fs.List(e.cfg.dir)
	if err != nil {
		return fmt.Errorf("storage: raft log: %w", err)
	}
	var seqs []uint64
	for _, name := range names {
		if strings.HasSuffix(name, ".tmp") {
			// A rewrite of a torn segment that did not finish: the
			// segment itself is still there.
			if err := e.cfg.fs.Remove(e.cfg.fs.PathJoin(e.cfg.dir, name)); err != nil {
				return fmt.Errorf("storage: raft log: %w", err)
			}
			continue
		}
		seq, ok := strings.CutSuffix(name, ".rlog")
		if !ok {
			continue
		}
		n, err := strconv.ParseUint(seq, 10, 64)
		if err != nil {
			return fmt.Errorf("%w: raft log: file %q", ErrCorrupt, name)
		}
		seqs = append(seqs, n)
	}
	slices.Sort(seqs)
	for i, seq := range seqs {
		if err := e.replaySegment(seq, i == len(seqs)-1); err != nil {
			return err
		}
	}
	return nil
}

// replaySegment reads segment seq. A torn tail is cut off if the segment
// is the last one and is corruption otherwise.
func (e *logEngine) replaySegment(seq uint64, last bool) error {
	path := e.cfg.fs.PathJoin(e.cfg.dir, segmentName(seq))
	f, err := e.cfg.fs.Open(path)
	if err != nil {
		return fmt.Errorf("storage: raft log: %w", err)
	}
	raw, err := io.ReadAll(f)
	if err != nil {
		f.Close()
		return fmt.Errorf("storage: raft log: read %s: %w", path, err)
	}
	s := &segment{seq: seq, f: f}
	e.segs = append(e.segs, s)
	e.bySeq[seq] = s
	off := 0
	for off < len(raw) {
		payload, ok := readRecord(raw[off:])
		if !ok {
			break
		}
		if err := e.applyRecord(s, int64(off+recHeader), payload); err != nil {
			return fmt.Errorf("%w (segment %d, offset %d)", err, seq, off)
		}
		off += recHeader + len(payload)
	}
	s.size = int64(off)
	if off == len(raw) {
		return nil
	}
	if !last {
		return fmt.Errorf("%w: raft log: bad record in segment %d at offset %d of %d", ErrCorrupt, seq, off, len(raw))
	}
	// A torn tail: keep the valid prefix, through a synced copy renamed
	// over the segment.
	tmp := path + ".tmp"
	w, err := e.cfg.fs.Create(tmp, vfs.WriteCategoryUnspecified)
	if err == nil {
		_, err = w.Write(raw[:off])
		err = errors.Join(err, w.Sync(), w.Close())
	}
	if err == nil {
		err = e.cfg.fs.Rename(tmp, path)
	}
	if err == nil {
		err = e.syncDir()
	}
	if err != nil {
		return fmt.Errorf("storage: raft log: cut torn segment %d: %w", seq, err)
	}
	return nil
}

// readRecord returns the payload of the record at the start of b, or false
// if b does not start with a whole, valid record.
func readRecord(b []byte) ([]byte, bool) {
	if len(b) < recHeader {
		return nil, false
	}
	n := binary.LittleEndian.Uint32(b[4:8])
	if uint64(n) > uint64(len(b)-recHeader) {
		return nil, false
	}
	if crc32.Checksum(b[4:recHeader+int(n)], crcTable) != binary.LittleEndian.Uint32(b[:4]) {
		return nil, false
	}
	return b[recHeader : recHeader+int(n)], true
}

// applyRecord applies a record read from segment s at payload offset off
// to the index.
func (e *logEngine) applyRecord(s *segment, off int64, p []byte) error {
	d := logDecoder{b: p}
	kind := d.byte()
	group := d.uvarint()
	switch kind {
	case recEntries:
		count := d.uvarint()
		for i := uint64(0); i < count && d.err == nil; i++ {
			start := len(p) - len(d.b)
			enc := d.bytes()
			if d.err != nil {
				break
			}
			var l raft.Log
			if err := decodeLog(enc, &l); err != nil {
				return err
			}
			e.setLocLocked(group, l.Index, &logLoc{seg: s.seq, off: off + int64(start+uvarintLen(uint64(len(enc)))), n: len(enc)})
		}
	case recDelete:
		lo, hi := d.uvarint(), d.uvarint()
		if d.err == nil {
			e.deleteLocked(group, lo, hi)
		}
	default:
		return fmt.Errorf("%w: raft log: unknown record kind %d", ErrCorrupt, kind)
	}
	if d.err == nil && len(d.b) != 0 {
		return fmt.Errorf("%w: raft log: %d trailing bytes in a record", ErrCorrupt, len(d.b))
	}
	return d.err
}

func uvarintLen(v uint64) int {
	var b [binary.MaxVarintLen64]byte
	return binary.PutUvarint(b[:], v)
}

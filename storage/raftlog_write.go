package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"slices"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/hashicorp/raft"
)

// Writing the log engine: every StoreLogs and DeleteRange of every group
// is one record at the end of the active segment, written with one
// write(2), and indexed.

// startSegmentLocked creates segment seq and makes it the one written.
// The segment written so far is synced first, so that only the last
// segment can ever be torn.
func (e *logEngine) startSegmentLocked(seq uint64) error {
	if n := len(e.segs); n > 0 {
		if err := e.segs[n-1].f.SyncData(); err != nil {
			return fmt.Errorf("storage: raft log: sync segment %d: %w", e.segs[n-1].seq, err)
		}
	}
	f, err := e.cfg.fs.Create(e.cfg.fs.PathJoin(e.cfg.dir, segmentName(seq)), vfs.WriteCategoryUnspecified)
	if err != nil {
		return fmt.Errorf("storage: raft log: %w", err)
	}
	if err := e.syncDir(); err != nil {
		f.Close()
		return fmt.Errorf("storage: raft log: %w", err)
	}
	s := &segment{seq: seq, f: f}
	e.segs = append(e.segs, s)
	e.bySeq[seq] = s
	return nil
}

func (e *logEngine) syncDir() error {
	d, err := e.cfg.fs.OpenDir(e.cfg.dir)
	if err != nil {
		return err
	}
	return errors.Join(d.Sync(), d.Close())
}

// appendLocked writes one record with the given payload at the end of the
// log and returns the segment and the payload's offset in it. hdr is the
// record's buffer, payload its part after the header. hold is true for a
// record of REPLICATED entries only: the broken mode of
// breakReplicatedForTest keeps such records in memory.
func (e *logEngine) appendLocked(payload []byte, hdr []byte, hold bool) (*segment, int64, error) {
	if e.closed {
		return nil, 0, ErrClosed
	}
	if e.err != nil {
		return nil, 0, e.err
	}
	s := e.segs[len(e.segs)-1]
	if s.size > 0 && s.size+int64(len(payload))+recHeader > e.cfg.segmentBytes {
		if err := e.flushHeldLocked(); err != nil {
			return nil, 0, err
		}
		if err := e.startSegmentLocked(s.seq + 1); err != nil {
			e.err = err
			return nil, 0, err
		}
		s = e.segs[len(e.segs)-1]
		e.kickSync() // the old segment may be deleted later
	}
	binary.LittleEndian.PutUint32(hdr[4:8], uint32(len(payload)))
	crc := crc32.Update(crc32.Checksum(hdr[4:8], crcTable), crcTable, payload)
	binary.LittleEndian.PutUint32(hdr[:4], crc)
	rec := hdr[:recHeader+len(payload)]
	if hold && e.broken {
		if len(e.held) == 0 {
			e.heldSince = time.Now()
		}
		e.held = append(e.held, rec...)
	} else {
		if err := e.flushHeldLocked(); err != nil {
			return nil, 0, err
		}
		// One write(2) per record: header and payload are contiguous.
		if _, err := s.f.Write(rec); err != nil {
			e.err = fmt.Errorf("storage: raft log: write segment %d: %w", s.seq, err)
			return nil, 0, e.err
		}
	}
	off := s.size + recHeader
	s.size += int64(len(rec))
	e.pos += uint64(len(rec))
	return s, off, nil
}

// breakReplicatedForTest turns on (or off) a broken mode for the fault
// suite's self-test: records of REPLICATED entries stay in memory, as an
// unsynced Pebble batch does, for up to a second or until a synced record
// follows, so they are acknowledged before the operating system has them
// and a kill -9 loses them.
func (e *logEngine) breakReplicatedForTest(on bool) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.broken = on
	return e.flushHeldLocked()
}

// flushHeldLocked writes the records held by the broken mode.
func (e *logEngine) flushHeldLocked() error {
	if len(e.held) == 0 || e.err != nil {
		return e.err
	}
	s := e.segs[len(e.segs)-1]
	if _, err := s.f.Write(e.held); err != nil {
		e.err = fmt.Errorf("storage: raft log: write segment %d: %w", s.seq, err)
		return e.err
	}
	e.held = e.held[:0]
	return nil
}

// storeLogs appends logs to group's log and returns the write position
// after them, to wait for with waitSynced.
func (e *logEngine) storeLogs(group uint64, logs []*raft.Log) (uint64, error) {
	rec := encodeEntries(group, logs)
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.writeEntriesLocked(group, logs, rec); err != nil {
		return 0, err
	}
	return e.pos, nil
}

// entriesRecord is an entries record being written: the header's room,
// then the payload (kind, group, count, and each entry with its length in
// front), and where each entry's encoding is in the payload.
type entriesRecord struct {
	buf   []byte
	spans []entrySpan
}

type entrySpan struct{ start, n int }

func encodeEntries(group uint64, logs []*raft.Log) entriesRecord {
	size := recHeader + 1 + 2*binary.MaxVarintLen64
	for _, l := range logs {
		size += binary.MaxVarintLen64 + logEncodedMax(l)
	}
	buf := make([]byte, recHeader, size)
	buf = append(buf, recEntries)
	buf = binary.AppendUvarint(buf, group)
	buf = binary.AppendUvarint(buf, uint64(len(logs)))
	spans := make([]entrySpan, len(logs))
	for i, l := range logs {
		// The entry is encoded after room for the longest length
		// prefix, then moved down to just after the actual one.
		lenAt := len(buf)
		buf = append(buf, make([]byte, binary.MaxVarintLen64)...)
		start := len(buf)
		buf = appendLog(buf, l)
		n := len(buf) - start
		k := binary.PutUvarint(buf[lenAt:], uint64(n))
		buf = append(buf[:lenAt+k], buf[start:]...)
		spans[i] = entrySpan{lenAt + k - recHeader, n}
	}
	return entriesRecord{buf: buf, spans: spans}
}

// writeEntriesLocked writes rec, the encoding of logs, and indexes them.
func (e *logEngine) writeEntriesLocked(group uint64, logs []*raft.Log, rec entriesRecord) error {
	payload := rec.buf[recHeader:]
	// The cache keeps its own copy: a writer may change what it was
	// given (Pebble's MemFS does, in tests, to catch callers that rely on
	// it), and one copy of the record costs less than one per entry.
	cache := slices.Clone(payload)
	s, off, err := e.appendLocked(payload, rec.buf, allReplicated(logs))
	if err != nil {
		return err
	}
	for i, l := range logs {
		sp := rec.spans[i]
		data := cache[sp.start : sp.start+sp.n : sp.start+sp.n]
		loc := &logLoc{seg: s.seq, off: off + int64(sp.start), n: sp.n, data: data}
		e.setLocLocked(group, l.Index, loc)
		e.cacheLocked(loc)
	}
	return nil
}

// logEncodedMax is an upper bound of len(appendLog(nil, l)).
func logEncodedMax(l *raft.Log) int {
	return 2 + 3*binary.MaxVarintLen64 + 1 + 2*binary.MaxVarintLen64 + len(l.Data) + len(l.Extensions)
}

// cacheLocked adds loc's data to the cache, evicting the oldest entries
// past the budget.
func (e *logEngine) cacheLocked(loc *logLoc) {
	e.fifo = append(e.fifo, cached{loc, loc.n})
	e.cacheN += int64(loc.n)
	drop := 0
	for e.cacheN > e.cfg.cacheBytes && drop < len(e.fifo) {
		c := e.fifo[drop]
		c.loc.data = nil
		e.cacheN -= int64(c.n)
		drop++
	}
	e.fifo = e.fifo[drop:]
}

// deleteRange removes group's entries in [lo, hi]. The record is not
// synced by itself: a later synced record syncs it, and a lost deletion
// brings back entries Raft had deleted, which it handles (a compacted
// prefix reappears below the snapshot; a truncated suffix is what a
// follower had before the append that truncated it, whose own entries
// are then lost too).
func (e *logEngine) deleteRange(group, lo, hi uint64) error {
	if lo > hi {
		return nil
	}
	buf := make([]byte, recHeader, recHeader+1+3*binary.MaxVarintLen64)
	buf = append(buf, recDelete)
	buf = binary.AppendUvarint(buf, group)
	buf = binary.AppendUvarint(buf, lo)
	buf = binary.AppendUvarint(buf, hi)
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, _, err := e.appendLocked(buf[recHeader:], buf, false); err != nil {
		return err
	}
	e.deleteLocked(group, lo, hi)
	return nil
}

package storage

import (
	"errors"
	"slices"
	"sort"

	"github.com/hashicorp/raft"
)

// Segment collection: the oldest segment is deleted once none of its
// entries is live; live entries that pin it are written again at the end
// of the log.

// collect deletes the oldest segments while none of their entries is
// live, after copying the live entries of the oldest to the end of the
// log when there are more than maxSegments segments.
func (e *logEngine) collect() {
	e.mu.Lock()
	relocate := len(e.segs) > e.cfg.maxSegments && e.segs[0].live > 0
	e.mu.Unlock()
	if relocate {
		if err := e.relocateOldest(); err != nil {
			return // the sticky error is set; nothing is deleted
		}
		// The copies are durable before the originals go. collect runs
		// on the sync loop, so it syncs itself rather than wait for it.
		e.syncOnce()
		e.smu.Lock()
		err := e.syncErr
		e.smu.Unlock()
		if err != nil {
			return
		}
	}
	for {
		e.mu.Lock()
		if len(e.segs) < 2 || e.segs[0].live > 0 {
			e.mu.Unlock()
			return
		}
		s := e.segs[0]
		e.segs = e.segs[1:]
		delete(e.bySeq, s.seq)
		e.mu.Unlock()
		e.rmu.Lock()
		err := s.f.Close()
		s.f = nil
		e.rmu.Unlock()
		if err = errors.Join(err, e.cfg.fs.Remove(e.cfg.fs.PathJoin(e.cfg.dir, segmentName(s.seq)))); err != nil {
			return
		}
	}
}

// relocateOldest writes the live entries of the oldest segment again at
// the end of the log.
func (e *logEngine) relocateOldest() error {
	e.mu.Lock()
	oldest := e.segs[0]
	live := make(map[uint64][]uint64) // group -> indexes
	for gid, g := range e.groups {
		for i, loc := range g.locs {
			if loc.seg == oldest.seq {
				live[gid] = append(live[gid], i)
			}
		}
	}
	e.mu.Unlock()
	gids := make([]uint64, 0, len(live))
	for gid := range live {
		gids = append(gids, gid)
	}
	sort.Slice(gids, func(i, j int) bool { return gids[i] < gids[j] })
	for _, gid := range gids {
		idx := live[gid]
		slices.Sort(idx)
		logs := make([]*raft.Log, 0, len(idx))
		for _, i := range idx {
			l := new(raft.Log)
			if err := e.getLog(gid, i, l); errors.Is(err, raft.ErrLogNotFound) {
				continue // deleted meanwhile
			} else if err != nil {
				return err
			}
			logs = append(logs, l)
		}
		if len(logs) == 0 {
			continue
		}
		if err := e.rewrite(gid, oldest.seq, logs); err != nil {
			return err
		}
	}
	return nil
}

// rewrite appends again the entries of logs that are still in segment
// from. The check and the write are one step under mu, so a concurrent
// StoreLogs or DeleteRange of the same index always wins.
func (e *logEngine) rewrite(group, from uint64, logs []*raft.Log) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	g := e.groups[group]
	keep := logs[:0]
	for _, l := range logs {
		if loc := g.locs[l.Index]; loc != nil && loc.seg == from {
			keep = append(keep, l)
		}
	}
	if len(keep) == 0 {
		return nil
	}
	return e.writeEntriesLocked(group, keep, encodeEntries(group, keep))
}

package node

import (
	"context"
	"fmt"
	"time"

	"github.com/elcache/elcache/internal/request"
	cachev1 "github.com/elcache/elcache/proto/cache/v1"
	peerv1 "github.com/elcache/elcache/proto/peer/v1"
	"github.com/elcache/elcache/storage/sqlstore"
)

// Write modes against the backing database (DESIGN.md "In front of a
// database"). Every database row carries the version of the cache write
// that produced it, a Raft index of the key's partition, so rows only move
// forward and replays are no-ops. modeWrite (write.go) hands a write to
// its mode:
//
//   - WRITE_THROUGH: fence the key (INVALIDATE at index v: readers miss,
//     refills of older rows are refused), write the row at version v, then
//     store the value at v (FILL). The value is never visible before the
//     database has it; a failed database write leaves only the fence.
//   - WRITE_AROUND: fence the key at v, write the row at v; the next read
//     refills.
//   - WRITE_BACK: the value is stored dirty and flushed later (writeBack,
//     writeback.go).
//
// Refills and the fence that guards them are in refill.go.

// writeToDatabase is WRITE_THROUGH and WRITE_AROUND: fence, write the
// rows, and (write-through) store the values. Its commands are SYNC
// (request.SyncOnly).
func (n *Node) writeToDatabase(ctx context.Context, p *partition, now time.Time, w request.Write, ops []*peerv1.Op) (*peerv1.Result, error) {
	fences := make([]*peerv1.Op, len(ops))
	fenceUntil := now.Add(fenceTTL).UnixNano()
	for i, op := range ops {
		fences[i] = &peerv1.Op{Kind: peerv1.Op_KIND_INVALIDATE, Key: op.Key, ExpireAt: fenceUntil}
	}
	// A retry under the same idempotency key gets the first attempt's
	// versions back and writes the same rows again: a no-op in the
	// database if they are there.
	res, err := n.writeAsked(ctx, p, now, w.IdempotencyKey, cachev1.Durability_DURABILITY_SYNC, fences, ops)
	if err != nil {
		return nil, err
	}
	rows := make([]sqlstore.Row, len(ops))
	for i, op := range ops {
		rows[i] = sqlstore.Row{Key: op.Key, Value: op.Value, Version: res.Ops[i].Version,
			Deleted: op.Kind == peerv1.Op_KIND_DELETE, IdempotencyKey: w.IdempotencyKey}
	}
	if err := n.backend.Write(ctx, rows); err != nil {
		return nil, fmt.Errorf("partition %d: %w", p.id, err)
	}
	if w.Mode == cachev1.WriteMode_WRITE_MODE_WRITE_THROUGH {
		var fills []*peerv1.Op
		for i, op := range ops {
			if op.Kind == peerv1.Op_KIND_PUT {
				fills = append(fills, &peerv1.Op{Kind: peerv1.Op_KIND_FILL, Key: op.Key, Value: op.Value,
					IfVersion: rows[i].Version, ExpireAt: op.ExpireAt, FillStartedAt: now.UnixNano()})
			}
		}
		if len(fills) > 0 {
			// The database has the rows: the write is acknowledged even if
			// this fails (a later read refills from the database).
			if _, err := n.write(ctx, p, now, "", cachev1.Durability_DURABILITY_SYNC, fills); err != nil {
				p.log.Debug("write-through: storing the written value failed", "err", err)
			}
		}
	}
	return res, nil
}

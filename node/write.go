package node

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/cespare/xxhash/v2"
	"google.golang.org/protobuf/proto"

	"github.com/elcache/elcache/internal/request"
	cachev1 "github.com/elcache/elcache/proto/cache/v1"
	peerv1 "github.com/elcache/elcache/proto/peer/v1"
)

// The write path: modeWrite sends a write to its mode (writethrough.go,
// writeback.go; CACHE_ONLY writes go straight on), and every mode ends in
// write: the request's fingerprint (so that a retry under the same
// idempotency key can be told from another request), eviction victims
// when the node is over its capacity, and the proposal to the partition's
// Raft group (partition.propose).

// modeWrite applies puts and deletes (KIND_PUT and KIND_DELETE ops, all of
// partition p) in write mode w.Mode, and returns one result per op.
func (n *Node) modeWrite(ctx context.Context, p *partition, now time.Time, w request.Write, ops []*peerv1.Op) (*peerv1.Result, error) {
	switch w.Mode {
	case cachev1.WriteMode_WRITE_MODE_WRITE_BACK:
		return n.writeBack(ctx, p, now, w, ops)
	case cachev1.WriteMode_WRITE_MODE_WRITE_THROUGH, cachev1.WriteMode_WRITE_MODE_WRITE_AROUND:
		return n.writeToDatabase(ctx, p, now, w, ops)
	default:
		return n.write(ctx, p, now, w.IdempotencyKey, w.Durability, ops)
	}
}

// write proposes ops on p at durability d, adding eviction victims when
// the node is over its capacity so that writes pay for the space they
// take.
func (n *Node) write(ctx context.Context, p *partition, now time.Time, idemKey string, d cachev1.Durability, ops []*peerv1.Op) (*peerv1.Result, error) {
	return n.writeAsked(ctx, p, now, idemKey, d, ops, ops)
}

// writeAsked is write of ops for a client that asked for asked: the ops
// proposed may differ from what the client asked for (write modes), and
// a request with an idempotency key carries the fingerprint of what it
// asked for, so that a retry can be told from another request. The
// durability is not part of the fingerprint: a retry that asks for
// another one is still the same request. Eviction victims ride in the
// command at its durability; losing them with it loses nothing.
func (n *Node) writeAsked(ctx context.Context, p *partition, now time.Time, idemKey string, d cachev1.Durability, ops, asked []*peerv1.Op) (*peerv1.Result, error) {
	var incoming uint64
	for _, op := range ops {
		incoming += uint64(len(op.Key) + len(op.Value))
	}
	cmd := &peerv1.Command{ProposedAt: now.UnixNano(), IdempotencyKey: idemKey, Ops: ops}
	if idemKey != "" {
		cmd.Fingerprint = fingerprint(asked)
	}
	cmd.Ops = append(cmd.Ops, n.victims(p, incoming)...)
	res, err := p.propose(ctx, cmd, d)
	if err != nil {
		return nil, err
	}
	if res.IdempotencyConflict {
		return nil, invalid("options.idempotency_key %q was already used for a different request", idemKey)
	}
	if len(res.Ops) < len(ops) {
		return nil, fmt.Errorf("node: partition %d returned %d results for %d ops", p.id, len(res.Ops), len(ops))
	}
	res.Ops = res.Ops[:len(ops)]
	return res, nil
}

// fingerprint hashes what a client asked for, so that a retry under the same
// idempotency key can be told from a different request. Expiry instants are
// left out: a retry computes them anew.
func fingerprint(ops []*peerv1.Op) uint64 {
	h := xxhash.New()
	for _, op := range ops {
		c := proto.Clone(op).(*peerv1.Op)
		c.ExpireAt = 0
		if c.Mutation != nil {
			c.Mutation.ExpireAt = 0
		}
		b, _ := proto.MarshalOptions{Deterministic: true}.Marshal(c)
		h.Write(binary.BigEndian.AppendUint32(nil, uint32(len(b))))
		h.Write(b)
	}
	return h.Sum64()
}

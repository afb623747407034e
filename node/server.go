package node

import (
	"context"
	"encoding/binary"
	"fmt"
	"github.com/cespare/xxhash/v2"
	"google.golang.org/protobuf/proto"
	"sync"
	"time"

	cachev1 "github.com/elcache/elcache/proto/cache/v1"
	peerv1 "github.com/elcache/elcache/proto/peer/v1"
	"github.com/elcache/elcache/storage"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// cacheServer implements cache.v1.Cache on a Node.
type cacheServer struct {
	cachev1.UnimplementedCacheServer
	n *Node
}

func (s *cacheServer) partitionOf(key []byte) *partition {
	return s.n.parts[s.n.ring.Partition(key)]
}

// Get reads one key.
func (s *cacheServer) Get(ctx context.Context, req *cachev1.GetRequest) (*cachev1.GetResponse, error) {
	if err := s.n.check.key("key", req.Key); err != nil {
		return nil, toStatus(err)
	}
	o, err := s.n.check.readOptions(req.Options)
	if err != nil {
		return nil, toStatus(err)
	}
	p := s.partitionOf(req.Key)
	if err := p.readReady(ctx, o); err != nil {
		return nil, toStatus(err)
	}
	resp, err := s.n.get(p, req.Key, o.level)
	return resp, toStatus(err)
}

// get reads key from a partition that is ready to serve at level.
func (n *Node) get(p *partition, key []byte, level cachev1.Consistency) (*cachev1.GetResponse, error) {
	meta := p.readMeta(n.cfg.NodeName, level)
	e, ok, err := p.store.Get(key, time.Now().UnixNano())
	if err != nil {
		return nil, err
	}
	n.stats.gets.Add(1)
	if !ok {
		n.stats.misses.Add(1)
		return &cachev1.GetResponse{Meta: meta}, nil
	}
	n.stats.hits.Add(1)
	n.recent.Touch(p.id, key)
	return &cachev1.GetResponse{Found: true, Entry: entryProto(e, false), Meta: meta}, nil
}

func entryProto(e storage.Entry, keysOnly bool) *cachev1.Entry {
	out := &cachev1.Entry{Key: e.Key, Version: e.Version, Dirty: e.Dirty()}
	if !keysOnly {
		out.Value = e.Value
	}
	if e.ExpireAt != 0 {
		out.ExpiresAt = timestamppb.New(time.Unix(0, e.ExpireAt))
	}
	return out
}

// expireAt converts a TTL into an absolute expiry on this (leader's) clock.
func expireAt(now time.Time, ttl time.Duration) int64 {
	if ttl == 0 {
		return 0
	}
	return now.Add(ttl).UnixNano()
}

// Put writes one key.
func (s *cacheServer) Put(ctx context.Context, req *cachev1.PutRequest) (*cachev1.PutResponse, error) {
	n := s.n
	w, err := n.check.write(req.Key, req.Value, req.Options)
	if err != nil {
		return nil, toStatus(err)
	}
	now := time.Now()
	op := &peerv1.Op{Kind: peerv1.Op_KIND_PUT, Key: req.Key, Value: req.Value, ExpireAt: expireAt(now, w.ttl)}
	p := s.partitionOf(req.Key)
	res, err := n.write(ctx, p, now, w.idemKey, []*peerv1.Op{op})
	if err != nil {
		return nil, toStatus(err)
	}
	n.stats.puts.Add(1)
	return &cachev1.PutResponse{Version: res.Ops[0].Version, Meta: p.writeMeta(n.cfg.NodeName, res, w.mode)}, nil
}

// write proposes ops on p, adding eviction victims when the node is over
// its capacity so that writes pay for the space they take.
func (n *Node) write(ctx context.Context, p *partition, now time.Time, idemKey string, ops []*peerv1.Op) (*peerv1.Result, error) {
	var incoming uint64
	for _, op := range ops {
		incoming += uint64(len(op.Key) + len(op.Value))
	}
	cmd := &peerv1.Command{ProposedAt: now.UnixNano(), IdempotencyKey: idemKey, Ops: ops}
	if idemKey != "" {
		cmd.Fingerprint = fingerprint(ops)
	}
	cmd.Ops = append(cmd.Ops, n.victims(p, incoming)...)
	res, err := p.propose(ctx, cmd)
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
		b, _ := proto.MarshalOptions{Deterministic: true}.Marshal(c)
		h.Write(binary.BigEndian.AppendUint32(nil, uint32(len(b))))
		h.Write(b)
	}
	return h.Sum64()
}

// Delete removes one key.
func (s *cacheServer) Delete(ctx context.Context, req *cachev1.DeleteRequest) (*cachev1.DeleteResponse, error) {
	n := s.n
	if err := n.check.key("key", req.Key); err != nil {
		return nil, toStatus(err)
	}
	w, err := n.check.writeOptions(req.Options)
	if err != nil {
		return nil, toStatus(err)
	}
	if w.ttl != 0 {
		return nil, toStatus(invalid("options.ttl is not valid on Delete"))
	}
	p := s.partitionOf(req.Key)
	res, err := n.write(ctx, p, time.Now(), w.idemKey, []*peerv1.Op{{Kind: peerv1.Op_KIND_DELETE, Key: req.Key}})
	if err != nil {
		return nil, toStatus(err)
	}
	n.stats.deletes.Add(1)
	return &cachev1.DeleteResponse{Existed: res.Ops[0].Ok, Meta: p.writeMeta(n.cfg.NodeName, res, w.mode)}, nil
}

// CompareAndSet writes a key if its current state matches.
func (s *cacheServer) CompareAndSet(ctx context.Context, req *cachev1.CompareAndSetRequest) (*cachev1.CompareAndSetResponse, error) {
	n := s.n
	w, err := n.check.write(req.Key, req.Value, req.Options)
	if err != nil {
		return nil, toStatus(err)
	}
	now := time.Now()
	op := &peerv1.Op{Kind: peerv1.Op_KIND_CAS, Key: req.Key, Value: req.Value, ExpireAt: expireAt(now, w.ttl)}
	switch x := req.Expect.(type) {
	case *cachev1.CompareAndSetRequest_ExpectedVersion:
		if x.ExpectedVersion == 0 {
			return nil, toStatus(invalid("expected_version must be positive; use expect_absent for a key that must not exist"))
		}
		op.Expect = &peerv1.Op_ExpectedVersion{ExpectedVersion: x.ExpectedVersion}
	case *cachev1.CompareAndSetRequest_ExpectedValue:
		if err := n.check.value("expected_value", x.ExpectedValue); err != nil {
			return nil, toStatus(err)
		}
		op.Expect = &peerv1.Op_ExpectedValue{ExpectedValue: x.ExpectedValue}
	case *cachev1.CompareAndSetRequest_ExpectAbsent:
		if !x.ExpectAbsent {
			return nil, toStatus(invalid("expect_absent must be true when set"))
		}
		op.Expect = &peerv1.Op_ExpectAbsent{ExpectAbsent: true}
	default:
		return nil, toStatus(invalid("one of expected_version, expected_value or expect_absent is required"))
	}
	p := s.partitionOf(req.Key)
	res, err := n.write(ctx, p, now, w.idemKey, []*peerv1.Op{op})
	if err != nil {
		return nil, toStatus(err)
	}
	r := res.Ops[0]
	if r.Ok {
		n.stats.puts.Add(1)
	}
	return &cachev1.CompareAndSetResponse{Swapped: r.Ok, Version: r.Version, Meta: p.writeMeta(n.cfg.NodeName, res, w.mode)}, nil
}

// MultiGet reads many keys, each at the requested level on its partition.
func (s *cacheServer) MultiGet(ctx context.Context, req *cachev1.MultiGetRequest) (*cachev1.MultiGetResponse, error) {
	n := s.n
	if err := n.check.batchLen("keys", len(req.Keys)); err != nil {
		return nil, toStatus(err)
	}
	for i, k := range req.Keys {
		if err := n.check.key(fmt.Sprintf("keys[%d]", i), k); err != nil {
			return nil, toStatus(err)
		}
	}
	o, err := n.check.readOptions(req.Options)
	if err != nil {
		return nil, toStatus(err)
	}
	ready := make(map[uint32]bool)
	out := &cachev1.MultiGetResponse{Results: make([]*cachev1.GetResponse, len(req.Keys))}
	for i, k := range req.Keys {
		p := s.partitionOf(k)
		if !ready[p.id] {
			if err := p.readReady(ctx, o); err != nil {
				return nil, toStatus(err)
			}
			ready[p.id] = true
		}
		if out.Results[i], err = n.get(p, k, o.level); err != nil {
			return nil, toStatus(err)
		}
	}
	return out, nil
}

// MultiPut writes many entries: one atomic command per partition, the
// partitions in parallel.
func (s *cacheServer) MultiPut(ctx context.Context, req *cachev1.MultiPutRequest) (*cachev1.MultiPutResponse, error) {
	n := s.n
	if err := n.check.batchLen("entries", len(req.Entries)); err != nil {
		return nil, toStatus(err)
	}
	w, err := n.check.writeOptions(req.Options)
	if err != nil {
		return nil, toStatus(err)
	}
	now := time.Now()
	type group struct {
		ops     []*peerv1.Op
		indexes []int
	}
	groups := make(map[uint32]*group)
	for i, kv := range req.Entries {
		if kv == nil {
			return nil, toStatus(invalid("entries[%d] is empty", i))
		}
		if err := n.check.key(fmt.Sprintf("entries[%d].key", i), kv.Key); err != nil {
			return nil, toStatus(err)
		}
		if err := n.check.value(fmt.Sprintf("entries[%d].value", i), kv.Value); err != nil {
			return nil, toStatus(err)
		}
		ttl := w.ttl
		if kv.Ttl != nil {
			if ttl, err = n.check.ttl(fmt.Sprintf("entries[%d].ttl", i), kv.Ttl); err != nil {
				return nil, toStatus(err)
			}
		}
		pid := n.ring.Partition(kv.Key)
		g := groups[pid]
		if g == nil {
			g = &group{}
			groups[pid] = g
		}
		g.ops = append(g.ops, &peerv1.Op{Kind: peerv1.Op_KIND_PUT, Key: kv.Key, Value: kv.Value, ExpireAt: expireAt(now, ttl)})
		g.indexes = append(g.indexes, i)
	}
	out := &cachev1.MultiPutResponse{Results: make([]*cachev1.PutResponse, len(req.Entries))}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	for pid, g := range groups {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := n.parts[pid]
			idem := ""
			if w.idemKey != "" {
				// One request becomes one command per partition; each
				// needs its own record.
				idem = fmt.Sprintf("%s/%d", w.idemKey, pid)
			}
			res, err := n.write(ctx, p, now, idem, g.ops)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if first == nil {
					first = err
				}
				return
			}
			meta := p.writeMeta(n.cfg.NodeName, res, w.mode)
			for j, i := range g.indexes {
				out.Results[i] = &cachev1.PutResponse{Version: res.Ops[j].Version, Meta: meta}
			}
		}()
	}
	wg.Wait()
	if first != nil {
		return nil, toStatus(first)
	}
	n.stats.puts.Add(uint64(len(req.Entries)))
	return out, nil
}

// Scan cursor: format byte, partition (u32), then the last key returned.
const cursorFormat byte = 1

func encodeCursor(partition uint32, key []byte) []byte {
	b := append([]byte{cursorFormat}, binary.BigEndian.AppendUint32(nil, partition)...)
	return append(b, key...)
}

func decodeCursor(c []byte, partitions uint32) (uint32, []byte, error) {
	if len(c) == 0 {
		return 0, nil, nil
	}
	if len(c) < 5 || c[0] != cursorFormat {
		return 0, nil, invalid("cursor is malformed: pass back the next_cursor of a previous page")
	}
	p := binary.BigEndian.Uint32(c[1:])
	if p >= partitions {
		return 0, nil, invalid("cursor names partition %d, but there are %d", p, partitions)
	}
	if len(c) == 5 {
		return p, nil, nil
	}
	return p, c[5:], nil
}

// Scan pages through the keyspace in (partition, key) order.
func (s *cacheServer) Scan(ctx context.Context, req *cachev1.ScanRequest) (*cachev1.ScanResponse, error) {
	n := s.n
	size, err := n.check.pageSize(req.PageSize)
	if err != nil {
		return nil, toStatus(err)
	}
	if len(req.Prefix) > n.cfg.Limits.MaxKeyBytes {
		return nil, toStatus(invalid("prefix is %d bytes, over the key limit of %d", len(req.Prefix), n.cfg.Limits.MaxKeyBytes))
	}
	o, err := n.check.readOptions(req.Options)
	if err != nil {
		return nil, toStatus(err)
	}
	pid, after, err := decodeCursor(req.Cursor, n.ring.Count())
	if err != nil {
		return nil, toStatus(err)
	}
	out := &cachev1.ScanResponse{}
	now := time.Now().UnixNano()
	for ; pid < n.ring.Count(); pid, after = pid+1, nil {
		p := n.parts[pid]
		if err := p.readReady(ctx, o); err != nil {
			return nil, toStatus(err)
		}
		entries, more, err := p.store.Scan(storage.ScanOptions{After: after, Prefix: req.Prefix,
			Limit: size - len(out.Entries), Now: now, KeysOnly: req.KeysOnly})
		if err != nil {
			return nil, toStatus(err)
		}
		for _, e := range entries {
			out.Entries = append(out.Entries, entryProto(e, req.KeysOnly))
		}
		if len(out.Entries) == size {
			last := entries[len(entries)-1].Key
			if more {
				out.NextCursor = encodeCursor(pid, last)
			} else if pid+1 < n.ring.Count() {
				out.NextCursor = encodeCursor(pid+1, nil)
			}
			break
		}
	}
	return out, nil
}

// Stats reports the node's counters and partitions.
func (s *cacheServer) Stats(ctx context.Context, _ *cachev1.StatsRequest) (*cachev1.StatsResponse, error) {
	n := s.n
	out := &cachev1.StatsResponse{
		NodeName:       n.cfg.NodeName,
		NodeId:         n.id,
		Version:        Version,
		Uptime:         durationpb.New(time.Since(n.start)),
		PartitionCount: n.ring.Count(),
		CapacityBytes:  n.cfg.CapacityBytes,
		Gets:           n.stats.gets.Load(),
		Hits:           n.stats.hits.Load(),
		Misses:         n.stats.misses.Load(),
		Puts:           n.stats.puts.Load(),
		Deletes:        n.stats.deletes.Load(),
		DiskBytes:      n.db.DiskUsage(),
		FlushLag:       durationpb.New(0),
	}
	for _, p := range n.parts {
		st := p.store.State()
		_, leader := p.raft.LeaderWithID()
		out.BytesUsed += st.Bytes
		out.Keys += st.Keys
		out.DirtyKeys += st.Dirty
		out.Evictions += p.fsm.evictions.Load()
		out.Expirations += p.fsm.expirations.Load()
		out.Partitions = append(out.Partitions, &cachev1.PartitionStats{
			Partition: p.id, Role: roleOf(p.raft.State()), Leader: string(leader),
			AppliedIndex: p.fsm.applied.Load(), CommitIndex: p.raft.CommitIndex(),
			Keys: st.Keys, Bytes: st.Bytes, DirtyKeys: st.Dirty,
		})
	}
	return out, nil
}

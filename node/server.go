package node

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"time"

	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/elcache/elcache/internal/request"
	cachev1 "github.com/elcache/elcache/proto/cache/v1"
	peerv1 "github.com/elcache/elcache/proto/peer/v1"
	"github.com/elcache/elcache/storage"
	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// cacheServer implements cache.v1.Cache on a Node.
type cacheServer struct {
	cachev1.UnimplementedCacheServer
	n *Node
}

// needsLeader reports whether a read at level must be served by the
// partition leader: only LEASE reads do. A local follower tries the other
// levels first (reads.go) and hands the read to the leader when it cannot
// prove what the level needs.
func needsLeader(level cachev1.Consistency) bool {
	return level == cachev1.Consistency_CONSISTENCY_LEASE
}

// Get reads one key.
func (s *cacheServer) Get(ctx context.Context, req *cachev1.GetRequest) (*cachev1.GetResponse, error) {
	if err := s.n.check.Key("key", req.Key); err != nil {
		return nil, toStatus(err)
	}
	o, err := s.n.check.ReadOptions(req.Options)
	if err != nil {
		return nil, toStatus(err)
	}
	n := s.n
	if d := time.Duration(n.faults.readDelay.Load()); d > 0 {
		if mustNotWait(ctx) {
			return nil, errWouldBlock
		}
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return nil, status.FromContextError(ctx.Err()).Err()
		}
	}
	return serveRead(ctx, n, n.ring.Partition(req.Key), needsLeader(o.Level),
		func(p *partition) (*cachev1.GetResponse, error) {
			resp, err := readLocal(ctx, p, o, func(proof readProof) (*cachev1.GetResponse, error) {
				return n.get(ctx, p, req.Key, proof)
			})
			if err != nil || resp.Found {
				return resp, err
			}
			return n.missed(ctx, p, req.Key, o, resp)
		},
		func(ctx context.Context, c cachev1.CacheClient) (*cachev1.GetResponse, error) { return c.Get(ctx, req) })
}

// readLocal serves a read on this node's replica p at o's level: it makes
// p ready, reads, and checks the proof again before the reply. A LEASE
// read whose lease lapsed while it read (a pause, a lost quorum) is read
// again as LINEARIZABLE.
func readLocal[T any](ctx context.Context, p *partition, o request.Read, read func(readProof) (T, error)) (T, error) {
	var zero T
	proof, err := p.readReady(ctx, o)
	if err != nil {
		return zero, err
	}
	out, err := read(proof)
	if err != nil || proof.recheck == nil {
		return out, err
	}
	if proof.recheck() == nil {
		return out, nil
	}
	o.Level = cachev1.Consistency_CONSISTENCY_LINEARIZABLE
	if proof, err = p.readReady(ctx, o); err != nil {
		return zero, err
	}
	return read(proof)
}

// get reads key from a partition that is ready to serve with proof.
func (n *Node) get(ctx context.Context, p *partition, key []byte, proof readProof) (*cachev1.GetResponse, error) {
	e, ok, meta, err := n.lookup(p, key, proof, n.backend != nil && mustNotWait(ctx))
	if err != nil {
		return nil, err
	}
	if !ok {
		return &cachev1.GetResponse{Meta: meta}, nil
	}
	return &cachev1.GetResponse{Found: true, Entry: entryProto(e, false), Meta: meta}, nil
}

// lookup reads key from a partition that is ready to serve with proof,
// and counts the read. A miss when holdMiss is set is not counted and
// fails with errWouldBlock: the database may fill it, not here.
func (n *Node) lookup(p *partition, key []byte, proof readProof, holdMiss bool) (storage.Entry, bool, *cachev1.ReadMeta, error) {
	meta := p.readMeta(n.cfg.NodeName, proof)
	meta.Leader = n.hintAt(p)
	now := time.Now()
	e, ok, err := p.store.Get(key, now.UnixNano())
	if err != nil {
		return e, false, nil, err
	}
	p.tokenAfterRead(meta)
	if !ok && holdMiss {
		return e, false, nil, errWouldBlock
	}
	n.stats.gets.Add(1)
	if !ok {
		n.stats.misses.Add(1)
		return e, false, meta, nil
	}
	n.stats.hits.Add(1)
	n.recent.TouchAt(p.id, key, now)
	return e, true, meta, nil
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
	w, err := n.check.Write(req.Key, req.Value, req.Options)
	if err != nil {
		return nil, toStatus(err)
	}
	return serve(ctx, n, n.ring.Partition(req.Key), true,
		func(p *partition) (*cachev1.PutResponse, error) {
			now := time.Now()
			op := &peerv1.Op{Kind: peerv1.Op_KIND_PUT, Key: req.Key, Value: req.Value, ExpireAt: expireAt(now, w.TTL)}
			res, err := n.modeWrite(ctx, p, now, w, []*peerv1.Op{op})
			if err != nil {
				return nil, err
			}
			n.stats.puts.Add(1)
			return &cachev1.PutResponse{Version: res.Ops[0].Version, Meta: n.writeMeta(p, res, w)}, nil
		},
		func(ctx context.Context, c cachev1.CacheClient) (*cachev1.PutResponse, error) {
			if o := forwardOptions(req.Options, w); o != req.Options {
				req = &cachev1.PutRequest{Key: req.Key, Value: req.Value, Options: o}
			}
			return c.Put(ctx, req)
		})
}

// forwardOptions returns the options to forward a write with: o with the
// durability this node resolved for it (w), so that the leader commits
// the write as durably as this node would have, whatever its own default.
// It returns o itself when nothing changes.
func forwardOptions(o *cachev1.WriteOptions, w request.Write) *cachev1.WriteOptions {
	if o.GetDurability() == w.Durability {
		return o
	}
	out := &cachev1.WriteOptions{}
	if o != nil {
		out = proto.Clone(o).(*cachev1.WriteOptions)
	}
	out.Durability = w.Durability
	return out
}

// writeMeta describes a write committed on p, led here, with options w.
func (n *Node) writeMeta(p *partition, res *peerv1.Result, w request.Write) *cachev1.WriteMeta {
	m := p.writeMeta(n.cfg.NodeName, res, w.Mode, w.Durability)
	m.Leader = n.hintAt(p)
	return m
}

// hintAt is the leader hint of an answer this node's replica p served.
// When p leads, the leader is this node, at its own address.
func (n *Node) hintAt(p *partition) *cachev1.LeaderHint {
	if p.raft.State() != raft.Leader {
		return n.hint(p.id)
	}
	st, _ := n.meta.Current()
	return &cachev1.LeaderHint{Partition: p.id, NodeId: n.id, Address: n.addr, MapVersion: st.MapVersion}
}

// Delete removes one key.
func (s *cacheServer) Delete(ctx context.Context, req *cachev1.DeleteRequest) (*cachev1.DeleteResponse, error) {
	n := s.n
	if err := n.check.Key("key", req.Key); err != nil {
		return nil, toStatus(err)
	}
	w, err := n.check.WriteOptions(req.Options)
	if err != nil {
		return nil, toStatus(err)
	}
	if w.TTL != 0 {
		return nil, toStatus(invalid("options.ttl is not valid on Delete"))
	}
	return serve(ctx, n, n.ring.Partition(req.Key), true,
		func(p *partition) (*cachev1.DeleteResponse, error) {
			res, err := n.modeWrite(ctx, p, time.Now(), w, []*peerv1.Op{{Kind: peerv1.Op_KIND_DELETE, Key: req.Key}})
			if err != nil {
				return nil, err
			}
			n.stats.deletes.Add(1)
			return &cachev1.DeleteResponse{Existed: res.Ops[0].Ok, Meta: n.writeMeta(p, res, w)}, nil
		},
		func(ctx context.Context, c cachev1.CacheClient) (*cachev1.DeleteResponse, error) {
			if o := forwardOptions(req.Options, w); o != req.Options {
				req = &cachev1.DeleteRequest{Key: req.Key, Options: o}
			}
			return c.Delete(ctx, req)
		})
}

// CompareAndSet writes a key if its current state matches.
func (s *cacheServer) CompareAndSet(ctx context.Context, req *cachev1.CompareAndSetRequest) (*cachev1.CompareAndSetResponse, error) {
	n := s.n
	w, err := n.check.Write(req.Key, req.Value, req.Options)
	if err != nil {
		return nil, toStatus(err)
	}
	op := &peerv1.Op{Kind: peerv1.Op_KIND_CAS, Key: req.Key, Value: req.Value}
	switch w.Mode {
	case cachev1.WriteMode_WRITE_MODE_WRITE_BACK:
		op.Flags = uint32(storage.FlagDirty)
	case cachev1.WriteMode_WRITE_MODE_WRITE_THROUGH, cachev1.WriteMode_WRITE_MODE_WRITE_AROUND:
		// The comparison is against the cache, which in these modes may
		// not hold the key at all.
		return nil, toStatus(invalid("CompareAndSet supports options.mode CACHE_ONLY and WRITE_BACK, not %v", w.Mode))
	}
	switch x := req.Expect.(type) {
	case *cachev1.CompareAndSetRequest_ExpectedVersion:
		if x.ExpectedVersion == 0 {
			return nil, toStatus(invalid("expected_version must be positive; use expect_absent for a key that must not exist"))
		}
		op.Expect = &peerv1.Op_ExpectedVersion{ExpectedVersion: x.ExpectedVersion}
	case *cachev1.CompareAndSetRequest_ExpectedValue:
		if err := n.check.Value("expected_value", x.ExpectedValue); err != nil {
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
	return serve(ctx, n, n.ring.Partition(req.Key), true,
		func(p *partition) (*cachev1.CompareAndSetResponse, error) {
			now := time.Now()
			op.ExpireAt = expireAt(now, w.TTL)
			if w.Mode == cachev1.WriteMode_WRITE_MODE_WRITE_BACK {
				if err := n.awaitBacklog(ctx, p); err != nil {
					return nil, err
				}
			}
			res, err := n.write(ctx, p, now, w.IdempotencyKey, w.Durability, []*peerv1.Op{op})
			if err != nil {
				return nil, err
			}
			r := res.Ops[0]
			if r.Ok {
				n.stats.puts.Add(1)
			}
			return &cachev1.CompareAndSetResponse{Swapped: r.Ok, Version: r.Version, Meta: n.writeMeta(p, res, w)}, nil
		},
		func(ctx context.Context, c cachev1.CacheClient) (*cachev1.CompareAndSetResponse, error) {
			if o := forwardOptions(req.Options, w); o != req.Options {
				req = &cachev1.CompareAndSetRequest{Key: req.Key, Expect: req.Expect, Value: req.Value, Options: o}
			}
			return c.CompareAndSet(ctx, req)
		})
}

// MultiGet reads many keys, each at the requested level on its partition.
func (s *cacheServer) MultiGet(ctx context.Context, req *cachev1.MultiGetRequest) (*cachev1.MultiGetResponse, error) {
	n := s.n
	if err := n.check.BatchLen("keys", len(req.Keys)); err != nil {
		return nil, toStatus(err)
	}
	for i, k := range req.Keys {
		if err := n.check.Key(fmt.Sprintf("keys[%d]", i), k); err != nil {
			return nil, toStatus(err)
		}
	}
	o, err := n.check.ReadOptions(req.Options)
	if err != nil {
		return nil, toStatus(err)
	}
	groups := make(map[uint32][]int) // partition -> indexes into req.Keys
	for i, k := range req.Keys {
		pid := n.ring.Partition(k)
		groups[pid] = append(groups[pid], i)
	}
	out := &cachev1.MultiGetResponse{Results: make([]*cachev1.GetResponse, len(req.Keys))}
	err = eachGroup(groups, func(pid uint32, idx []int) error {
		keys := make([][]byte, len(idx))
		for j, i := range idx {
			keys[j] = req.Keys[i]
		}
		res, err := serveRead(ctx, n, pid, needsLeader(o.Level),
			func(p *partition) ([]*cachev1.GetResponse, error) {
				rs, err := readLocal(ctx, p, o, func(proof readProof) ([]*cachev1.GetResponse, error) {
					rs := make([]*cachev1.GetResponse, len(keys))
					for j, k := range keys {
						r, err := n.get(ctx, p, k, proof)
						if err != nil {
							return nil, err
						}
						rs[j] = r
					}
					return rs, nil
				})
				if err != nil {
					return nil, err
				}
				for j, r := range rs {
					if r.Found {
						continue
					}
					if rs[j], err = n.missed(ctx, p, keys[j], o, r); err != nil {
						return nil, err
					}
				}
				return rs, nil
			},
			func(ctx context.Context, c cachev1.CacheClient) ([]*cachev1.GetResponse, error) {
				resp, err := c.MultiGet(ctx, &cachev1.MultiGetRequest{Keys: keys, Options: req.Options})
				return forwardedResults("MultiGet", resp.GetResults(), len(keys), err)
			})
		return place(out.Results, res, idx, err)
	})
	if err != nil {
		return nil, toStatus(err)
	}
	return out, nil
}

// forwardedResults checks that a forwarded batch came back with one result
// per item.
func forwardedResults[T any](rpc string, results []T, want int, err error) ([]T, error) {
	if err != nil {
		return nil, err
	}
	if len(results) != want {
		return nil, fmt.Errorf("node: forwarded %s returned %d results for %d items", rpc, len(results), want)
	}
	return results, nil
}

// place puts a partition group's results at their request positions.
func place[T any](out, res []T, idx []int, err error) error {
	if err != nil {
		return err
	}
	for j, i := range idx {
		out[i] = res[j]
	}
	return nil
}

// eachGroup runs fn for every partition group in parallel and returns the
// first error. fn must only write to its own group's slots.
func eachGroup(groups map[uint32][]int, fn func(pid uint32, idx []int) error) error {
	if len(groups) == 1 {
		for pid, idx := range groups {
			return fn(pid, idx)
		}
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	for pid, idx := range groups {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := fn(pid, idx); err != nil {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return first
}

// MultiPut writes many entries: one atomic command per partition, the
// partitions in parallel.
func (s *cacheServer) MultiPut(ctx context.Context, req *cachev1.MultiPutRequest) (*cachev1.MultiPutResponse, error) {
	n := s.n
	if err := n.check.BatchLen("entries", len(req.Entries)); err != nil {
		return nil, toStatus(err)
	}
	w, err := n.check.WriteOptions(req.Options)
	if err != nil {
		return nil, toStatus(err)
	}
	groups := make(map[uint32][]int)
	for i, kv := range req.Entries {
		if kv == nil {
			return nil, toStatus(invalid("entries[%d] is empty", i))
		}
		if err := n.check.Key(fmt.Sprintf("entries[%d].key", i), kv.Key); err != nil {
			return nil, toStatus(err)
		}
		if err := n.check.Value(fmt.Sprintf("entries[%d].value", i), kv.Value); err != nil {
			return nil, toStatus(err)
		}
		if kv.Ttl != nil {
			if _, err = n.check.TTL(fmt.Sprintf("entries[%d].ttl", i), kv.Ttl); err != nil {
				return nil, toStatus(err)
			}
		}
		pid := n.ring.Partition(kv.Key)
		groups[pid] = append(groups[pid], i)
	}
	if req.OnlyIfAbsent {
		if err := onlyIfAbsentValid(w, len(groups)); err != nil {
			return nil, toStatus(err)
		}
	}
	out := &cachev1.MultiPutResponse{Results: make([]*cachev1.PutResponse, len(req.Entries))}
	err = eachGroup(groups, func(pid uint32, idx []int) error {
		entries := make([]*cachev1.KeyValue, len(idx))
		for j, i := range idx {
			entries[j] = req.Entries[i]
		}
		res, err := serve(ctx, n, pid, true,
			func(p *partition) ([]*cachev1.PutResponse, error) {
				now := time.Now()
				ops := make([]*peerv1.Op, len(entries))
				for j, kv := range entries {
					ttl := w.TTL
					if kv.Ttl != nil {
						ttl = kv.Ttl.AsDuration()
					}
					ops[j] = &peerv1.Op{Kind: peerv1.Op_KIND_PUT, Key: kv.Key, Value: kv.Value, ExpireAt: expireAt(now, ttl)}
					if req.OnlyIfAbsent {
						// The CAS ops of a command hold all or none (fsm.go).
						ops[j].Kind, ops[j].Expect = peerv1.Op_KIND_CAS, &peerv1.Op_ExpectAbsent{ExpectAbsent: true}
					}
				}
				idem := ""
				if w.IdempotencyKey != "" {
					// One request becomes one command per partition; each
					// needs its own record. The suffix is the same whichever
					// node runs the command.
					idem = fmt.Sprintf("%s/%d", w.IdempotencyKey, pid)
				}
				pw := w
				pw.IdempotencyKey = idem
				res, err := n.modeWrite(ctx, p, now, pw, ops)
				if err != nil {
					return nil, err
				}
				meta := n.writeMeta(p, res, w)
				rs := make([]*cachev1.PutResponse, len(ops))
				for j := range ops {
					rs[j] = &cachev1.PutResponse{Version: res.Ops[j].Version, Meta: meta}
				}
				n.stats.puts.Add(uint64(len(ops)))
				return rs, nil
			},
			func(ctx context.Context, c cachev1.CacheClient) ([]*cachev1.PutResponse, error) {
				resp, err := c.MultiPut(ctx, &cachev1.MultiPutRequest{Entries: entries, Options: forwardOptions(req.Options, w), OnlyIfAbsent: req.OnlyIfAbsent})
				return forwardedResults("MultiPut", resp.GetResults(), len(entries), err)
			})
		return place(out.Results, res, idx, err)
	})
	if err != nil {
		return nil, toStatus(err)
	}
	return out, nil
}

// Scan cursor: format byte, partition (u32), then the last key returned.
const cursorFormat byte = 1

// onlyIfAbsentValid checks a MultiPut with only_if_absent, whose keys
// fall in partitions partitions: all or none is one Raft command, so one
// partition; and the cache must hold the current values.
func onlyIfAbsentValid(w request.Write, partitions int) error {
	if partitions != 1 {
		return invalid("only_if_absent needs every key in one partition; these keys are in %d", partitions)
	}
	if request.CacheHolds(w.Mode) {
		return nil
	}
	return invalid("only_if_absent supports options.mode CACHE_ONLY and WRITE_BACK, not %v", w.Mode)
}

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
	size, err := n.check.PageSize(req.PageSize)
	if err != nil {
		return nil, toStatus(err)
	}
	if len(req.Prefix) > n.cfg.Limits.MaxKeyBytes {
		return nil, toStatus(invalid("prefix is %d bytes, over the key limit of %d", len(req.Prefix), n.cfg.Limits.MaxKeyBytes))
	}
	o, err := n.check.ReadOptions(req.Options)
	if err != nil {
		return nil, toStatus(err)
	}
	pid, after, err := decodeCursor(req.Cursor, n.ring.Count())
	if err != nil {
		return nil, toStatus(err)
	}
	out := &cachev1.ScanResponse{}
	// A forwarded scan covers only the cursor's partition: the node that
	// forwarded it walks the partitions.
	single := isForwarded(ctx)
	for ; pid < n.ring.Count(); pid, after = pid+1, nil {
		page, err := serveRead(ctx, n, pid, needsLeader(o.Level),
			func(p *partition) (scanPage, error) {
				return readLocal(ctx, p, o, func(readProof) (scanPage, error) {
					es, more, err := p.store.Scan(storage.ScanOptions{After: after, Prefix: req.Prefix,
						Limit: size - len(out.Entries), Now: time.Now().UnixNano(), KeysOnly: req.KeysOnly})
					page := scanPage{more: more}
					for _, e := range es {
						page.entries = append(page.entries, entryProto(e, req.KeysOnly))
					}
					return page, err
				})
			},
			func(ctx context.Context, c cachev1.CacheClient) (scanPage, error) {
				resp, err := c.Scan(ctx, &cachev1.ScanRequest{Prefix: req.Prefix, Cursor: encodeCursor(pid, after),
					PageSize: uint32(size - len(out.Entries)), KeysOnly: req.KeysOnly, Options: req.Options})
				if err != nil {
					return scanPage{}, err
				}
				return scanPage{entries: resp.Entries, more: len(resp.NextCursor) > 0}, nil
			})
		if err != nil {
			return nil, toStatus(err)
		}
		entries, more := page.entries, page.more
		out.Entries = append(out.Entries, entries...)
		if single {
			if more && len(entries) > 0 {
				out.NextCursor = encodeCursor(pid, entries[len(entries)-1].Key)
			}
			break
		}
		if len(out.Entries) == size {
			if more {
				out.NextCursor = encodeCursor(pid, entries[len(entries)-1].Key)
			} else if pid+1 < n.ring.Count() {
				out.NextCursor = encodeCursor(pid+1, nil)
			}
			break
		}
	}
	return out, nil
}

// scanPage is one partition's part of a Scan page.
type scanPage struct {
	entries []*cachev1.Entry
	more    bool // the partition has entries after these
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
		Forwarded:      n.stats.forwarded.Load(),
		DiskBytes:      n.db.DiskUsage(),
		FlushLag:       durationpb.New(n.flushLag()),
	}
	for _, p := range n.hosted() {
		st := p.store.State()
		_, leader := p.raft.LeaderWithID()
		out.BytesUsed += st.Bytes
		out.Keys += st.Keys
		out.DirtyKeys += st.Dirty
		out.DirtyRefused += uint64(p.refused.count())
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

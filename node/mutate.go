package node

import (
	"bytes"
	"context"
	"math"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	cachev1 "github.com/elcache/elcache/proto/cache/v1"
	peerv1 "github.com/elcache/elcache/proto/peer/v1"
	"github.com/elcache/elcache/storage"
)

// Mutate changes one key as a function of its current state, in one Raft
// command (KIND_MUTATE): the state machine decides the change (mutate)
// against the key as it applies, so no write can come between the read and
// the write of a read-modify-write.
func (s *cacheServer) Mutate(ctx context.Context, req *cachev1.MutateRequest) (*cachev1.MutateResponse, error) {
	n := s.n
	m, err := n.check.Mutate(req)
	if err != nil {
		return nil, toStatus(err)
	}
	return serve(ctx, n, n.ring.Partition(req.Key), true,
		func(p *partition) (*cachev1.MutateResponse, error) {
			now := time.Now()
			op := &peerv1.Op{Kind: peerv1.Op_KIND_MUTATE, Key: req.Key, Mutation: mutation(req, m.ExpireAt, m.After, now, n.cfg.Limits.MaxValueBytes)}
			res, err := n.modeWrite(ctx, p, now, m.Write, []*peerv1.Op{op})
			if err != nil {
				return nil, err
			}
			r := res.Ops[0]
			if r.Ok {
				n.stats.puts.Add(1)
			}
			out := &cachev1.MutateResponse{Applied: r.Ok, Existed: r.Existed, Previous: r.Previous, Value: r.Value,
				Length: r.Length, Version: r.Version, Refused: cachev1.MutateResponse_Refusal(r.Refused), Meta: n.writeMeta(p, res, m.Write)}
			if r.ExpireAt != 0 {
				out.ExpiresAt = timestamppb.New(time.Unix(0, r.ExpireAt))
			}
			return out, nil
		},
		func(ctx context.Context, c cachev1.CacheClient) (*cachev1.MutateResponse, error) {
			if o := forwardOptions(req.Options, m.Write); o != req.Options {
				req = &cachev1.MutateRequest{Key: req.Key, Condition: req.Condition, Change: req.Change,
					Expiry: req.Expiry, ReturnPrevious: req.ReturnPrevious, Options: o}
			}
			return c.Mutate(ctx, req)
		})
}

// mutation is the MUTATE op's body for req, its expiry resolved on the
// leader's clock now: at (absolute, from ACTION_AT) or after (from
// ACTION_AFTER).
func mutation(req *cachev1.MutateRequest, at int64, after time.Duration, now time.Time, maxValue int) *peerv1.Mutation {
	m := &peerv1.Mutation{Condition: int32(req.Condition), ReturnPrevious: req.ReturnPrevious, MaxValueBytes: uint64(maxValue),
		ExpiryAction: int32(req.Expiry.GetAction()), ExpiryOnly: int32(req.Expiry.GetOnly()), ExpireAt: at}
	if m.ExpiryAction == int32(cachev1.ExpiryChange_ACTION_AFTER) {
		m.ExpiryAction, m.ExpireAt = int32(cachev1.ExpiryChange_ACTION_AT), now.Add(after).UnixNano()
	}
	switch c := req.Change.(type) {
	case *cachev1.MutateRequest_Set:
		m.Change = &peerv1.Mutation_Set{Set: c.Set}
	case *cachev1.MutateRequest_IncrBy:
		m.Change = &peerv1.Mutation_IncrBy{IncrBy: c.IncrBy}
	case *cachev1.MutateRequest_IncrByFloat:
		m.Change = &peerv1.Mutation_IncrByFloat{IncrByFloat: c.IncrByFloat}
	case *cachev1.MutateRequest_Append:
		m.Change = &peerv1.Mutation_Append{Append: c.Append}
	case *cachev1.MutateRequest_SetRange:
		m.Change = &peerv1.Mutation_SetRange{SetRange: c.SetRange.Value}
		m.SetRangeOffset = c.SetRange.Offset
	case *cachev1.MutateRequest_Delete:
		m.Change = &peerv1.Mutation_Delete{Delete: true}
	}
	return m
}

// mutateAction is what applying a mutation does to the stored key.
type mutateAction int

const (
	mutateNothing mutateAction = iota // the key stays as it is
	mutateStore                       // store value, expiring at expireAt
	mutateRemove                      // remove the key
)

// mutate decides a MUTATE op against the key's entry cur (live: cur holds
// a live value at now, the command's proposal time). It is a pure
// function of its arguments, so every replica decides alike. The result
// describes the key before (Existed, Previous) and after (Length,
// ExpireAt; Version is the caller's: this index when stored, cur's when
// nothing changes).
//
// The order of checks is Redis's: the key condition (NX/XX), then the
// expiry condition (NX/XX/GT/LT, with no expiry counting as infinite),
// then the change, whose refusal (not a number, overflow, too large)
// stores nothing.
func mutate(cur storage.Entry, live bool, m *peerv1.Mutation, now int64) (value []byte, expireAt int64, act mutateAction, r *peerv1.OpResult) {
	r = &peerv1.OpResult{Existed: live}
	var curValue []byte
	var curExpire int64
	if live {
		curValue, curExpire = cur.Value, cur.ExpireAt
		r.Version, r.Length, r.ExpireAt = cur.Version, uint64(len(cur.Value)), cur.ExpireAt
		if m.ReturnPrevious {
			r.Previous = cur.Value
		}
	}
	switch cachev1.MutateRequest_Condition(m.Condition) {
	case cachev1.MutateRequest_CONDITION_EXISTS:
		if !live {
			return nil, 0, mutateNothing, r
		}
	case cachev1.MutateRequest_CONDITION_ABSENT:
		if live {
			return nil, 0, mutateNothing, r
		}
	}
	action := cachev1.ExpiryChange_Action(m.ExpiryAction)
	newExpire := curExpire
	switch action {
	case cachev1.ExpiryChange_ACTION_DEFAULT:
		if _, set := m.Change.(*peerv1.Mutation_Set); set {
			newExpire = 0
		}
	case cachev1.ExpiryChange_ACTION_PERSIST:
		newExpire = 0
	case cachev1.ExpiryChange_ACTION_AT:
		newExpire = m.ExpireAt
	}
	if !expiryAllowed(cachev1.ExpiryChange_Only(m.ExpiryOnly), live, curExpire, newExpire) {
		return nil, 0, mutateNothing, r
	}
	value = curValue
	switch c := m.Change.(type) {
	case nil:
		if !live {
			return nil, 0, mutateNothing, r
		}
	case *peerv1.Mutation_Set:
		value = c.Set
	case *peerv1.Mutation_Delete:
		if !live {
			return nil, 0, mutateNothing, r
		}
		r.Ok, r.Length, r.ExpireAt, r.Version = true, 0, 0, 0
		return nil, 0, mutateRemove, r
	case *peerv1.Mutation_IncrBy:
		var refused cachev1.MutateResponse_Refusal
		value, refused = incrInt(curValue, c.IncrBy)
		if refused != 0 {
			r.Refused = int32(refused)
			return nil, 0, mutateNothing, r
		}
		r.Value = value
	case *peerv1.Mutation_IncrByFloat:
		var refused cachev1.MutateResponse_Refusal
		value, refused = incrFloat(curValue, c.IncrByFloat)
		if refused != 0 {
			r.Refused = int32(refused)
			return nil, 0, mutateNothing, r
		}
		r.Value = value
	case *peerv1.Mutation_Append:
		if uint64(len(curValue))+uint64(len(c.Append)) > m.MaxValueBytes {
			r.Refused = int32(cachev1.MutateResponse_REFUSAL_TOO_LARGE)
			return nil, 0, mutateNothing, r
		}
		value = append(append(make([]byte, 0, len(curValue)+len(c.Append)), curValue...), c.Append...)
	case *peerv1.Mutation_SetRange:
		if len(c.SetRange) == 0 {
			// Redis: nothing to write changes nothing, and creates no key.
			return nil, 0, mutateNothing, r
		}
		end := m.SetRangeOffset + uint64(len(c.SetRange))
		if end > m.MaxValueBytes {
			r.Refused = int32(cachev1.MutateResponse_REFUSAL_TOO_LARGE)
			return nil, 0, mutateNothing, r
		}
		value = make([]byte, max(uint64(len(curValue)), end))
		copy(value, curValue)
		copy(value[m.SetRangeOffset:], c.SetRange)
	}
	if newExpire != 0 && newExpire <= now {
		// An expiry in the past removes the key, as in Redis.
		r.Ok, r.Length, r.ExpireAt, r.Version, r.Value = true, 0, 0, 0, nil
		if !live {
			return nil, 0, mutateNothing, r
		}
		return nil, 0, mutateRemove, r
	}
	r.Ok, r.Length, r.ExpireAt = true, uint64(len(value)), newExpire
	return value, newExpire, mutateStore, r
}

// expiryAllowed is the expiry condition of Redis EXPIRE: NX (no expiry
// now), XX (an expiry now), GT and LT (later or earlier than now's, no
// expiry being infinite). A missing key has no expiry.
func expiryAllowed(only cachev1.ExpiryChange_Only, live bool, cur, next int64) bool {
	inf := func(t int64) float64 {
		if t == 0 {
			return math.Inf(1)
		}
		return float64(t)
	}
	switch only {
	case cachev1.ExpiryChange_ONLY_NO_EXPIRY:
		return live && cur == 0
	case cachev1.ExpiryChange_ONLY_HAS_EXPIRY:
		return live && cur != 0
	case cachev1.ExpiryChange_ONLY_LATER:
		return live && inf(next) > inf(cur)
	case cachev1.ExpiryChange_ONLY_EARLIER:
		return live && inf(next) < inf(cur)
	case cachev1.ExpiryChange_ONLY_EARLIER_HAS_EXPIRY:
		return live && cur != 0 && next < cur
	}
	return true
}

// incrInt adds by to v read as a base-10 int64 (nil: 0), as Redis INCRBY:
// no sign but '-', no spaces, no leading zeros, at most 20 bytes.
func incrInt(v []byte, by int64) ([]byte, cachev1.MutateResponse_Refusal) {
	var cur int64
	if v != nil {
		var ok bool
		if cur, ok = parseRedisInt(v); !ok {
			return nil, cachev1.MutateResponse_REFUSAL_NOT_INTEGER
		}
	}
	if by > 0 && cur > math.MaxInt64-by || by < 0 && cur < math.MinInt64-by {
		return nil, cachev1.MutateResponse_REFUSAL_OVERFLOW
	}
	return strconv.AppendInt(nil, cur+by, 10), 0
}

// parseRedisInt parses b as Redis does an integer value: the canonical
// base-10 text of an int64 and nothing else.
func parseRedisInt(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 20 {
		return 0, false
	}
	n, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil || !bytes.Equal(strconv.AppendInt(nil, n, 10), b) {
		return 0, false
	}
	return n, true
}

// incrFloat adds by to v read as a decimal number (nil: 0), as Redis
// INCRBYFLOAT, and returns the sum as plain decimal text rounded to 17
// significant digits (so 0.1 + 0.2 is "0.3", as Redis's long double
// arithmetic gives).
func incrFloat(v []byte, by float64) ([]byte, cachev1.MutateResponse_Refusal) {
	var cur float64
	if v != nil {
		s := string(v)
		if s == "" || len(s) > 5000 || strings.TrimSpace(s) != s {
			return nil, cachev1.MutateResponse_REFUSAL_NOT_FLOAT
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, cachev1.MutateResponse_REFUSAL_NOT_FLOAT
		}
		cur = f
	}
	sum := cur + by
	if math.IsNaN(sum) || math.IsInf(sum, 0) {
		return nil, cachev1.MutateResponse_REFUSAL_OVERFLOW
	}
	return floatText(sum), 0
}

// floatText is f as plain decimal text (no exponent) rounded to 15
// significant digits, the precision a float64 holds exactly: 0.1 + 0.2 is
// "0.3", as Redis's long double arithmetic gives, not
// 0.30000000000000004.
func floatText(f float64) []byte {
	r, _ := strconv.ParseFloat(strconv.FormatFloat(f, 'g', 15, 64), 64)
	return strconv.AppendFloat(nil, r, 'f', -1, 64)
}

// applyMutate applies a MUTATE op at index: mutate decides, and the entry
// is stored (with the op's flags: dirty for write-back), removed (a dirty
// tombstone for write-back) or left alone.
func (f *fsm) applyMutate(b *storage.Batch, index uint64, now int64, idemKey string, op *peerv1.Op) (*peerv1.OpResult, error) {
	if op.Mutation == nil {
		return &peerv1.OpResult{}, nil
	}
	cur, ok, err := b.Get(op.Key)
	if err != nil {
		return nil, err
	}
	value, expireAt, act, r := mutate(cur, live(cur, ok, now), op.Mutation, now)
	switch act {
	case mutateStore:
		r.Version = index
		e := storage.Entry{Key: op.Key, Value: value, Version: index, ExpireAt: expireAt, WrittenAt: now, Flags: uint8(op.Flags), IdemKey: idemKey}
		return r, b.Put(e)
	case mutateRemove:
		if op.Flags&uint32(storage.FlagDirty) != 0 {
			e := storage.Entry{Key: op.Key, Version: index, WrittenAt: now, Flags: uint8(op.Flags) | storage.FlagTombstone, IdemKey: idemKey}
			return r, b.Put(e)
		}
		_, _, err := b.Delete(op.Key)
		return r, err
	}
	return r, nil
}

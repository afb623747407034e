package client

import (
	"fmt"
	"time"

	cachev1 "github.com/elcache/elcache/proto/cache/v1"
)

// Entry is a stored value with its metadata.
type Entry struct {
	Key   []byte
	Value []byte
	// Version orders the writes of a key: it is the position in the
	// partition's log of the write that produced this value, so it only
	// grows, also across deletes and expiries.
	Version uint64
	// ExpiresAt is when the entry expires; zero if it never does.
	ExpiresAt time.Time
	// Dirty is true while a write-back entry has not reached the database.
	Dirty bool
	// Meta describes how the read was served. Scan leaves it zero.
	Meta ReadMeta
}

// ReadMeta describes how a read was served.
type ReadMeta struct {
	Partition uint32
	// ServedBy is the name of the node whose replica served the read, and
	// Role its Raft role.
	ServedBy string
	Role     cachev1.Role
	// Consistency is the level the read was actually served at.
	Consistency cachev1.Consistency
	// AppliedIndex is the Raft index the replica had applied when it read,
	// and LeaderCommitIndex the leader's commit index as it knew it.
	AppliedIndex      uint64
	LeaderCommitIndex uint64
	// Staleness bounds how old the replica's data may be: zero when the
	// read was confirmed with a quorum or served under the leader's lease,
	// the proven bound for BOUNDED reads, and for the other levels the time
	// since the replica's last fresh contact with its leader.
	Staleness time.Duration
	// Session is the token to pass to WithSession in later reads.
	Session SessionToken
	// Stale is set when the value is an expired cached value served
	// because the backing database could not be reached (AllowStale).
	Stale bool
}

// WriteResult is the outcome of a Put or of one MultiPut entry.
type WriteResult struct {
	// Version is the key's new version.
	Version uint64
	Meta    WriteMeta
}

// WriteMeta describes how a write was committed.
type WriteMeta struct {
	Partition uint32
	// ServedBy is the name of the node that committed the write.
	ServedBy string
	// RaftIndex is the Raft index at which the write committed.
	RaftIndex uint64
	// Session is the token to pass to WithSession to read this write.
	Session SessionToken
	// Deduplicated is true when the write was a retry of an applied
	// idempotency key; the result is the original outcome.
	Deduplicated bool
	Mode         cachev1.WriteMode
	// Durability is the durability the write was acknowledged with.
	Durability Durability
}

// SessionToken is a causal position in one partition's log.
type SessionToken struct {
	Partition uint32
	Epoch     uint64
	Index     uint64
}

// Result is the outcome for one key of a MultiGet.
type Result struct {
	// Found reports whether the key exists.
	Found bool
	// Entry is the key's entry. If the key was not found, only Key and
	// Meta are set.
	Entry Entry
}

// KeyValue is one entry of a MultiPut.
type KeyValue struct {
	Key   []byte
	Value []byte
	// TTL, if non-zero, overrides the request's WithTTL for this entry.
	TTL time.Duration
}

// Expectation is the condition of a CompareAndSet. Build one with
// ExpectVersion, ExpectValue or ExpectAbsent; the zero Expectation is
// invalid.
type Expectation struct {
	kind    expectKind
	version uint64
	value   []byte
}

type expectKind uint8

const (
	expectNone expectKind = iota
	expectVersion
	expectValue
	expectAbsent
)

// ExpectVersion holds if the key's current version is v, which must be
// positive.
func ExpectVersion(v uint64) Expectation {
	return Expectation{kind: expectVersion, version: v}
}

// ExpectValue holds if the key exists with value b.
func ExpectValue(b []byte) Expectation {
	return Expectation{kind: expectValue, value: b}
}

// ExpectAbsent holds if the key does not exist.
func ExpectAbsent() Expectation {
	return Expectation{kind: expectAbsent}
}

// apply sets the expectation on req.
func (e Expectation) apply(req *cachev1.CompareAndSetRequest) error {
	switch e.kind {
	case expectVersion:
		req.Expect = &cachev1.CompareAndSetRequest_ExpectedVersion{ExpectedVersion: e.version}
	case expectValue:
		req.Expect = &cachev1.CompareAndSetRequest_ExpectedValue{ExpectedValue: e.value}
	case expectAbsent:
		req.Expect = &cachev1.CompareAndSetRequest_ExpectAbsent{ExpectAbsent: true}
	default:
		return fmt.Errorf("%w: compare-and-set needs an expectation", ErrInvalidArgument)
	}
	return nil
}

func entryFromProto(e *cachev1.Entry) Entry {
	out := Entry{
		Key:     e.GetKey(),
		Value:   e.GetValue(),
		Version: e.GetVersion(),
		Dirty:   e.GetDirty(),
	}
	if ts := e.GetExpiresAt(); ts != nil {
		out.ExpiresAt = ts.AsTime()
	}
	return out
}

func readMetaFromProto(m *cachev1.ReadMeta) ReadMeta {
	return ReadMeta{
		Partition:         m.GetPartition(),
		ServedBy:          m.GetServedBy(),
		Role:              m.GetRole(),
		Consistency:       m.GetConsistency(),
		AppliedIndex:      m.GetAppliedIndex(),
		LeaderCommitIndex: m.GetLeaderCommitIndex(),
		Staleness:         m.GetStaleness().AsDuration(),
		Session:           sessionFromProto(m.GetSessionToken()),
		Stale:             m.GetStale(),
	}
}

func writeMetaFromProto(m *cachev1.WriteMeta) WriteMeta {
	return WriteMeta{
		Partition:    m.GetPartition(),
		ServedBy:     m.GetServedBy(),
		RaftIndex:    m.GetRaftIndex(),
		Session:      sessionFromProto(m.GetSessionToken()),
		Deduplicated: m.GetDeduplicated(),
		Mode:         m.GetMode(),
		Durability:   durabilityFromProto(m.GetDurability()),
	}
}

func sessionFromProto(t *cachev1.SessionToken) SessionToken {
	return SessionToken{Partition: t.GetPartition(), Epoch: t.GetEpoch(), Index: t.GetIndex()}
}

func (t SessionToken) proto() *cachev1.SessionToken {
	return &cachev1.SessionToken{Partition: t.Partition, Epoch: t.Epoch, Index: t.Index}
}

// getResult converts one Get or MultiGet response for key.
func getResult(key []byte, r *cachev1.GetResponse) Result {
	res := Result{Found: r.GetFound(), Entry: Entry{Key: key}}
	if res.Found {
		res.Entry = entryFromProto(r.GetEntry())
		if res.Entry.Key == nil {
			res.Entry.Key = key
		}
	}
	res.Entry.Meta = readMetaFromProto(r.GetMeta())
	return res
}

package client

import (
	"sync"

	cachev1 "github.com/elcache/elcache/proto/cache/v1"
)

// sessions keeps the newest session token the client has seen per
// partition, from the answers to its reads and writes, so that SESSION
// reads give read-your-writes and monotonic reads across the keyspace
// without the caller passing tokens.
type sessions struct {
	mu  sync.Mutex
	tok map[uint32]*cachev1.SessionToken
}

// observe records t if it is newer than the partition's token. A token of
// another epoch (the partition's log was recreated) replaces the old one.
func (s *sessions) observe(t *cachev1.SessionToken) {
	if t == nil || t.GetIndex() == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cur := s.tok[t.GetPartition()]
	if cur != nil && cur.GetEpoch() == t.GetEpoch() && cur.GetIndex() >= t.GetIndex() {
		return
	}
	if s.tok == nil {
		s.tok = make(map[uint32]*cachev1.SessionToken)
	}
	s.tok[t.GetPartition()] = &cachev1.SessionToken{Partition: t.GetPartition(), Epoch: t.GetEpoch(), Index: t.GetIndex()}
}

// token returns the partition's token, or nil.
func (s *sessions) token(pid uint32) *cachev1.SessionToken {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tok[pid]
}

package jepsen

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/elcache/elcache/client"
	cachev1 "github.com/elcache/elcache/proto/cache/v1"
)

// Near-cache runs (Profile.NearCache): the set, session and bounded
// workloads read through Go clients, one per process, each with a near
// cache of its own, as an application would.

// nearClientNode is Op.Node of a read through a client that got no
// answer: the client chose the node, and none answered.
const nearClientNode = "client"

// dialNear connects count clients with near caches to the cluster's
// initial members.
func dialNear(ctx context.Context, c *Cluster, count int) ([]*client.Client, error) {
	cfg := client.DefaultConfig()
	cfg.Seeds = nil
	for _, p := range c.Members() {
		cfg.Seeds = append(cfg.Seeds, p.Addr)
	}
	cfg.DialTimeout = 10 * time.Second
	cfg.NearCache = &client.NearCacheConfig{}
	out := make([]*client.Client, 0, count)
	for range count {
		cl, err := client.New(ctx, cfg)
		if err != nil {
			return nil, errors.Join(fmt.Errorf("jepsen: near-cache client: %w", err), closeNear(out))
		}
		out = append(out, cl)
	}
	return out, nil
}

// closeNear closes the clients.
func closeNear(cs []*client.Client) error {
	var errs []error
	for _, c := range cs {
		errs = append(errs, c.Close())
	}
	return errors.Join(errs...)
}

// nearCounters adds up the clients' near-cache counters.
func nearCounters(cs []*client.Client) client.NearCounters {
	var sum client.NearCounters
	for _, c := range cs {
		n := c.Counters().Near
		sum.Hits += n.Hits
		sum.Misses += n.Misses
		sum.Invalidations += n.Invalidations
		sum.Entries += n.Entries
		sum.Bytes += n.Bytes
		sum.Reconnects += n.Reconnects
	}
	return sum
}

// nearGet reads key at level lvl through the process's client, which
// serves it from its near cache when it may and else sends it to the
// replica it picks. A session read carries the session's tokens (the
// process's writes go around the client, which sees none of them).
func (p *process) nearGet(ctx context.Context, workload, key, lvl string) Op {
	op := p.readOp(nearClientNode, workload, key, lvl)
	var opt client.ReadOption
	switch lvl {
	case LevelBounded:
		opt = client.Bounded(time.Duration(op.MaxStaleness))
	case LevelSession:
		tokens := make([]client.SessionToken, 0, len(p.tokens))
		for _, t := range p.tokens {
			tokens = append(tokens, client.SessionToken{Partition: t.Partition, Epoch: t.Epoch, Index: t.Index})
		}
		opt = client.WithSession(tokens...)
	default:
		opt = client.WithConsistency(level(lvl))
	}
	cctx, cancel := context.WithTimeout(ctx, readTimeout)
	defer cancel()
	op.Start = p.w.rec.Now()
	e, err := p.near.Get(cctx, []byte(key), opt)
	op.End = p.w.rec.Now()
	if err != nil && !errors.Is(err, client.ErrNotFound) {
		op.Outcome = Fail
		p.failed(&op, err)
		return op
	}
	op.Outcome, op.Found = OK, err == nil
	if op.Found {
		op.Value, op.Version = string(e.Value), e.Version
		p.last[key] = op.Value
	}
	m := e.Meta
	if m.ServedBy != "" {
		op.Node = m.ServedBy
	}
	op.Meta = &ReadMeta{Partition: m.Partition, ServedBy: m.ServedBy, Role: m.Role.String(), AppliedIndex: m.AppliedIndex,
		LeaderCommitIndex: m.LeaderCommitIndex, Staleness: int64(m.Staleness), SessionIndex: m.Session.Index, Stale: m.Stale}
	if m.Session.Index > 0 {
		p.token(&cachev1.SessionToken{Partition: m.Session.Partition, Epoch: m.Session.Epoch, Index: m.Session.Index})
	}
	return op
}

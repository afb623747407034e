package node

import (
	"github.com/sony/gobreaker/v2"

	"github.com/elcache/elcache/internal/gossip"
	"github.com/elcache/elcache/internal/metrics"
)

// The node's side of its Prometheus metrics (internal/metrics,
// docs/operations.md "Metrics"): the snapshot of its state a scrape reads,
// and the /metrics listener.

// metricsSnapshot is the node's state as a scrape of /metrics reads it.
func (n *Node) metricsSnapshot() metrics.Snapshot {
	s := metrics.Snapshot{
		CapacityBytes: n.cfg.CapacityBytes,
		DiskBytes:     n.db.DiskUsage(),
		Hits:          n.stats.hits.Load(),
		Misses:        n.stats.misses.Load(),
		Puts:          n.stats.puts.Load(),
		Deletes:       n.stats.deletes.Load(),
		Forwarded:     n.stats.forwarded.Load(),
	}
	s.Changes = metrics.Changes{Streams: n.stats.changeStreams.Load(), Subscriptions: n.stats.changeSubs.Load(),
		Sent: n.stats.changesSent.Load()}
	rc := n.db.RowCacheStats()
	s.RowCache = metrics.RowCache{Entries: int64(rc.Entries), Bytes: rc.Bytes, MaxBytes: rc.MaxBytes, Hits: rc.Hits, Misses: rc.Misses}
	for _, p := range n.hosted() {
		st := p.store.State()
		s.Partitions = append(s.Partitions, metrics.Partition{
			ID: p.id, Role: roleOf(p.raft.State()),
			Applied: p.fsm.applied.Load(), Commit: p.raft.CommitIndex(),
			LeaderChanges: p.leaderChanges.Load(),
			Keys:          st.Keys, Bytes: st.Bytes, Dirty: st.Dirty,
			Refused:   uint64(p.refused.count()),
			Evictions: p.fsm.evictions.Load(), Expirations: p.fsm.expirations.Load(),
		})
	}
	if n.backend != nil {
		s.Backing = &metrics.Backing{
			FlushLag:    n.flushLag(),
			FlushedRows: n.stats.flushedRows.Load(),
			Loads:       n.stats.loads.Load(),
			Coalesced:   n.stats.coalesced.Load(),
			Refills:     n.stats.refills.Load(),
			Breaker:     breakerState(n.backend.State()),
		}
	}
	if n.members != nil {
		s.Members = map[string]int{}
		for _, st := range []gossip.State{gossip.Alive, gossip.Suspect, gossip.Dead, gossip.Left} {
			s.Members[st.String()] = 0
		}
		for _, m := range n.members.Members() {
			s.Members[m.State.String()]++
		}
	}
	return s
}

func breakerState(s gobreaker.State) metrics.Breaker {
	switch s {
	case gobreaker.StateHalfOpen:
		return metrics.BreakerHalfOpen
	case gobreaker.StateOpen:
		return metrics.BreakerOpen
	}
	return metrics.BreakerClosed
}

// startMetrics serves /metrics on Config.MetricsAddr, when it is set.
func (n *Node) startMetrics() error {
	if n.cfg.MetricsAddr == "" {
		return nil
	}
	var err error
	n.metricsHTTP, n.metricsAddr, err = metrics.Serve("metrics", n.cfg.MetricsAddr, n.metrics.Handler(), n.log)
	return err
}

// MetricsAddr returns the address /metrics is served on, or "" when
// Config.MetricsAddr is not set.
func (n *Node) MetricsAddr() string { return n.metricsAddr }

// startAdminHTTP serves the Go profiler under /debug/pprof/ on
// Config.AdminAddr, when it is set. Profiles show the process's internals:
// bind the address to a private interface.
func (n *Node) startAdminHTTP() error {
	if n.cfg.AdminAddr == "" {
		return nil
	}
	var err error
	n.adminHTTP, n.adminAddr, err = metrics.Serve("admin", n.cfg.AdminAddr, metrics.ProfilerHandler(), n.log)
	return err
}

// AdminAddr returns the address the profiler listens on, or "" when
// Config.AdminAddr is not set.
func (n *Node) AdminAddr() string { return n.adminAddr }

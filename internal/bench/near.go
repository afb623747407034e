package bench

import (
	"runtime"
	"runtime/metrics"
	"time"

	"github.com/elcache/elcache/client"
)

// nearTarget is a Target whose client may have a near cache.
type nearTarget interface {
	// NearCache returns the near cache's counters, and false if there
	// is none.
	NearCache() (client.NearCounters, bool)
}

// watchNear returns what reports t's near cache over the measured phase,
// which begins warmup from now: its reads from then until the call, what
// it holds at the call. It reports nil if t has no near cache.
func watchNear(t Target, warmup time.Duration) func() *NearStats {
	nt, ok := t.(nearTarget)
	if !ok {
		return func() *NearStats { return nil }
	}
	if _, on := nt.NearCache(); !on {
		return func() *NearStats { return nil }
	}
	var before client.NearCounters
	taken := make(chan struct{})
	timer := time.AfterFunc(warmup, func() {
		before, _ = nt.NearCache()
		close(taken)
	})
	return func() *NearStats {
		if !timer.Stop() {
			<-taken
		} // else the run ended before measuring: count it all
		after, _ := nt.NearCache()
		s := &NearStats{
			Hits: after.Hits - before.Hits, Misses: after.Misses - before.Misses,
			Invalidations: after.Invalidations - before.Invalidations, Reconnects: after.Reconnects - before.Reconnects,
			Entries: after.Entries, Bytes: after.Bytes,
		}
		if n := s.Hits + s.Misses; n > 0 {
			s.HitRatio = float64(s.Hits) / float64(n)
		}
		return s
	}
}

// liveHeap collects garbage and returns the live Go heap of this process.
func liveHeap() uint64 {
	runtime.GC()
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}

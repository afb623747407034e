package jepsen

import (
	"testing"

	"github.com/elcache/elcache/client"
)

// synNear marks op as served by a client's near cache.
func synNear(op Op) Op {
	op.Node = client.NearCacheServedBy
	op.Meta = &ReadMeta{ServedBy: client.NearCacheServedBy}
	return op
}

func TestCheckNearCache(t *testing.T) {
	ses, bnd := synWorkload(synGet(1, LevelSession, "x", "a", 5, 20, 30), "session"),
		synWorkload(synBounded(2, 1000, "b", "a", 5, 20, 30), "bounded")
	both := []string{"session", "bounded"}
	tests := []struct {
		name      string
		ops       []Op
		workloads []string
		want      []string
	}{
		{"every workload served", []Op{synNear(ses), ses, synNear(bnd)}, both, nil},
		{"a workload never served", []Op{synNear(ses), bnd, bnd}, both, []string{"near-cache-unused"}},
		{"a workload without reads", []Op{synNear(ses)}, both, []string{"near-cache-unused"}},
		{"other workloads do not count", []Op{synNear(ses), synWorkload(synNear(bnd), "set")}, both, []string{"near-cache-unused"}},
		{"final and failed reads do not count", []Op{
			synNear(ses), synFinal(synNear(bnd)), synOutcome(synNear(bnd), Fail)}, both, []string{"near-cache-unused"}},
		{"a strong read served", []Op{
			synNear(ses), synWorkload(synNear(synGet(1, LevelLease, "x", "a", 5, 40, 50)), "session")},
			[]string{"session"}, []string{"near-cache-strong-read"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkVerdict(t, CheckNearCache(tt.ops, tt.workloads, client.NearCounters{}), tt.want...)
		})
	}
}

func TestCheckNearCacheFigures(t *testing.T) {
	ses := synWorkload(synGet(1, LevelSession, "x", "a", 5, 20, 30), "session")
	ops := []Op{synNear(ses), synNear(ses), synNear(ses), ses}
	res := CheckNearCache(ops, []string{"session"}, client.NearCounters{Hits: 3, Misses: 1, Invalidations: 7, Reconnects: 2})
	checkVerdict(t, res)
	want := map[string]float64{"session_reads": 4, "session_near_hits": 3, "near_hits": 3, "near_hit_share": 0.75,
		"client_hits": 3, "client_misses": 1, "client_invalidations": 7, "client_reconnects": 2}
	for k, v := range want {
		if res.Figures[k] != v {
			t.Errorf("figure %s = %v, want %v", k, res.Figures[k], v)
		}
	}
	var s Summary
	Summarize(&s, ops, nil, []Result{res})
	if s.NearHits != 3 {
		t.Errorf("summary's near hits = %d, want 3", s.NearHits)
	}
}

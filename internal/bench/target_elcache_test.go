package bench

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/elcache/elcache/node"
	"github.com/elcache/elcache/node/nodetest"
	cachev1 "github.com/elcache/elcache/proto/cache/v1"
)

func TestParseLevel(t *testing.T) {
	for _, tc := range []struct {
		in    string
		level cachev1.Consistency
		bound time.Duration
		ok    bool
	}{
		{"", cachev1.Consistency_CONSISTENCY_UNSPECIFIED, 0, true},
		{"linearizable", cachev1.Consistency_CONSISTENCY_LINEARIZABLE, 0, true},
		{"lease", cachev1.Consistency_CONSISTENCY_LEASE, 0, true},
		{"bounded", cachev1.Consistency_CONSISTENCY_BOUNDED, time.Second, true},
		{"bounded:250ms", cachev1.Consistency_CONSISTENCY_BOUNDED, 250 * time.Millisecond, true},
		{"session", cachev1.Consistency_CONSISTENCY_SESSION, 0, true},
		{"eventual", cachev1.Consistency_CONSISTENCY_EVENTUAL, 0, true},
		{"bounded:0s", 0, 0, false},
		{"bounded:soon", 0, 0, false},
		{"eventual:1s", 0, 0, false},
		{"strong", 0, 0, false},
	} {
		t.Run(tc.in, func(t *testing.T) {
			level, bound, err := parseLevel(tc.in)
			if (err == nil) != tc.ok || level != tc.level || bound != tc.bound {
				t.Errorf("parseLevel(%q) = %v, %v, %v; want %v, %v, ok %v", tc.in, level, bound, err, tc.level, tc.bound, tc.ok)
			}
		})
	}
	if _, err := parseMode("write_sideways"); err == nil {
		t.Error("parseMode(write_sideways): no error")
	}
	for in, want := range elcacheDurabilities {
		if d, err := parseDurability(in); err != nil || d != want {
			t.Errorf("parseDurability(%q) = %v, %v; want %v", in, d, err, want)
		}
	}
	if _, err := parseDurability("fsync"); err == nil {
		t.Error("parseDurability(fsync): no error")
	}
}

func TestElcacheName(t *testing.T) {
	for _, tc := range []struct {
		level, mode, durability string
		unary, near             bool
		want                    string
	}{
		{"eventual", "", "", false, false, "elcache/eventual"},
		{"", "write_back", "", false, false, "elcache/set:write_back"},
		{"bounded:1s", "cache_only", "", true, false, "elcache/bounded:1s/set:cache_only/unary"},
		{"eventual", "cache_only", "replicated", false, false, "elcache/eventual/set:cache_only/replicated"},
		{"", "", "sync", false, false, "elcache/sync"},
		{"", "", "", false, false, "elcache/default"},
		{"bounded:100ms", "cache_only", "", false, true, "elcache/bounded:100ms/set:cache_only/near"},
	} {
		if got := elcacheName(tc.level, tc.mode, tc.durability, tc.unary, tc.near); got != tc.want {
			t.Errorf("elcacheName(%q, %q, %q, %v, %v) = %q, want %q", tc.level, tc.mode, tc.durability, tc.unary, tc.near, got, tc.want)
		}
	}
}

// TestElcacheTarget runs a short benchmark at every read level, and with
// each write mode, against a real node backed by SQLite.
func TestElcacheTarget(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a node")
	}
	t.Parallel()
	n := nodetest.Start(t, func(c *node.Config) {
		c.Backend = "sqlite://" + filepath.Join(t.TempDir(), "backing.db")
		c.Backing.CreateTable = true
	})
	for _, tc := range []struct{ level, mode, durability string }{
		{"linearizable", "", ""},
		{"lease", "cache_only", "replicated"},
		{"bounded:500ms", "write_through", "sync"},
		{"session", "write_back", "replicated"},
		{"eventual", "write_around", ""},
	} {
		t.Run(tc.level+"/"+tc.mode+"/"+tc.durability, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			tg, err := NewElcacheTarget(ctx, []string{n.Addr()}, tc.level, tc.mode, tc.durability, tc.level == "lease", nil)
			if err != nil {
				t.Fatal(err)
			}
			defer tg.Close()
			if err := tg.Get(ctx, "never-written"); err != nil {
				t.Errorf("Get of a missing key: %v, want nil", err)
			}
			cfg := DefaultRunConfig()
			cfg.Keys, cfg.Clients = 50, 4
			cfg.Warmup, cfg.Duration = 0, 100*time.Millisecond
			res, err := Run(ctx, tg, cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			all := res.Ops["all"]
			if all.Count == 0 || all.Errors != 0 {
				t.Errorf("%s: %d ops, %d errors; want some and none", res.Target, all.Count, all.Errors)
			}
			var b strings.Builder
			if err := printTable(&b, []Result{res}); err != nil {
				t.Fatal(err)
			}
			t.Logf("\n%s", b.String())
		})
	}
}

// TestElcacheTargetNearCache runs YCSB A at BOUNDED(100ms) with the
// client's near cache, every read checked: the near cache serves reads,
// reports what it holds, and keeps the bound.
func TestElcacheTargetNearCache(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a node")
	}
	t.Parallel()
	n := nodetest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tg, err := NewElcacheTarget(ctx, []string{n.Addr()}, "bounded:100ms", "", "", false, WithNearCache(nil, 1<<20))
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	if got, want := tg.Name(), "elcache/bounded:100ms/near"; got != want {
		t.Errorf("name %q, want %q", got, want)
	}
	cfg := DefaultRunConfig()
	cfg.Keys, cfg.Clients, cfg.Check = 50, 4, true
	cfg.Warmup, cfg.Duration = 300*time.Millisecond, 700*time.Millisecond
	res, err := Run(ctx, tg, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c := res.Check; c == nil || c.Reads == 0 || c.Violations() != 0 || c.Bound != "100ms" {
		t.Errorf("check %+v, want reads at bound 100ms and no violations", c)
	}
	if nr := res.Near; nr == nil || nr.Hits == 0 || nr.Entries == 0 || nr.Bytes == 0 || nr.HitRatio <= 0 || nr.HitRatio > 1 {
		t.Errorf("near %+v, want hits and entries", nr)
	}
	if res.HeapBytes == 0 {
		t.Error("no heap figure")
	}
	t.Logf("%s: %s ops/s; %s", res.Target, FormatOps(res.Throughput), strings.Join(ExtraLines(res), "; "))
}

// TestCheckCatchesLostInvalidations runs YCSB A at BOUNDED(100ms)
// through a near cache on a 3-node cluster, every read checked: no read
// breaks the bound; then, with the nodes' Changes streams broken on
// purpose (Hooks.BreakChanges: no invalidations reach near caches), the
// near cache returns values older than the bound allows and the check
// counts them. It proves that bench-compare's mix-elcache-near check can
// fail.
func TestCheckCatchesLostInvalidations(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	t.Parallel()
	c := nodetest.StartCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg := DefaultRunConfig()
	cfg.Keys, cfg.Clients, cfg.Check = 500, 8, true
	cfg.Warmup, cfg.Duration = 0, 3*time.Second
	for _, broken := range []bool{false, true} {
		for _, h := range c.Hooks {
			h.BreakChanges(broken)
		}
		tg, err := NewElcacheTarget(ctx, []string{c.Nodes[0].Addr()}, "bounded:100ms", "", "", false, WithNearCache(nil, 0))
		if err != nil {
			t.Fatal(err)
		}
		res, err := Run(ctx, tg, cfg, nil)
		if err = errors.Join(err, tg.Close()); err != nil {
			t.Fatal(err)
		}
		if c := res.Check; c == nil || (c.Stale > 0) != broken || c.Wrong > 0 {
			t.Errorf("changes broken %v: check %+v, near %+v: want stale reads only when broken, no wrong one", broken, c, res.Near)
		}
		t.Logf("changes broken %v: %s", broken, strings.Join(ExtraLines(res), "; "))
	}
}

package node_test

import (
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/elcache/elcache/node"
	"github.com/elcache/elcache/node/nodetest"
	cachev1 "github.com/elcache/elcache/proto/cache/v1"
)

// scrape returns the node's /metrics text.
func scrape(t *testing.T, addr string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s, %v", resp.Status, err)
	}
	return string(body)
}

// sample returns the value of the sample whose name and labels are
// exactly series (e.g. `elcache_requests_total{level="eventual",op="get"}`).
func sample(t *testing.T, text, series string) float64 {
	t.Helper()
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`)
	m := re.FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("no sample %s in /metrics", series)
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestMetrics(t *testing.T) {
	n := nodetest.Start(t, func(c *node.Config) {
		c.MetricsAddr = "127.0.0.1:0"
		c.Backend = "sqlite://" + filepath.Join(t.TempDir(), "backing.db")
		c.Backing.CreateTable = true
	})
	cl := dial(t, n.Addr())
	ctx := opCtx(t)
	for i := range 5 {
		key := []byte(fmt.Sprintf("m-%d", i))
		if _, err := cl.Put(ctx, &cachev1.PutRequest{Key: key, Value: key,
			Options: &cachev1.WriteOptions{Mode: cachev1.WriteMode_WRITE_MODE_WRITE_BACK}}); err != nil {
			t.Fatal(err)
		}
	}
	for range 3 {
		if _, err := cl.Get(ctx, &cachev1.GetRequest{Key: []byte("m-1"),
			Options: &cachev1.ReadOptions{Consistency: cachev1.Consistency_CONSISTENCY_EVENTUAL}}); err != nil {
			t.Fatal(err)
		}
	}
	// A miss the database answers: one load.
	if _, err := cl.Get(ctx, &cachev1.GetRequest{Key: []byte("absent")}); err != nil {
		t.Fatal(err)
	}
	// Bad input: counted as an InvalidArgument error.
	if _, err := cl.Get(ctx, &cachev1.GetRequest{}); err == nil {
		t.Fatal("get of an empty key succeeded")
	}
	// Pipelined calls count too.
	sendBatch(t, cl, []*cachev1.Call{getCall(1, "m-2", cachev1.Consistency_CONSISTENCY_EVENTUAL),
		getCall(2, "m-3", cachev1.Consistency_CONSISTENCY_EVENTUAL)})

	text := scrape(t, n.MetricsAddr())
	if got := sample(t, text, `elcache_requests_total{level="write",op="put"}`); got != 5 {
		t.Errorf("put requests %v, want 5", got)
	}
	if got := sample(t, text, `elcache_requests_total{level="eventual",op="get"}`); got != 5 {
		t.Errorf("EVENTUAL get requests %v, want 5 (3 unary, 2 pipelined)", got)
	}
	if got := sample(t, text, `elcache_request_errors_total{code="InvalidArgument",op="get"}`); got != 1 {
		t.Errorf("InvalidArgument get errors %v, want 1", got)
	}
	if got := sample(t, text, `elcache_request_duration_seconds_count{level="write",op="put"}`); got != 5 {
		t.Errorf("put latency samples %v, want 5", got)
	}
	if got := sample(t, text, `elcache_refill_loads_total`); got != 1 {
		t.Errorf("refill loads %v, want 1", got)
	}
	if got := sample(t, text, `elcache_members{state="alive"}`); got != 1 {
		t.Errorf("alive members %v, want 1", got)
	}
	if got := sample(t, text, `elcache_raft_state{partition="0"}`); got != 2 {
		t.Errorf("raft state of partition 0 on a single node %v, want 2 (leader)", got)
	}
	if got := sample(t, text, `elcache_raft_leader_changes_total{partition="0"}`); got < 1 {
		t.Errorf("leader changes of partition 0 %v, want at least the first election", got)
	}
	if got := sample(t, text, `elcache_capacity_bytes`); got != float64(n.Config.CapacityBytes) {
		t.Errorf("capacity %v, want %d", got, n.Config.CapacityBytes)
	}
	for _, name := range []string{"elcache_raft_apply_lag_entries", "elcache_writeback_backlog_keys",
		"elcache_writeback_flush_lag_seconds", "elcache_writeback_flushed_rows_total", "elcache_refill_coalesced_total",
		"elcache_backend_breaker_state", "elcache_evictions_total", "elcache_used_bytes", "elcache_disk_bytes",
		"elcache_partition_keys", "elcache_cache_operations_total", "go_goroutines", "process_resident_memory_bytes"} {
		if !strings.Contains(text, "\n"+name) {
			t.Errorf("/metrics has no %s", name)
		}
	}
	if got := sample(t, text, `elcache_backend_breaker_state`); got != 0 {
		t.Errorf("breaker state %v, want 0 (closed)", got)
	}
}

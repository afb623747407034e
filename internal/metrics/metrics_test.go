package metrics

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	cachev1 "github.com/elcache/elcache/proto/cache/v1"
)

// newTest returns metrics reading snap on every scrape, with EVENTUAL as
// the default read level.
func newTest(t *testing.T, snap Snapshot, errorStatus func(error) error) *Metrics {
	t.Helper()
	m, err := New(Config{Snapshot: func() Snapshot { return snap },
		DefaultLevel: cachev1.Consistency_CONSISTENCY_EVENTUAL, ErrorStatus: errorStatus})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// scrape returns the text m serves at /metrics.
func scrape(t *testing.T, m *Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	body, err := io.ReadAll(rec.Result().Body)
	if err != nil || rec.Code != http.StatusOK {
		t.Fatalf("GET /metrics: %d, %v", rec.Code, err)
	}
	return string(body)
}

// sample returns the value of the sample whose name and labels are
// exactly series, and whether there is one.
func sample(t *testing.T, text, series string) (float64, bool) {
	t.Helper()
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`)
	m := re.FindStringSubmatch(text)
	if m == nil {
		return 0, false
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	return v, true
}

// wantSamples checks that text holds each series with its value.
func wantSamples(t *testing.T, text string, want map[string]float64) {
	t.Helper()
	for series, w := range want {
		if got, ok := sample(t, text, series); !ok {
			t.Errorf("no sample %s in /metrics", series)
		} else if got != w {
			t.Errorf("%s = %v, want %v", series, got, w)
		}
	}
}

// wantTypes checks that text declares each metric with its type: the
// names and types the dashboard queries (deploy/dashboard_test.go checks
// them against a real node; a rename here is a rename there).
func wantTypes(t *testing.T, text string, want map[string]string) {
	t.Helper()
	for name, typ := range want {
		if line := "# TYPE " + name + " " + typ + "\n"; !strings.Contains(text, line) {
			t.Errorf("/metrics has no %q", line)
		}
	}
}

func TestNewValidates(t *testing.T) {
	if _, err := New(Config{}); err == nil || !strings.HasPrefix(err.Error(), "metrics: ") {
		t.Errorf("New without a Snapshot: %v, want a metrics: error", err)
	}
}

func TestRequestLabels(t *testing.T) {
	eventual := cachev1.Consistency_CONSISTENCY_EVENTUAL
	withLevel := &cachev1.ReadOptions{Consistency: cachev1.Consistency_CONSISTENCY_LINEARIZABLE}
	for _, tc := range []struct {
		name      string
		req       any
		op, level string
		write     bool
	}{
		{"get, default level", &cachev1.GetRequest{}, "get", "eventual", false},
		{"get, its own level", &cachev1.GetRequest{Options: withLevel}, "get", "linearizable", false},
		{"multi_get", &cachev1.MultiGetRequest{Options: withLevel}, "multi_get", "linearizable", false},
		{"scan", &cachev1.ScanRequest{}, "scan", "eventual", false},
		{"put", &cachev1.PutRequest{}, "put", "write", true},
		{"delete", &cachev1.DeleteRequest{}, "delete", "write", true},
		{"compare_and_set", &cachev1.CompareAndSetRequest{}, "compare_and_set", "write", true},
		{"multi_put", &cachev1.MultiPutRequest{}, "multi_put", "write", true},
		{"not a data request", &cachev1.StatsRequest{}, "", "", false},
		{"nil", nil, "", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			op, level := RequestLabels(tc.req, eventual)
			if op != tc.op || level != tc.level {
				t.Errorf("RequestLabels = %q, %q; want %q, %q", op, level, tc.op, tc.level)
			}
			if got := IsWrite(tc.req); got != tc.write {
				t.Errorf("IsWrite = %v, want %v", got, tc.write)
			}
		})
	}
}

func TestRequestMetrics(t *testing.T) {
	notFound := errors.New("not found")
	m := newTest(t, Snapshot{}, func(err error) error {
		if err == notFound {
			return status.Error(codes.NotFound, err.Error())
		}
		return err
	})
	cache := "/" + cachev1.Cache_ServiceDesc.ServiceName + "/"
	call := func(method string, req any, err error) {
		t.Helper()
		handled := false
		_, got := m.UnaryInterceptor(context.Background(), req, &grpc.UnaryServerInfo{FullMethod: method},
			func(context.Context, any) (any, error) { handled = true; return nil, err })
		if !handled || got != err {
			t.Fatalf("%s: handler ran %v, error %v; want it run and %v", method, handled, got, err)
		}
	}
	for range 3 {
		call(cache+"Put", &cachev1.PutRequest{}, nil)
	}
	call(cache+"Get", &cachev1.GetRequest{}, nil)
	call(cache+"Get", &cachev1.GetRequest{}, notFound)
	call(cache+"Get", &cachev1.GetRequest{}, status.Error(codes.InvalidArgument, "empty key"))
	// Not counted: another service, a request with no labels.
	call("/elcache.peer.v1.Peer/Forward", &cachev1.GetRequest{}, nil)
	call(cache+"Stats", &cachev1.StatsRequest{}, nil)
	// Pipelined calls, one failed.
	m.ObserveCall(&cachev1.Call{Request: &cachev1.Call_Get{Get: &cachev1.GetRequest{}}}, time.Now(), &cachev1.CallResult{})
	m.ObserveCall(&cachev1.Call{Request: &cachev1.Call_Put{Put: &cachev1.PutRequest{}}}, time.Now(),
		&cachev1.CallResult{Error: &cachev1.CallError{Code: int32(codes.Unavailable), Message: "no leader"}})
	// A stream the guard refused.
	m.RefusedStream(cache+"Pipeline", status.Error(codes.Unauthenticated, "no token"))

	text := scrape(t, m)
	wantSamples(t, text, map[string]float64{
		`elcache_requests_total{level="write",op="put"}`:                     4,
		`elcache_requests_total{level="eventual",op="get"}`:                  4,
		`elcache_request_duration_seconds_count{level="write",op="put"}`:     4,
		`elcache_request_duration_seconds_count{level="eventual",op="get"}`:  4,
		`elcache_request_errors_total{code="NotFound",op="get"}`:             1,
		`elcache_request_errors_total{code="InvalidArgument",op="get"}`:      1,
		`elcache_request_errors_total{code="Unavailable",op="put"}`:          1,
		`elcache_request_errors_total{code="Unauthenticated",op="pipeline"}`: 1,
	})
	if strings.Contains(text, `op="stats"`) || strings.Contains(text, `op=""`) {
		t.Errorf("a request with no labels was counted:\n%s", text)
	}
	wantTypes(t, text, map[string]string{"elcache_requests_total": "counter",
		"elcache_request_duration_seconds": "histogram", "elcache_request_errors_total": "counter"})
}

func TestNilMetricsCountNothing(t *testing.T) {
	var m *Metrics
	handled := false
	if _, err := m.UnaryInterceptor(context.Background(), &cachev1.GetRequest{},
		&grpc.UnaryServerInfo{FullMethod: "/" + cachev1.Cache_ServiceDesc.ServiceName + "/Get"},
		func(context.Context, any) (any, error) { handled = true; return nil, nil }); err != nil || !handled {
		t.Errorf("nil metrics' interceptor: handler ran %v, error %v", handled, err)
	}
	m.ObserveCall(&cachev1.Call{Request: &cachev1.Call_Get{Get: &cachev1.GetRequest{}}}, time.Now(), &cachev1.CallResult{})
	m.RefusedStream("/elcache.cache.v1.Cache/Pipeline", status.Error(codes.Unauthenticated, "no token"))
}

func TestState(t *testing.T) {
	snap := Snapshot{
		Partitions: []Partition{
			{ID: 0, Role: cachev1.Role_ROLE_LEADER, Applied: 10, Commit: 12, LeaderChanges: 1,
				Keys: 5, Bytes: 500, Dirty: 2, Refused: 1, Evictions: 3, Expirations: 4},
			{ID: 7, Role: cachev1.Role_ROLE_FOLLOWER, Applied: 9, Commit: 8, LeaderChanges: 2,
				Keys: 1, Bytes: 100, Dirty: 1, Evictions: 1},
		},
		CapacityBytes: 1 << 20, DiskBytes: 4096,
		Hits: 11, Misses: 12, Puts: 13, Deletes: 14, Forwarded: 15,
		RowCache: RowCache{Entries: 31, Bytes: 32, MaxBytes: 33, Hits: 34, Misses: 35},
		Changes:  Changes{Streams: 2, Subscriptions: 5, Sent: 41},
		Backing: &Backing{FlushLag: 1500 * time.Millisecond, FlushedRows: 21, Loads: 22, Coalesced: 23, Refills: 24,
			Breaker: BreakerOpen},
		Members: map[string]int{"alive": 2, "suspect": 1, "dead": 0, "left": 0},
	}
	text := scrape(t, newTest(t, snap, nil))
	wantSamples(t, text, map[string]float64{
		`elcache_raft_state{partition="0"}`:                2,
		`elcache_raft_state{partition="7"}`:                0,
		`elcache_raft_apply_lag_entries{partition="0"}`:    2,
		`elcache_raft_apply_lag_entries{partition="7"}`:    0, // applied past the commit it knows
		`elcache_raft_leader_changes_total{partition="7"}`: 2,
		`elcache_partition_keys{partition="0"}`:            5,
		`elcache_partition_bytes{partition="7"}`:           100,
		`elcache_used_bytes`:                               600,
		`elcache_capacity_bytes`:                           1 << 20,
		`elcache_disk_bytes`:                               4096,
		`elcache_evictions_total`:                          4,
		`elcache_expirations_total`:                        4,
		`elcache_cache_operations_total{result="hit"}`:     11,
		`elcache_cache_operations_total{result="miss"}`:    12,
		`elcache_cache_operations_total{result="put"}`:     13,
		`elcache_cache_operations_total{result="delete"}`:  14,
		`elcache_forwarded_total`:                          15,
		`elcache_row_cache_entries`:                        31,
		`elcache_row_cache_bytes`:                          32,
		`elcache_row_cache_max_bytes`:                      33,
		`elcache_row_cache_lookups_total{result="hit"}`:    34,
		`elcache_row_cache_lookups_total{result="miss"}`:   35,
		`elcache_changes_streams`:                          2,
		`elcache_changes_subscriptions`:                    5,
		`elcache_changes_sent_total`:                       41,
		`elcache_writeback_backlog_keys`:                   3,
		`elcache_writeback_refused_keys`:                   1,
		`elcache_writeback_flush_lag_seconds`:              1.5,
		`elcache_writeback_flushed_rows_total`:             21,
		`elcache_refill_loads_total`:                       22,
		`elcache_refill_coalesced_total`:                   23,
		`elcache_refills_total`:                            24,
		`elcache_backend_breaker_state`:                    2,
		`elcache_members{state="alive"}`:                   2,
		`elcache_members{state="suspect"}`:                 1,
		`elcache_members{state="dead"}`:                    0,
		`elcache_members{state="left"}`:                    0,
	})
	wantTypes(t, text, map[string]string{
		"elcache_raft_state": "gauge", "elcache_raft_apply_lag_entries": "gauge", "elcache_raft_leader_changes_total": "counter",
		"elcache_partition_keys": "gauge", "elcache_partition_bytes": "gauge",
		"elcache_writeback_backlog_keys": "gauge", "elcache_writeback_refused_keys": "gauge",
		"elcache_writeback_flush_lag_seconds": "gauge", "elcache_writeback_flushed_rows_total": "counter",
		"elcache_refill_loads_total": "counter", "elcache_refill_coalesced_total": "counter",
		"elcache_refills_total": "counter", "elcache_backend_breaker_state": "gauge",
		"elcache_members": "gauge", "elcache_evictions_total": "counter", "elcache_expirations_total": "counter",
		"elcache_capacity_bytes": "gauge", "elcache_used_bytes": "gauge", "elcache_disk_bytes": "gauge",
		"elcache_cache_operations_total": "counter", "elcache_forwarded_total": "counter",
		"elcache_row_cache_entries": "gauge", "elcache_row_cache_bytes": "gauge", "elcache_row_cache_max_bytes": "gauge",
		"elcache_row_cache_lookups_total": "counter",
		"elcache_changes_streams":         "gauge", "elcache_changes_subscriptions": "gauge", "elcache_changes_sent_total": "counter",
		"go_goroutines": "gauge", "process_resident_memory_bytes": "gauge",
	})
}

func TestStateWithoutDatabaseOrGossip(t *testing.T) {
	snap := Snapshot{Partitions: []Partition{{ID: 3, Role: cachev1.Role_ROLE_UNSPECIFIED, Dirty: 4}}}
	text := scrape(t, newTest(t, snap, nil))
	wantSamples(t, text, map[string]float64{
		`elcache_raft_state{partition="3"}`: 3, // shut down
		`elcache_capacity_bytes`:            0,
		`elcache_forwarded_total`:           0,
	})
	for _, name := range []string{"elcache_writeback_backlog_keys", "elcache_writeback_refused_keys",
		"elcache_writeback_flush_lag_seconds", "elcache_writeback_flushed_rows_total", "elcache_refill_loads_total",
		"elcache_refill_coalesced_total", "elcache_refills_total", "elcache_backend_breaker_state", "elcache_members"} {
		if strings.Contains(text, "\n"+name) {
			t.Errorf("/metrics has %s without a database or gossip", name)
		}
	}
}

func TestRaftStateValue(t *testing.T) {
	for role, want := range map[cachev1.Role]int{
		cachev1.Role_ROLE_FOLLOWER:    0,
		cachev1.Role_ROLE_NONVOTER:    0,
		cachev1.Role_ROLE_CANDIDATE:   1,
		cachev1.Role_ROLE_LEADER:      2,
		cachev1.Role_ROLE_UNSPECIFIED: 3,
	} {
		if got := raftStateValue(role); got != want {
			t.Errorf("raftStateValue(%v) = %d, want %d", role, got, want)
		}
	}
}

func TestHandlerServesOnlyMetrics(t *testing.T) {
	m := newTest(t, Snapshot{}, nil)
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	if rec.Code != http.StatusNotFound {
		t.Errorf("GET /: %d, want %d", rec.Code, http.StatusNotFound)
	}
}

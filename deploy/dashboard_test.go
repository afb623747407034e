// Package deploy_test checks the deployment files of this directory: the
// monitoring stack's files against each other and against a real node.
package deploy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/elcache/elcache/node"
	"github.com/elcache/elcache/node/nodetest"
	cachev1 "github.com/elcache/elcache/proto/cache/v1"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// The monitoring files of deploy/ (the Grafana dashboard, Prometheus's
// scrape configuration, Grafana's provisioning and the full compose stack)
// are decoded strictly and checked against each other, and every metric the
// dashboard queries must be served by a real node's /metrics.
// metricsText returns the /metrics page a node serves on addr.
func metricsText(t *testing.T, addr string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s", resp.Status)
	}
	var b strings.Builder
	if _, err := io.Copy(&b, resp.Body); err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	return b.String()
}

// TestDashboardChecksCatch breaks them on purpose, one check at a time, and
// expects each break to be reported.

// deployDir holds the files under test: this package's directory, where
// go test runs it.
const deployDir = "."

// Names the monitoring files must agree on.
const (
	dashboardFile     = "grafana/elcache-dashboard.json"
	dashboardUID      = "elcache"
	dashboardDSVar    = "${datasource}" // every panel and target queries the datasource variable
	instanceFilter    = `instance=~"$instance"`
	promConfigFile    = "prometheus/prometheus.yml"
	promJob           = "elcache"
	promConfigMount   = "/etc/prometheus/prometheus.yml"
	provisioningDir   = "grafana/provisioning"
	provisioningMount = "/etc/grafana/provisioning"
	baseComposeFile   = "compose/docker-compose.yml"
	fullComposeFile   = "compose/docker-compose.full.yml"
)

// dashboardWants are the metrics the dashboard must chart (docs/operations.md
// "Metrics"): requests, latency, errors, Raft, write-back, refill, the
// breaker, membership, evictions, capacity, hit ratio, the process, the
// Redis-protocol listener and the row cache.
var dashboardWants = []string{
	"elcache_requests_total", "elcache_request_duration_seconds", "elcache_request_errors_total",
	"elcache_raft_state", "elcache_raft_apply_lag_entries", "elcache_raft_leader_changes_total",
	"elcache_writeback_backlog_keys", "elcache_writeback_flush_lag_seconds",
	"elcache_refill_loads_total", "elcache_refill_coalesced_total", "elcache_backend_breaker_state",
	"elcache_members", "elcache_evictions_total", "elcache_expirations_total",
	"elcache_capacity_bytes", "elcache_used_bytes", "elcache_disk_bytes", "elcache_cache_operations_total",
	"process_cpu_seconds_total", "process_resident_memory_bytes", "go_goroutines",
	"elcache_resp_connections", "elcache_resp_connections_total", "elcache_resp_commands_total",
	"elcache_resp_command_duration_seconds", "elcache_resp_errors_total",
	"elcache_row_cache_lookups_total", "elcache_row_cache_bytes", "elcache_row_cache_max_bytes",
	"elcache_changes_streams", "elcache_changes_sent_total",
}

// dashboard is the part of Grafana's dashboard JSON model the file uses;
// decoding rejects any other field.
type dashboard struct {
	Annotations   json.RawMessage `json:"annotations"`
	Description   string          `json:"description"`
	Editable      bool            `json:"editable"`
	GraphTooltip  int             `json:"graphTooltip"`
	Links         json.RawMessage `json:"links"`
	Panels        []dashPanel     `json:"panels"`
	Refresh       string          `json:"refresh"`
	SchemaVersion int             `json:"schemaVersion"`
	Tags          []string        `json:"tags"`
	Templating    struct {
		List []dashVariable `json:"list"`
	} `json:"templating"`
	Time struct {
		From string `json:"from"`
		To   string `json:"to"`
	} `json:"time"`
	Timepicker json.RawMessage `json:"timepicker"`
	Timezone   string          `json:"timezone"`
	Title      string          `json:"title"`
	UID        string          `json:"uid"`
	Version    int             `json:"version"`
}

type dashPanel struct {
	ID          int             `json:"id"`
	Type        string          `json:"type"`
	Title       string          `json:"title"`
	Description string          `json:"description"`
	Datasource  dashDatasource  `json:"datasource"`
	GridPos     dashGridPos     `json:"gridPos"`
	FieldConfig json.RawMessage `json:"fieldConfig"`
	Options     json.RawMessage `json:"options"`
	Targets     []dashTarget    `json:"targets"`
}

type dashDatasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type dashGridPos struct {
	H int `json:"h"`
	W int `json:"w"`
	X int `json:"x"`
	Y int `json:"y"`
}

type dashTarget struct {
	Datasource   dashDatasource `json:"datasource"`
	Expr         string         `json:"expr"`
	LegendFormat string         `json:"legendFormat"`
	RefID        string         `json:"refId"`
}

type dashVariable struct {
	Name       string          `json:"name"`
	Label      string          `json:"label"`
	Type       string          `json:"type"`
	Datasource *dashDatasource `json:"datasource"`
	Query      string          `json:"query"`
	Definition string          `json:"definition"`
	Current    json.RawMessage `json:"current"`
	Hide       int             `json:"hide"`
	Refresh    int             `json:"refresh"`
	Regex      string          `json:"regex"`
	Options    json.RawMessage `json:"options"`
	IncludeAll bool            `json:"includeAll"`
	Multi      bool            `json:"multi"`
	AllValue   string          `json:"allValue"`
	Sort       int             `json:"sort"`
}

// decodeDashboard decodes the dashboard JSON, rejecting unknown fields and
// the required keys spelled in another case (encoding/json matches names
// case-insensitively; Grafana does not).
func decodeDashboard(data []byte) (dashboard, error) {
	var d dashboard
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d); err != nil {
		return d, fmt.Errorf("dashboard: %w", err)
	}
	if dec.More() {
		return d, errors.New("dashboard: data after the JSON object")
	}
	errs := []error{requireKeys("dashboard", data, "title", "uid", "schemaVersion", "panels", "templating")}
	var raw struct {
		Panels []json.RawMessage `json:"panels"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return d, fmt.Errorf("dashboard: %w", err)
	}
	for i, p := range raw.Panels {
		errs = append(errs, requireKeys(fmt.Sprintf("panel %d", i), p, "type", "title", "gridPos", "targets"))
		var panel struct {
			Targets []json.RawMessage `json:"targets"`
		}
		if err := json.Unmarshal(p, &panel); err != nil {
			return d, fmt.Errorf("dashboard: panel %d: %w", i, err)
		}
		for j, tg := range panel.Targets {
			errs = append(errs, requireKeys(fmt.Sprintf("panel %d target %d", i, j), tg, "expr", "refId"))
		}
	}
	return d, errors.Join(errs...)
}

// requireKeys fails unless the JSON object obj has every key, spelled exactly.
func requireKeys(what string, obj json.RawMessage, keys ...string) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(obj, &m); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	var errs []error
	for _, k := range keys {
		if _, ok := m[k]; !ok {
			errs = append(errs, fmt.Errorf("%s: no %q key", what, k))
		}
	}
	return errors.Join(errs...)
}

// metricName finds the metric names an expression queries.
var metricName = regexp.MustCompile(`\b(?:elcache|go|process)_[a-zA-Z0-9_:]+`)

// exprMetrics returns the metric names in expr, sorted, without repeats.
func exprMetrics(expr string) []string {
	names := metricName.FindAllString(expr, -1)
	slices.Sort(names)
	return slices.Compact(names)
}

// dashboardMetrics returns every metric name the dashboard's targets query.
func dashboardMetrics(d dashboard) []string {
	var names []string
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			names = append(names, exprMetrics(tg.Expr)...)
		}
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// lintDashboard checks the dashboard's structure on its own.
func lintDashboard(d dashboard) []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if d.Title == "" {
		bad("dashboard: empty title")
	}
	if d.UID != dashboardUID {
		bad("dashboard: uid %q, want %q (links and bookmarks use it)", d.UID, dashboardUID)
	}
	if d.SchemaVersion <= 0 {
		bad("dashboard: schemaVersion %d, want > 0", d.SchemaVersion)
	}
	if len(d.Panels) == 0 {
		bad("dashboard: no panels")
	}

	vars := map[string]dashVariable{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v
	}
	if v, ok := vars["datasource"]; !ok || v.Type != "datasource" || v.Query != "prometheus" {
		bad("dashboard: no datasource variable of type datasource querying prometheus (got %+v)", v)
	}
	if v, ok := vars["instance"]; !ok || v.Type != "query" || v.Datasource == nil || v.Datasource.UID != dashboardDSVar ||
		!regexp.MustCompile(`^label_values\(elcache_[a-z_]+, *instance\)$`).MatchString(v.Query) {
		bad("dashboard: no instance variable from label_values(elcache_..., instance) on %s (got %+v)", dashboardDSVar, v)
	}

	ids := map[int]bool{}
	titles := map[string]bool{}
	for i, p := range d.Panels {
		name := fmt.Sprintf("panel %d %q", i, p.Title)
		if p.Type != "timeseries" && p.Type != "stat" {
			bad("%s: type %q, want timeseries or stat", name, p.Type)
		}
		if p.Title == "" {
			bad("%s: empty title", name)
		}
		if titles[p.Title] {
			bad("%s: title used twice", name)
		}
		titles[p.Title] = true
		if p.ID <= 0 || ids[p.ID] {
			bad("%s: id %d not positive or not unique", name, p.ID)
		}
		ids[p.ID] = true
		if p.Datasource.UID != dashboardDSVar {
			bad("%s: datasource %+v, want uid %s", name, p.Datasource, dashboardDSVar)
		}
		g := p.GridPos
		if g.W <= 0 || g.H <= 0 || g.X < 0 || g.Y < 0 || g.X+g.W > 24 {
			bad("%s: gridPos %+v off Grafana's 24-column grid", name, g)
		}
		for j, q := range d.Panels[:i] {
			if h := q.GridPos; g.X < h.X+h.W && h.X < g.X+g.W && g.Y < h.Y+h.H && h.Y < g.Y+g.H {
				bad("%s: gridPos %+v overlaps panel %d %q", name, g, j, q.Title)
			}
		}
		if len(p.Targets) == 0 {
			bad("%s: no targets", name)
		}
		refs := map[string]bool{}
		for _, tg := range p.Targets {
			if tg.RefID == "" || refs[tg.RefID] {
				bad("%s: refId %q empty or not unique", name, tg.RefID)
			}
			refs[tg.RefID] = true
			if tg.Datasource.UID != dashboardDSVar {
				bad("%s %s: datasource %+v, want uid %s", name, tg.RefID, tg.Datasource, dashboardDSVar)
			}
			if tg.LegendFormat == "" {
				bad("%s %s: empty legendFormat", name, tg.RefID)
			}
			if err := lintExpr(tg.Expr); err != nil {
				bad("%s %s: %v", name, tg.RefID, err)
			}
		}
	}

	used := dashboardMetrics(d)
	for _, want := range dashboardWants {
		if !slices.ContainsFunc(used, func(n string) bool { return n == want || histogramBase(n) == want }) {
			bad("dashboard: no panel charts %s", want)
		}
	}
	return errs
}

// lintExpr checks what can be checked of a PromQL expression without a
// parser: it is not empty, its brackets balance, it queries a metric and
// it follows the instance variable.
func lintExpr(expr string) error {
	if strings.TrimSpace(expr) == "" {
		return errors.New("empty expr")
	}
	var stack []rune
	inQuote := false
	for _, c := range expr {
		switch {
		case c == '"':
			inQuote = !inQuote
		case inQuote:
		case strings.ContainsRune("([{", c):
			stack = append(stack, c)
		case strings.ContainsRune(")]}", c):
			open := map[rune]rune{')': '(', ']': '[', '}': '{'}[c]
			if len(stack) == 0 || stack[len(stack)-1] != open {
				return fmt.Errorf("expr %q: unbalanced %q", expr, c)
			}
			stack = stack[:len(stack)-1]
		}
	}
	if inQuote || len(stack) > 0 {
		return fmt.Errorf("expr %q: unclosed quote or bracket", expr)
	}
	if len(exprMetrics(expr)) == 0 {
		return fmt.Errorf("expr %q: no elcache_, go_ or process_ metric", expr)
	}
	if !strings.Contains(expr, instanceFilter) {
		return fmt.Errorf("expr %q: does not filter by %s", expr, instanceFilter)
	}
	return nil
}

// histogramBase strips a histogram series suffix: _bucket, _sum, _count.
func histogramBase(name string) string {
	for _, s := range []string{"_bucket", "_sum", "_count"} {
		if b, ok := strings.CutSuffix(name, s); ok {
			return b
		}
	}
	return name
}

// exposition is what a /metrics text declares: metric types by name (from
// # TYPE lines) and the names of the samples.
type exposition struct {
	types   map[string]string
	samples map[string]bool
}

func parseExposition(text string) exposition {
	e := exposition{types: map[string]string{}, samples: map[string]bool{}}
	for line := range strings.SplitSeq(text, "\n") {
		if rest, ok := strings.CutPrefix(line, "# TYPE "); ok {
			if f := strings.Fields(rest); len(f) == 2 {
				e.types[f[0]] = f[1]
			}
			continue
		}
		if line == "" || line[0] == '#' {
			continue
		}
		if i := strings.IndexAny(line, "{ "); i > 0 {
			e.samples[line[:i]] = true
		}
	}
	return e
}

// rangeFunc finds functions that need a counter: rate(m...), increase(m...).
var rangeFunc = regexp.MustCompile(`\b(rate|irate|increase)\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)`)

// byLe finds an aggregation that keeps the le label.
var byLe = regexp.MustCompile(`by \([^)]*\ble\b`)

// lintDashboardMetrics checks the dashboard's metrics against a node's
// /metrics: each exists there, rates are taken of counters (or histogram
// buckets) only, and quantiles come from histogram buckets.
func lintDashboardMetrics(d dashboard, e exposition) []error {
	var errs []error
	// typeOf returns a name's metric type, and the name it is declared under.
	typeOf := func(name string) (string, string) {
		if b := histogramBase(name); b != name && (e.types[b] == "histogram" || e.types[b] == "summary") {
			return e.types[b], b
		}
		return e.types[name], name
	}
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			where := fmt.Sprintf("panel %q %s", p.Title, tg.RefID)
			// Exact series names: a histogram is queried by its _bucket,
			// _sum or _count series, never by its own name.
			for _, name := range exprMetrics(tg.Expr) {
				if !e.samples[name] {
					errs = append(errs, fmt.Errorf("%s: no %s series in /metrics", where, name))
				}
			}
			for _, m := range rangeFunc.FindAllStringSubmatch(tg.Expr, -1) {
				typ, decl := typeOf(m[2])
				if typ != "counter" && (typ != "histogram" || m[2] == decl) {
					if typ == "" {
						typ = "undeclared"
					}
					errs = append(errs, fmt.Errorf("%s: %s(%s) of a %s metric, want a counter", where, m[1], m[2], typ))
				}
			}
			if strings.Contains(tg.Expr, "histogram_quantile(") &&
				(!strings.Contains(tg.Expr, "_bucket") || !byLe.MatchString(tg.Expr)) {
				errs = append(errs, fmt.Errorf("%s: histogram_quantile without buckets summed by le", where))
			}
		}
	}
	return errs
}

func TestDashboard(t *testing.T) {
	m := readMonitoring(t)
	for _, err := range lintMonitoring(m) {
		t.Error(err)
	}

	// Every metric the dashboard queries, in a real node's /metrics once
	// it has answered a put, a get and a bad request, over gRPC and over
	// the Redis protocol.
	n := nodetest.Start(t, func(c *node.Config) {
		c.MetricsAddr = "127.0.0.1:0"
		c.RESP.Addr = "127.0.0.1:0"
		c.Backend = "sqlite://" + filepath.Join(t.TempDir(), "backing.db")
		c.Backing.CreateTable = true
	})
	conn, err := grpc.NewClient(n.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cl := cachev1.NewCacheClient(conn)
	opCtx := func(t *testing.T) context.Context {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		t.Cleanup(cancel)
		return ctx
	}
	if _, err := cl.Put(opCtx(t), &cachev1.PutRequest{Key: []byte("dash"), Value: []byte("v")}); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Get(opCtx(t), &cachev1.GetRequest{Key: []byte("dash")}); err != nil {
		t.Fatal(err)
	}
	// A failed request, so the error series exist too.
	if _, err := cl.Get(opCtx(t), &cachev1.GetRequest{}); err == nil {
		t.Fatal("get of an empty key succeeded")
	}
	rdb := redis.NewClient(&redis.Options{Addr: n.RESPAddr(), Protocol: 2})
	defer rdb.Close()
	if err := rdb.Set(opCtx(t), "dash-resp", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if v, err := rdb.Get(opCtx(t), "dash-resp").Result(); err != nil || v != "v" {
		t.Fatalf("RESP GET dash-resp = %q, %v", v, err)
	}
	if err := rdb.Do(opCtx(t), "nosuchcommand").Err(); err == nil {
		t.Fatal("RESP nosuchcommand succeeded")
	}
	text := metricsText(t, n.MetricsAddr())
	for _, err := range lintDashboardMetrics(m.dash, parseExposition(text)) {
		t.Error(err)
	}
	t.Logf("dashboard: %d panels querying %d metrics", len(m.dash.Panels), len(dashboardMetrics(m.dash)))
}

// TestDashboardChecksCatch breaks the monitoring files one way at a time;
// each break must be reported.
func TestDashboardChecksCatch(t *testing.T) {
	if errs := lintMonitoring(readMonitoring(t)); len(errs) > 0 {
		t.Fatalf("the files as they are fail the checks: %v", errs)
	}
	for _, tc := range []struct {
		name  string
		spoil func(m *monitoring)
	}{
		{"empty title", func(m *monitoring) { m.dash.Title = "" }},
		{"other uid", func(m *monitoring) { m.dash.UID = "elcache-2" }},
		{"no schema version", func(m *monitoring) { m.dash.SchemaVersion = 0 }},
		{"no instance variable", func(m *monitoring) { m.dash.Templating.List = m.dash.Templating.List[:1] }},
		{"panel without type", func(m *monitoring) { m.dash.Panels[0].Type = "" }},
		{"panel without title", func(m *monitoring) { m.dash.Panels[1].Title = "" }},
		{"panel without targets", func(m *monitoring) { m.dash.Panels[2].Targets = nil }},
		{"empty expr", func(m *monitoring) { m.dash.Panels[3].Targets[0].Expr = "" }},
		{"unbalanced expr", func(m *monitoring) { m.dash.Panels[3].Targets[0].Expr += ")" }},
		{"expr ignores instance", func(m *monitoring) {
			m.dash.Panels[3].Targets[0].Expr = strings.ReplaceAll(m.dash.Panels[3].Targets[0].Expr, instanceFilter, "")
		}},
		{"hard-coded datasource", func(m *monitoring) { m.dash.Panels[4].Targets[0].Datasource.UID = "prometheus" }},
		{"off the grid", func(m *monitoring) { m.dash.Panels[5].GridPos.X = 23 }},
		{"overlapping panels", func(m *monitoring) { m.dash.Panels[1].GridPos = m.dash.Panels[0].GridPos }},
		{"metric not charted", func(m *monitoring) {
			for i := range m.dash.Panels {
				for j := range m.dash.Panels[i].Targets {
					tg := &m.dash.Panels[i].Targets[j]
					tg.Expr = strings.ReplaceAll(tg.Expr, "elcache_refill_coalesced_total", "elcache_refills_total")
				}
			}
		}},
		{"prometheus scrapes another port", func(m *monitoring) {
			m.prom.ScrapeConfigs[0].StaticConfigs[0].Targets[1] = "n2:9100"
		}},
		{"prometheus misses a node", func(m *monitoring) {
			m.prom.ScrapeConfigs[0].StaticConfigs[0].Targets = m.prom.ScrapeConfigs[0].StaticConfigs[0].Targets[:2]
		}},
		{"no elcache job", func(m *monitoring) { m.prom.ScrapeConfigs[0].JobName = "nodes" }},
		{"metrics on the loopback", func(m *monitoring) {
			m.full.Services["n3"].Environment["ELCACHE_METRICS_ADDR"] = "127.0.0.1:7481"
		}},
		{"metrics port differs", func(m *monitoring) {
			env := maps.Clone(m.full.Services["n2"].Environment)
			env["ELCACHE_METRICS_ADDR"] = "0.0.0.0:7482"
			s := m.full.Services["n2"]
			s.Environment = env
			m.full.Services["n2"] = s
		}},
		{"redis port on the loopback", func(m *monitoring) {
			m.base.Services["n2"].Environment["ELCACHE_RESP_ADDR"] = "127.0.0.1:6379"
		}},
		{"redis port not published", func(m *monitoring) { setBasePorts(m, "n3") }},
		{"redis host port taken twice", func(m *monitoring) { setBasePorts(m, "n3", "127.0.0.1:6380:6379") }},
		{"redis port published beyond the loopback", func(m *monitoring) {
			setBasePorts(m, "n1", "127.0.0.1:7400:7400", "6379:6379")
		}},
		{"wrong database password", func(m *monitoring) { m.full.Services["postgres"].Environment["POSTGRES_PASSWORD"] = "x" }},
		{"no wait for postgres", func(m *monitoring) { m.full.Services["n1"].DependsOn["postgres"] = "service_started" }},
		{"grafana without anonymous access", func(m *monitoring) {
			m.full.Services["grafana"].Environment["GF_AUTH_ANONYMOUS_ENABLED"] = "false"
		}},
		{"dashboard not in the provider's directory", func(m *monitoring) {
			m.dashboards.Providers[0].Options.Path = "/etc/dashboards"
		}},
		{"data source elsewhere", func(m *monitoring) { m.datasources.Datasources[0].URL = "http://prometheus:9091" }},
		{"unpinned image", func(m *monitoring) {
			s := m.full.Services["grafana"]
			s.Image = "grafana/grafana"
			m.full.Services["grafana"] = s
		}},
		{"port beyond the loopback", func(m *monitoring) {
			s := m.full.Services["prometheus"]
			s.Ports = []string{"9090:9090"}
			m.full.Services["prometheus"] = s
		}},
		{"prometheus config not mounted", func(m *monitoring) {
			s := m.full.Services["prometheus"]
			s.Volumes = s.Volumes[1:]
			m.full.Services["prometheus"] = s
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := readMonitoring(t)
			tc.spoil(m)
			if errs := lintMonitoring(m); len(errs) == 0 {
				t.Error("not reported")
			} else {
				t.Log(errs[0])
			}
		})
	}

	// Decoding: unknown or miscased fields, in the JSON and the YAML.
	dash, err := os.ReadFile(filepath.Join(deployDir, dashboardFile))
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{
		"unknown dashboard field": bytes.Replace(dash, []byte(`"schemaVersion"`), []byte(`"schemaVersions"`), 1),
		"miscased panel field":    bytes.Replace(dash, []byte(`"gridPos"`), []byte(`"gridpos"`), 1),
		"miscased target field":   bytes.Replace(dash, []byte(`"refId"`), []byte(`"refID"`), 1),
		"not JSON":                dash[:len(dash)/2],
	} {
		if _, err := decodeDashboard(data); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
	var prom promConfig
	if err := decodeYAML([]byte("scrape_configs:\n  - job_name: x\n    static_config: []\n"), &prom); err == nil {
		t.Error("unknown prometheus.yml field: decoded")
	}

	// Metrics, against a small /metrics text.
	e := parseExposition("# TYPE elcache_used_bytes gauge\nelcache_used_bytes 1\n" +
		"# TYPE elcache_requests_total counter\nelcache_requests_total{op=\"get\",level=\"eventual\"} 1\n" +
		"# TYPE elcache_request_duration_seconds histogram\nelcache_request_duration_seconds_bucket{le=\"+Inf\"} 1\n")
	expr := func(s string) dashboard {
		return dashboard{Panels: []dashPanel{{Title: "p", Targets: []dashTarget{{RefID: "A", Expr: s}}}}}
	}
	for _, tc := range []struct {
		expr string
		ok   bool
	}{
		{`sum(rate(elcache_requests_total{instance=~"$instance"}[1m]))`, true},
		{`histogram_quantile(0.99, sum by (le) (rate(elcache_request_duration_seconds_bucket[1m])))`, true},
		{`elcache_used_bytes`, true},
		{`elcache_request_duration_seconds`, false},
		{`rate(elcache_nope_total[1m])`, false},
		{`elcache_requests_totl`, false},
		{`rate(elcache_used_bytes[1m])`, false},
		{`rate(elcache_request_duration_seconds[1m])`, false},
		{`histogram_quantile(0.99, rate(elcache_request_duration_seconds_bucket[1m]))`, false},
	} {
		if errs := lintDashboardMetrics(expr(tc.expr), e); (len(errs) == 0) != tc.ok {
			t.Errorf("%s: errors %v, want ok=%v", tc.expr, errs, tc.ok)
		}
	}
}

// setBasePorts sets the ports the base compose file publishes for service.
func setBasePorts(m *monitoring, service string, ports ...string) {
	s := m.base.Services[service]
	s.Ports = ports
	m.base.Services[service] = s
}

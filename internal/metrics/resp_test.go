package metrics

import (
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestRESPMetrics(t *testing.T) {
	m := newTest(t, Snapshot{}, nil)
	r := m.RESP()
	if r == nil {
		t.Fatal("RESP() of non-nil metrics is nil")
	}
	if m.RESP() != r {
		t.Fatal("RESP() returned another value the second time")
	}
	r.Connected(1)
	r.Connected(1)
	r.Connected(1)
	r.Connected(-1)

	now := time.Now()
	slow := now.Add(-2 * time.Second) // lands in the 2.5s bucket
	r.Command("get", now, "")
	r.Command("get", now, "")
	r.Command("get", slow, "WRONGTYPE")
	r.Command("GET", now, "") // the listener should pass lower case; upper case still counts as get
	r.Command("set", now, "")
	r.Command("auth", now, "NOAUTH")
	r.Command("elcache.consistency", now, "")
	// Unknown commands share one label, whatever the client sent.
	r.Command("flushal", now, "ERR")
	r.Command("no-such-\x00command", now, "ERR")
	// Error codes: not upper-case letters, or too long, count as ERR.
	r.Command("incr", now, "wrongtype")
	r.Command("incr", now, "WRONG-TYPE")
	r.Command("incr", now, "ABCDEFGHIJKLMNOPQ") // 17 letters
	r.Command("incr", now, "ABCDEFGHIJKLMNOP")  // 16 letters

	m.observe("get", "eventual", now, nil) // a request series, for its buckets

	text := scrape(t, m)
	wantSamples(t, text, map[string]float64{
		`elcache_resp_connections`:                                                              2,
		`elcache_resp_connections_total`:                                                        3,
		`elcache_resp_commands_total{command="get"}`:                                            4,
		`elcache_resp_commands_total{command="set"}`:                                            1,
		`elcache_resp_commands_total{command="auth"}`:                                           1,
		`elcache_resp_commands_total{command="elcache.consistency"}`:                            1,
		`elcache_resp_commands_total{command="unknown"}`:                                        2,
		`elcache_resp_commands_total{command="incr"}`:                                           4,
		`elcache_resp_command_duration_seconds_count{command="get"}`:                            4,
		`elcache_resp_command_duration_seconds_bucket{command="get",le="1"}`:                    3,
		`elcache_resp_command_duration_seconds_bucket{command="get",le="2.5"}`:                  4,
		`elcache_resp_command_duration_seconds_count{command="unknown"}`:                        2,
		`elcache_resp_errors_total{command="get",error="WRONGTYPE"}`:                            1,
		`elcache_resp_errors_total{command="auth",error="NOAUTH"}`:                              1,
		`elcache_resp_errors_total{command="unknown",error="ERR"}`:                              2,
		`elcache_resp_errors_total{command="incr",error="ERR"}`:                                 3,
		`elcache_resp_errors_total{command="incr",error="ABCDEFGHIJKLMNOP"}`:                    1,
		`elcache_resp_command_duration_seconds_bucket{command="elcache.consistency",le="+Inf"}`: 1,
	})
	wantTypes(t, text, map[string]string{
		"elcache_resp_connections": "gauge", "elcache_resp_connections_total": "counter",
		"elcache_resp_commands_total": "counter", "elcache_resp_command_duration_seconds": "histogram",
		"elcache_resp_errors_total": "counter",
	})
	// Commands nobody sent export nothing; successes count no error.
	for _, absent := range []string{`command="ping"`, `command="flushal"`, `command="GET"`,
		`elcache_resp_errors_total{command="set"`, `error="wrongtype"`, `error="WRONG-TYPE"`} {
		if strings.Contains(text, absent) {
			t.Errorf("/metrics has %s", absent)
		}
	}
	// The same buckets as the request latency.
	if got, want := bucketBounds(text, "elcache_resp_command_duration_seconds"), bucketBounds(text, "elcache_request_duration_seconds"); len(want) == 0 || !slices.Equal(got, want) {
		t.Errorf("RESP latency buckets %v, want the request latency's %v", got, want)
	}
}

// bucketBounds returns the le bounds of the first series of histogram name
// in text, in order.
func bucketBounds(text, name string) []string {
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `_bucket\{([^}]*)le="([^"]+)"\}`)
	var bounds []string
	first := ""
	for _, m := range re.FindAllStringSubmatch(text, -1) {
		if first == "" {
			first = m[1]
		}
		if m[1] == first {
			bounds = append(bounds, m[2])
		}
	}
	return bounds
}

func TestRESPNil(t *testing.T) {
	var m *Metrics
	r := m.RESP()
	if r != nil {
		t.Fatalf("nil metrics' RESP() = %v, want nil", r)
	}
	r.Connected(1)
	r.Connected(-1)
	r.Command("get", time.Now(), "")
	r.Command("get", time.Now(), "ERR")
}

func TestRESPErrorCode(t *testing.T) {
	for _, tc := range []struct{ prefix, want string }{
		{"ERR", "ERR"},
		{"WRONGTYPE", "WRONGTYPE"},
		{"NOAUTH", "NOAUTH"},
		{"NOPERM", "NOPERM"},
		{"EXECABORT", "EXECABORT"},
		{"X", "X"},
		{"ABCDEFGHIJKLMNOP", "ABCDEFGHIJKLMNOP"},
		{"ABCDEFGHIJKLMNOPQ", "ERR"},
		{"", "ERR"},
		{"wrongtype", "ERR"},
		{"Err", "ERR"},
		{"MOVED2", "ERR"},
		{"NO_AUTH", "ERR"},
		{"ÉRR", "ERR"},
	} {
		if got := respErrorCode(tc.prefix); got != tc.want {
			t.Errorf("respErrorCode(%q) = %q, want %q", tc.prefix, got, tc.want)
		}
	}
}

// TestRESPCommandsBounded: the command label takes only the known
// commands and "unknown", which the listener's commands are among.
func TestRESPCommandsBounded(t *testing.T) {
	if !slices.IsSorted(respCommands) || len(slices.Compact(slices.Clone(respCommands))) != len(respCommands) {
		t.Errorf("respCommands is not sorted or has repeats: %v", respCommands)
	}
	for _, c := range respCommands {
		if c != strings.ToLower(c) || strings.ContainsAny(c, " |") || c == respUnknown {
			t.Errorf("respCommands has %q: want one lower-case word, not %q", c, respUnknown)
		}
	}
	m := newTest(t, Snapshot{}, nil)
	for i := range 1000 {
		m.RESP().Command("cmd"+strings.Repeat("x", i%50), time.Now(), "")
	}
	for _, c := range respCommands {
		m.RESP().Command(c, time.Now(), "")
	}
	got := regexp.MustCompile(`(?m)^elcache_resp_commands_total\{command="([^"]+)"\}`).FindAllStringSubmatch(scrape(t, m), -1)
	if len(got) != len(respCommands)+1 {
		t.Errorf("%d command labels, want the %d known commands and unknown", len(got), len(respCommands))
	}
	for _, g := range got {
		if g[1] != respUnknown && !slices.Contains(respCommands, g[1]) {
			t.Errorf("command label %q", g[1])
		}
	}
}

// TestRESPConcurrent counts from many goroutines at once, first uses of a
// command and of an error code among them; no count may be lost (and the
// race detector watches the lazily made series).
func TestRESPConcurrent(t *testing.T) {
	m := newTest(t, Snapshot{}, nil)
	r := m.RESP()
	const workers, each = 8, 200
	codes := []string{"ERR", "WRONGTYPE", "NOAUTH", "NOPERM"}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.Connected(1)
			for i := range each {
				r.Command("mget", time.Now(), "")
				r.Command("mset", time.Now(), codes[(w+i)%len(codes)])
			}
			r.Connected(-1)
		}()
	}
	wg.Wait()
	want := map[string]float64{
		`elcache_resp_connections`:                                    0,
		`elcache_resp_connections_total`:                              workers,
		`elcache_resp_commands_total{command="mget"}`:                 workers * each,
		`elcache_resp_commands_total{command="mset"}`:                 workers * each,
		`elcache_resp_command_duration_seconds_count{command="mset"}`: workers * each,
	}
	for _, c := range codes {
		want[`elcache_resp_errors_total{command="mset",error="`+c+`"}`] = workers * each / float64(len(codes))
	}
	wantSamples(t, scrape(t, m), want)
}

// TestRESPCommandAllocs: counting a command costs no allocation once its
// series exist, on success and on error.
func TestRESPCommandAllocs(t *testing.T) {
	r := newTest(t, Snapshot{}, nil).RESP()
	start := time.Now()
	r.Command("get", start, "")
	r.Command("get", start, "WRONGTYPE")
	r.Command("bogus", start, "ERR")
	for _, tc := range []struct{ name, err string }{{"get", ""}, {"get", "WRONGTYPE"}, {"bogus", "ERR"}, {"get", "lower"}} {
		if n := testing.AllocsPerRun(100, func() { r.Command(tc.name, start, tc.err) }); n != 0 {
			t.Errorf("Command(%q, %q): %v allocations, want 0", tc.name, tc.err, n)
		}
	}
}

func BenchmarkRESPCommand(b *testing.B) {
	m, err := New(Config{Snapshot: func() Snapshot { return Snapshot{} }})
	if err != nil {
		b.Fatal(err)
	}
	r := m.RESP()
	start := time.Now()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if i++; i%16 == 0 {
				r.Command("set", start, "WRONGTYPE")
			} else {
				r.Command("get", start, "")
			}
		}
	})
}

package metrics

import (
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
)

func TestCheckListenAddr(t *testing.T) {
	for addr, ok := range map[string]bool{
		"127.0.0.1:9090": true, ":9090": true, "[::1]:0": true, "localhost:65535": true,
		"9090": false, "host:": false, "host:http": false, "host:65536": false, "": false,
	} {
		if err := CheckListenAddr(addr); (err == nil) != ok {
			t.Errorf("CheckListenAddr(%q) = %v, want ok %v", addr, err, ok)
		}
	}
}

// TestServeProfiler: Serve listens on a free port and serves the profiler
// index there until Close; a bad address fails with what it was for.
func TestServeProfiler(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, addr, err := Serve("admin", "127.0.0.1:0", ProfilerHandler(), log)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	resp, err := http.Get("http://" + addr + "/debug/pprof/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "goroutine") {
		t.Fatalf("profiler index: %d %q", resp.StatusCode, body[:min(len(body), 200)])
	}
	if _, _, err := Serve("admin", "127.0.0.1:99999", ProfilerHandler(), log); err == nil || !strings.Contains(err.Error(), "admin address") {
		t.Fatalf("bad address: err %v", err)
	}
}

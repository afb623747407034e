package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/elcache/elcache/node/nodetest"
)

// cli runs elcachectl against addr and checks its exit status.
func cli(t *testing.T, addr string, wantCode int, args ...string) (stdout, stderr string) {
	t.Helper()
	code, stdout, stderr := runArgs(append([]string{"--addr", addr}, args...)...)
	if code != wantCode {
		t.Fatalf("elcachectl %q: exit %d, want %d\nstdout: %s\nstderr: %s", args, code, wantCode, stdout, stderr)
	}
	return stdout, stderr
}

// cliJSON runs elcachectl -o json and decodes its one JSON object.
func cliJSON(t *testing.T, addr string, wantCode int, args ...string) map[string]any {
	t.Helper()
	stdout, _ := cli(t, addr, wantCode, append([]string{"-o", "json"}, args...)...)
	var v map[string]any
	dec := json.NewDecoder(strings.NewReader(stdout))
	if err := dec.Decode(&v); err != nil || dec.More() {
		t.Fatalf("elcachectl -o json %q: stdout %q is not one JSON object: %v", args, stdout, err)
	}
	return v
}

func TestEndToEnd(t *testing.T) {
	addr := nodetest.Start(t).Addr()

	if out, _ := cli(t, addr, 0, "put", "k", "v1", "--ttl", "10m"); out != "" {
		t.Errorf("put: %q", out)
	}
	if out, _ := cli(t, addr, 0, "get", "k", "--consistency", "linearizable"); out != "v1\n" {
		t.Errorf("get: %q, want v1", out)
	}
	j := cliJSON(t, addr, 0, "get", "--consistency=bounded=1s", "k")
	if j["key"] != "k" || j["value"] != "v1" || j["found"] != true || j["expires_at"] == nil || j["meta"] == nil {
		t.Errorf("get -o json: %v", j)
	}
	version := uint64(j["version"].(float64))

	if _, errOut := cli(t, addr, 1, "get", "missing"); errOut != "not found\n" {
		t.Errorf("get missing: stderr %q", errOut)
	}
	if j := cliJSON(t, addr, 1, "get", "missing"); j["found"] != false || j["key"] != "missing" {
		t.Errorf("get missing -o json: %v", j)
	}

	// cas: a failed expectation prints the current version and exits 1.
	if out, _ := cli(t, addr, 1, "cas", "k", "x", "--expect-absent"); out != fmt.Sprintf("not swapped version=%d\n", version) {
		t.Errorf("cas absent: %q", out)
	}
	if out, _ := cli(t, addr, 0, "cas", "k", "v2", "--expect-version", fmt.Sprint(version)); !strings.HasPrefix(out, "swapped version=") {
		t.Errorf("cas version: %q", out)
	}
	if j := cliJSON(t, addr, 0, "cas", "--expect-value", "v2", "k", "v3"); j["swapped"] != true {
		t.Errorf("cas value -o json: %v", j)
	}
	if j := cliJSON(t, addr, 1, "cas", "k", "v4", "--expect-value", "v2"); j["swapped"] != false {
		t.Errorf("cas stale value -o json: %v", j)
	}

	if out, _ := cli(t, addr, 0, "del", "k"); out != "existed=true\n" {
		t.Errorf("del: %q", out)
	}
	if j := cliJSON(t, addr, 0, "del", "k"); j["existed"] != false {
		t.Errorf("del again -o json: %v", j)
	}

	// Values that are not UTF-8, and arguments that look like flags.
	cli(t, addr, 0, "put", "--", "bin", "\xff\x00")
	if j := cliJSON(t, addr, 0, "get", "bin"); j["value_b64"] != base64.StdEncoding.EncodeToString([]byte("\xff\x00")) || j["value"] != nil {
		t.Errorf("get binary -o json: %v", j)
	}
	cli(t, addr, 0, "put", "dash", "--", "-1")
	if out, _ := cli(t, addr, 0, "get", "dash"); out != "-1\n" {
		t.Errorf("get dash: %q", out)
	}

	if out, _ := cli(t, addr, 0, "mput", "m/a", "1", "m/b", "2", "m/c", "3", "--mode", "cache-only"); strings.Count(out, "version=") != 3 {
		t.Errorf("mput: %q", out)
	}
	if out, _ := cli(t, addr, 0, "mget", "m/a", "m/x", "m/c"); out != "m/a\t1\nm/x\t(not found)\nm/c\t3\n" {
		t.Errorf("mget: %q", out)
	}
	if j := cliJSON(t, addr, 0, "mget", "m/b", "m/x"); len(j["results"].([]any)) != 2 {
		t.Errorf("mget -o json: %v", j)
	}

	// Durability: -o json reports what each write was acknowledged with.
	for _, d := range []string{"sync", "replicated"} {
		if j := cliJSON(t, addr, 0, "put", "d/"+d, d, "--durability", d); j["durability"] != d {
			t.Errorf("put --durability %s -o json: %v", d, j)
		}
	}
	if j := cliJSON(t, addr, 0, "put", "d/default", "v"); j["durability"] != "sync" {
		t.Errorf("put -o json without --durability: %v, want the node's default, sync", j)
	}
	j = cliJSON(t, addr, 0, "mput", "d/a", "1", "d/b", "2", "--durability", "replicated")
	if rs, _ := j["results"].([]any); len(rs) != 2 || rs[1].(map[string]any)["durability"] != "replicated" {
		t.Errorf("mput --durability replicated -o json: %v", j)
	}
	cli(t, addr, 0, "cas", "d/a", "3", "--expect-value", "1", "--durability", "replicated")
	cli(t, addr, 0, "del", "d/a", "--durability", "replicated")
	if out, _ := cli(t, addr, 0, "get", "d/replicated", "--consistency", "linearizable"); out != "replicated\n" {
		t.Errorf("get d/replicated: %q", out)
	}

	stats, _ := cli(t, addr, 0, "stats")
	if !strings.Contains(stats, "PARTITION") {
		t.Errorf("stats: %q", stats)
	}
	if j := cliJSON(t, addr, 0, "stats"); j["node_name"] == "" || j["partitions"] == nil {
		t.Errorf("stats -o json: %v", j)
	}

	// Invalid arguments come back from the server with its message.
	if _, errOut := cli(t, addr, 2, "get", ""); !strings.HasPrefix(errOut, "elcachectl: client: invalid argument: ") {
		t.Errorf("get empty key: stderr %q", errOut)
	}
}

func TestScanCLI(t *testing.T) {
	addr := nodetest.Start(t).Addr()
	var args []string
	for i := range 12 {
		args = append(args, fmt.Sprintf("s/%02d", i), fmt.Sprint(i))
	}
	cli(t, addr, 0, append([]string{"mput"}, args...)...)
	cli(t, addr, 0, "put", "other", "x")

	out, errOut := cli(t, addr, 0, "scan", "--prefix", "s/", "--page-size", "5")
	if n := strings.Count(out, "\n"); n != 12 || errOut != "" {
		t.Errorf("scan: %d lines, stderr %q; want 12 and nothing", n, errOut)
	}
	out, _ = cli(t, addr, 0, "scan", "--keys-only", "--page-size", "100")
	if n := strings.Count(out, "\n"); n != 13 || strings.Contains(out, "\t") {
		t.Errorf("scan --keys-only: %q", out)
	}

	// A limit stops early; the printed cursor resumes exactly there.
	j := cliJSON(t, addr, 0, "scan", "--prefix", "s/", "--page-size", "5", "--limit", "7")
	first := j["entries"].([]any)
	cursor, _ := j["next_cursor"].(string)
	if len(first) != 7 || cursor == "" {
		t.Fatalf("scan --limit 7: %d entries, cursor %q", len(first), cursor)
	}
	j = cliJSON(t, addr, 0, "scan", "--prefix", "s/", "--cursor", cursor)
	rest := j["entries"].([]any)
	if len(rest) != 5 || j["next_cursor"] != nil {
		t.Errorf("scan --cursor: %d entries, next %v; want 5 and done", len(rest), j["next_cursor"])
	}
	seen := map[any]bool{}
	for _, e := range append(first, rest...) {
		seen[e.(map[string]any)["key"]] = true
	}
	if len(seen) != 12 {
		t.Errorf("scan in two parts saw %d distinct keys, want 12", len(seen))
	}
	_, errOut = cli(t, addr, 0, "scan", "--limit", "2")
	if !strings.HasPrefix(errOut, "more entries: continue with --cursor ") {
		t.Errorf("scan --limit text: stderr %q", errOut)
	}
}

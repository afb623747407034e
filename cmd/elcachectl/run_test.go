package main

import (
	"bytes"
	"encoding/json"
	"net"
	"strings"
	"testing"
)

// deadAddr returns a local address nothing listens on.
func deadAddr(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()
	return addr
}

func runArgs(args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = run(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// Usage errors exit 2 before any request: the address is dead, so a request
// would fail with a different message.
func TestUsageErrors(t *testing.T) {
	dead := deadAddr(t)
	tests := []struct {
		name string
		args []string
		msg  string
	}{
		{"no command", nil, "no command"},
		{"only flags", []string{"--timeout", "1s"}, "no command"},
		{"unknown command", []string{"frobnicate"}, `unknown command "frobnicate"`},
		{"unknown global flag", []string{"--bogus", "get", "k"}, "flag provided but not defined"},
		{"global flag after command", []string{"get", "k", "--addr", "x:1"}, "flag provided but not defined: -addr"},
		{"bad output after command", []string{"get", "k", "-o", "yaml"}, "must be text or json"},
		{"bad output", []string{"-o", "yaml", "get", "k"}, "-o must be text or json"},
		{"negative timeout", []string{"--timeout", "-1s", "get", "k"}, "--timeout"},
		{"put one arg", []string{"put", "k"}, "put needs KEY VALUE, got 1 argument"},
		{"put three args", []string{"put", "k", "v", "w"}, "got 3 arguments"},
		{"put bad ttl", []string{"put", "k", "v", "--ttl", "soon"}, "invalid value"},
		{"put negative ttl", []string{"put", "k", "v", "--ttl", "-1s"}, "--ttl must not be negative"},
		{"put bad mode", []string{"put", "k", "v", "--mode", "write-sideways"}, `unknown mode "write-sideways"`},
		{"put bad durability", []string{"put", "k", "v", "--durability", "fsync"}, `unknown durability "fsync": want sync or replicated`},
		{"del bad durability", []string{"del", "k", "--durability", "always"}, `unknown durability "always"`},
		{"cas bad durability", []string{"cas", "k", "v", "--expect-absent", "--durability", "x"}, `unknown durability "x"`},
		{"mput bad durability", []string{"mput", "k", "v", "--durability", "x"}, `unknown durability "x"`},
		{"restore bad durability", []string{"restore", "f", "--durability", "x"}, `unknown durability "x"`},
		{"get no key", []string{"get"}, "get needs KEY"},
		{"get bad consistency", []string{"get", "k", "--consistency", "strong"}, `unknown consistency "strong"`},
		{"get bounded without staleness", []string{"get", "k", "--consistency", "bounded"}, "bounded=100ms"},
		{"del two keys", []string{"del", "a", "b"}, "del needs KEY"},
		{"del ttl", []string{"del", "a", "--ttl", "1s"}, "flag provided but not defined: -ttl"},
		{"cas no expectation", []string{"cas", "k", "v"}, "exactly one of"},
		{"cas two expectations", []string{"cas", "k", "v", "--expect-absent", "--expect-version", "3"}, "exactly one of"},
		{"cas absent false", []string{"cas", "k", "v", "--expect-absent=false"}, "exactly one of"},
		{"cas bad version", []string{"cas", "k", "v", "--expect-version", "x"}, "invalid value"},
		{"mget no keys", []string{"mget"}, "mget needs at least one KEY"},
		{"mput odd", []string{"mput", "a", "1", "b"}, "mput needs KEY VALUE pairs, got 3 arguments"},
		{"mput none", []string{"mput"}, "mput needs KEY VALUE pairs"},
		{"scan argument", []string{"scan", "x"}, "scan takes no arguments"},
		{"scan negative limit", []string{"scan", "--limit", "-1"}, "must not be negative"},
		{"scan bad cursor", []string{"scan", "--cursor", "!!"}, "--cursor"},
		{"stats argument", []string{"stats", "x"}, "stats takes no arguments"},
		{"version argument", []string{"version", "x"}, "version takes no arguments"},
		{"members argument", []string{"members", "x"}, "members takes no arguments"},
		{"partitions argument", []string{"partitions", "x"}, "partitions takes no arguments"},
		{"drain no node", []string{"drain"}, "drain needs NODE, got 0 arguments"},
		{"drain two nodes", []string{"drain", "a", "b"}, "drain needs NODE, got 2 arguments"},
		{"drain empty node", []string{"drain", ""}, "drain needs a node name or id"},
		{"drain zero timeout", []string{"drain", "a", "--timeout", "0s"}, "drain --timeout must be positive"},
		{"drain bad wait", []string{"drain", "a", "--wait=maybe"}, "invalid boolean value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runArgs(append([]string{"--addr", dead}, tt.args...)...)
			if code != 2 {
				t.Errorf("exit status %d, want 2", code)
			}
			if stdout != "" {
				t.Errorf("stdout = %q, want nothing", stdout)
			}
			if !strings.HasPrefix(stderr, "elcachectl: ") || !strings.Contains(stderr, tt.msg) || !strings.Contains(stderr, "Usage: elcachectl") {
				t.Errorf("stderr = %q, want elcachectl: ...%s... and the usage", stderr, tt.msg)
			}
		})
	}
}

func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"--help"}, {"help"}, {"put", "-h"}, {"scan", "--prefix", "p", "--help"}} {
		code, stdout, stderr := runArgs(args...)
		if code != 0 || !strings.HasPrefix(stdout, "Usage: elcachectl") || stderr != "" {
			t.Errorf("%q: exit %d, stdout %.30q, stderr %q; want 0 and the usage on stdout", args, code, stdout, stderr)
		}
	}
}

func TestVersion(t *testing.T) {
	code, stdout, _ := runArgs("version")
	if code != 0 || !strings.HasPrefix(stdout, "elcachectl ") {
		t.Errorf("version: exit %d, stdout %q", code, stdout)
	}
	code, stdout, _ = runArgs("-o", "json", "version")
	var v struct{ Version, Go string }
	if err := json.Unmarshal([]byte(stdout), &v); code != 0 || err != nil || v.Go == "" {
		t.Errorf("-o json version: exit %d, stdout %q, %v", code, stdout, err)
	}
}

// Errors from the server or the transport exit 2 with their message.
func TestRequestError(t *testing.T) {
	dead := deadAddr(t)
	code, stdout, stderr := runArgs("--addr", dead, "get", "k")
	if code != 2 || stdout != "" || !strings.HasPrefix(stderr, "elcachectl: client: unavailable: ") || strings.Contains(stderr, "Usage") {
		t.Errorf("exit %d, stdout %q, stderr %q; want 2 and the unavailable error", code, stdout, stderr)
	}
	if !strings.Contains(stderr, dead) {
		t.Errorf("stderr %q does not name %s", stderr, dead)
	}
}

// The cluster commands call the API directly; their errors read like the
// client's.
func TestClusterRequestError(t *testing.T) {
	dead := deadAddr(t)
	for _, args := range [][]string{{"members"}, {"partitions"}, {"drain", "n1"}} {
		code, stdout, stderr := runArgs(append([]string{"--addr", dead}, args...)...)
		want := "elcachectl: " + args[0] + ": unavailable: "
		if args[0] == "partitions" {
			want = "elcachectl: topology: unavailable: "
		}
		if code != 2 || stdout != "" || !strings.HasPrefix(stderr, want) || !strings.Contains(stderr, dead) {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want 2 and %s...%s", args, code, stdout, stderr, want, dead)
		}
	}
	code, _, stderr := runArgs("--addr", "nonsense", "members")
	if code != 2 || !strings.Contains(stderr, `seed "nonsense" is not HOST:PORT`) {
		t.Errorf("members with a bad --addr: exit %d, stderr %q", code, stderr)
	}
}

func TestCodeName(t *testing.T) {
	for in, want := range map[string]string{
		"Unavailable":        "unavailable",
		"NotFound":           "not found",
		"FailedPrecondition": "failed precondition",
		"OK":                 "ok",
		"DeadlineExceeded":   "deadline exceeded",
	} {
		if got := codeName(in); got != want {
			t.Errorf("codeName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestAddrFromEnv(t *testing.T) {
	fromEnv, fromFlag := deadAddr(t), deadAddr(t)
	t.Setenv("ELCACHE_ADDR", fromEnv)
	if _, _, stderr := runArgs("get", "k"); !strings.Contains(stderr, fromEnv) {
		t.Errorf("stderr %q does not name $ELCACHE_ADDR %s", stderr, fromEnv)
	}
	if _, _, stderr := runArgs("--addr", fromFlag, "get", "k"); !strings.Contains(stderr, fromFlag) {
		t.Errorf("stderr %q does not name --addr %s", stderr, fromFlag)
	}
}

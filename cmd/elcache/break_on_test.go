//go:build elcache_break

package main

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/elcache/elcache/node"
	"github.com/elcache/elcache/node/nodetest"
)

// TestBreakSwitches: a binary built with -tags elcache_break turns on the
// switches ELCACHE_BREAK names and says so loudly, and refuses to start on
// a name it does not know.
func TestBreakSwitches(t *testing.T) {
	env := func(v string) func(string) string {
		return func(k string) string {
			if k == "ELCACHE_BREAK" {
				return v
			}
			return ""
		}
	}
	t.Run("unknown", func(t *testing.T) {
		t.Setenv("ELCACHE_BREAK", "lease-check,no-such-switch")
		var stderr strings.Builder
		args := []string{"--data-dir", t.TempDir(), "--grpc-addr", "127.0.0.1:0", "--gossip-addr", "127.0.0.1:0"}
		if code := run(args, &stderr); code != 2 {
			t.Fatalf("run = %d, want 2; stderr:\n%s", code, stderr.String())
		}
		want := `ELCACHE_BREAK: unknown switch "no-such-switch" (valid: lease-check, flush-order, refill-fence, replicated-ack, changes-feed)`
		if !strings.Contains(stderr.String(), want) {
			t.Fatalf("stderr = %q, want it to say %q", stderr.String(), want)
		}
	})
	t.Run("on", func(t *testing.T) {
		hooks, apply, err := breakSwitches(env(" lease-check, flush-order,refill-fence "))
		if err != nil {
			t.Fatal(err)
		}
		if hooks == nil {
			t.Fatal("ELCACHE_BREAK set but no Hooks for the node")
		}
		nodetest.Start(t, func(c *node.Config) { c.Hooks = hooks })
		var buf strings.Builder
		apply(slog.New(slog.NewTextHandler(&buf, nil)))
		if got := buf.String(); !strings.Contains(got, "level=WARN") || !strings.Contains(got, "break=lease-check,flush-order,refill-fence") {
			t.Fatalf("log = %q, want a warning naming every switch", got)
		}
	})
	t.Run("none", func(t *testing.T) {
		hooks, apply, err := breakSwitches(env(""))
		if err != nil {
			t.Fatal(err)
		}
		if hooks != nil {
			t.Fatal("without ELCACHE_BREAK the node got Hooks")
		}
		var buf strings.Builder
		apply(slog.New(slog.NewTextHandler(&buf, nil)))
		if buf.String() != "" {
			t.Fatalf("without ELCACHE_BREAK the switches logged %q", buf.String())
		}
	})
}

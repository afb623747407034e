//go:build !elcache_break

package main

import (
	"strings"
	"testing"
)

// TestBreakRefusedWithoutTag: a binary built without -tags elcache_break
// refuses to start when asked to break promises, before it starts a node,
// so that a self-test never runs silently against an unbroken node.
func TestBreakRefusedWithoutTag(t *testing.T) {
	for _, v := range []string{"lease-check", "flush-order,refill-fence", "no-such-switch"} {
		t.Run(v, func(t *testing.T) {
			t.Setenv("ELCACHE_BREAK", v)
			var stderr strings.Builder
			args := []string{"--data-dir", t.TempDir(), "--grpc-addr", "127.0.0.1:0", "--gossip-addr", "127.0.0.1:0"}
			if code := run(args, &stderr); code != 2 {
				t.Fatalf("run with ELCACHE_BREAK=%s = %d, want 2; stderr:\n%s", v, code, stderr.String())
			}
			want := "ELCACHE_BREAK is set but this binary was built without -tags elcache_break"
			if !strings.Contains(stderr.String(), want) {
				t.Fatalf("stderr = %q, want it to say %q", stderr.String(), want)
			}
		})
	}
}

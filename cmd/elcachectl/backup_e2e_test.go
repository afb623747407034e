package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/elcache/elcache/client"
	"github.com/elcache/elcache/node"
	"github.com/elcache/elcache/node/nodetest"
)

// TestBackupRestore: a backup of a 3-node cluster restored into a fresh
// cluster (with another partition count) returns every key and value,
// with their TTLs; a damaged file or a non-empty target is refused.
func TestBackupRestore(t *testing.T) {
	src := nodetest.StartCluster(t, 3)
	ctx := context.Background()
	cfg := client.DefaultConfig()
	cfg.Seeds = []string{src.Nodes[0].Addr()}
	c, err := client.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const keys = 500
	want := map[string]string{}
	for i := range keys {
		k, v := fmt.Sprintf("key-%04d", i), fmt.Sprintf("value-%d-%s", i, strings.Repeat("x", i%200))
		var opts []client.WriteOption
		if i%10 == 0 {
			opts = append(opts, client.WithTTL(time.Hour))
		}
		if _, err := c.Put(ctx, []byte(k), []byte(v), opts...); err != nil {
			t.Fatal(err)
		}
		want[k] = v
	}
	// A deleted key and an expired one are not in the backup.
	if _, err := c.Put(ctx, []byte("gone"), []byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Delete(ctx, []byte("gone")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Put(ctx, []byte("short-lived"), []byte("x"), client.WithTTL(time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond)

	file := filepath.Join(t.TempDir(), "cluster.bak")
	j := cliJSON(t, src.Nodes[1].Addr(), 0, "--timeout", "60s", "backup", file)
	if j["entries"] != float64(keys) {
		t.Fatalf("backup: %v, want %d entries", j, keys)
	}

	dst := nodetest.StartCluster(t, 3, func(_ int, c *node.Config) { c.Partitions = 5 })
	addr := dst.Nodes[2].Addr()
	if j := cliJSON(t, addr, 0, "--timeout", "60s", "restore", file); j["restored"] != float64(keys) {
		t.Fatalf("restore: %v, want %d restored", j, keys)
	}
	cfg.Seeds = []string{addr}
	d, err := client.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	got := 0
	for e, err := range d.ScanAll(ctx, client.ScanOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		got++
		k := string(e.Key)
		if want[k] != string(e.Value) {
			t.Errorf("restored %s = %q, want %q", k, e.Value, want[k])
		}
		var n int
		fmt.Sscanf(k, "key-%d", &n)
		if hasTTL := !e.ExpiresAt.IsZero(); hasTTL != (n%10 == 0) {
			t.Errorf("restored %s: expires %v", k, e.ExpiresAt)
		} else if hasTTL && (time.Until(e.ExpiresAt) < 59*time.Minute || time.Until(e.ExpiresAt) > time.Hour) {
			t.Errorf("restored %s expires in %v, want about an hour", k, time.Until(e.ExpiresAt))
		}
	}
	if got != keys {
		t.Errorf("the restored cluster holds %d keys, want %d", got, keys)
	}

	// Into a non-empty cluster: refused.
	_, stderr := cli(t, addr, 2, "restore", file)
	if !strings.Contains(stderr, "not empty") {
		t.Errorf("restore into a non-empty cluster: %q", stderr)
	}
	// A damaged file: refused before anything is written.
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	raw[len(raw)/2] ^= 0xff
	bad := filepath.Join(t.TempDir(), "bad.bak")
	if err := os.WriteFile(bad, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	_, stderr = cli(t, addr, 2, "restore", "--force", bad)
	if !strings.Contains(stderr, "checksum") && !strings.Contains(stderr, "corrupt") {
		t.Errorf("restore of a damaged file: %q", stderr)
	}
}

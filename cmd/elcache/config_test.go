package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cachev1 "github.com/elcache/elcache/proto/cache/v1"
)

func TestLoadConfigPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "elcache.yaml")
	yaml := "node-name: from-file\ndata-dir: /file\ncapacity: 2GiB\npartitions: 32\njoin: []\nraft-commit-timeout: 100ms\n"
	if err := os.WriteFile(file, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"ELCACHE_CONFIG": file, "ELCACHE_DATA_DIR": "/env", "ELCACHE_DEFAULT_CONSISTENCY": "eventual"}
	cfg, _, err := loadConfig([]string{"--data-dir", "/flag"}, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.NodeName != "from-file" || cfg.DataDir != "/flag" || cfg.CapacityBytes != 2<<30 || cfg.Partitions != 32 ||
		cfg.DefaultConsistency != cachev1.Consistency_CONSISTENCY_EVENTUAL || cfg.Raft.CommitTimeout != 100*time.Millisecond {
		t.Fatalf("config = %+v", cfg)
	}
	// Without the flag the environment wins over the file.
	cfg, _, err = loadConfig(nil, func(k string) string { return env[k] }, io.Discard)
	if err != nil || cfg.DataDir != "/env" {
		t.Fatalf("data dir = %q, %v", cfg.DataDir, err)
	}
}

func TestLoadConfigErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("no-such-setting: 1\n"), 0o644)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown flag", []string{"--nope"}, "flag provided but not defined"},
		{"bad capacity", []string{"--capacity", "lots"}, "not a byte size"},
		{"bad duration", []string{"--raft-commit-timeout", "soon"}, "raft-commit-timeout"},
		{"bad join", []string{"--join", "10.0.0.1"}, `Join address "10.0.0.1"`},
		{"all interfaces without advertise", []string{"--grpc-addr", "0.0.0.0:7400", "--join", "10.0.0.1:7946"}, "set AdvertiseAddr"},
		{"bad replication factor", []string{"--replication-factor", "0"}, "ReplicationFactor"},
		{"missing gossip key", []string{"--gossip-key-file", filepath.Join(dir, "nokey")}, "no such file"},
		{"write mode without backend", []string{"--default-write-mode", "write_back"}, "needs a Backend"},
		{"unknown write mode", []string{"--default-write-mode", "sometimes"}, "unknown write mode"},
		{"unknown yaml key", []string{"--config", bad}, `unknown key "no-such-setting"`},
		{"missing config", []string{"--config", filepath.Join(dir, "missing.yaml")}, "no such file"},
		{"positional", []string{"serve"}, `unexpected argument "serve"`},
		{"bad level", []string{"--default-consistency", "strong"}, `unknown level "strong"`},
		{"bad log level", []string{"--log-level", "loud"}, "log-level"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := loadConfig(tt.args, func(string) string { return "" }, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("loadConfig(%q) = %v, want error containing %q", tt.args, err, tt.want)
			}
		})
	}
}

func TestParseBytes(t *testing.T) {
	for in, want := range map[string]uint64{"1024": 1024, "1KiB": 1024, "512MiB": 512 << 20, "2GiB": 2 << 30, "1 TiB": 1 << 40, "3GB": 3e9} {
		got, err := parseBytes(in)
		if err != nil || got != want {
			t.Errorf("parseBytes(%q) = %d, %v, want %d", in, got, err, want)
		}
		if back, _ := parseBytes(formatBytes(got)); back != got {
			t.Errorf("formatBytes(%d) = %q does not parse back", got, formatBytes(got))
		}
	}
	for _, in := range []string{"", "-1", "1.5GiB", "99999999999TiB"} {
		if _, err := parseBytes(in); err == nil {
			t.Errorf("parseBytes(%q) accepted", in)
		}
	}
}

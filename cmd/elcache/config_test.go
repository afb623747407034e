package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/elcache/elcache/node"
	cachev1 "github.com/elcache/elcache/proto/cache/v1"
	"github.com/elcache/elcache/storage/sqlstore"
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
		{"unknown durability", []string{"--durability", "fsync"}, `unknown durability "fsync" (want sync or replicated)`},
		{"unspecified durability", []string{"--durability", "unspecified"}, `unknown durability "unspecified"`},
		{"unknown yaml key", []string{"--config", bad}, `unknown key "no-such-setting"`},
		{"missing config", []string{"--config", filepath.Join(dir, "missing.yaml")}, "no such file"},
		{"positional", []string{"serve"}, `unexpected argument "serve"`},
		{"bad level", []string{"--default-consistency", "strong"}, `unknown level "strong"`},
		{"bad log level", []string{"--log-level", "loud"}, "log-level"},
		{"unknown column role", []string{"--backend-columns", "primary=id"}, `flag backend-columns="primary=id": unknown column role "primary"`},
		{"bad column name", []string{"--backend-columns", "value=pay-load"}, `flag backend-columns="value=pay-load": sqlstore: Columns.Value: name "pay-load"`},
		{"bad table name", []string{"--backend-table", "my table"}, `node: Backing: sqlstore: Table: name "my table"`},
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

// TestDurabilitySetting: --durability (or ELCACHE_DURABILITY, or the YAML
// key) sets the node's default durability, SYNC when absent.
func TestDurabilitySetting(t *testing.T) {
	file := filepath.Join(t.TempDir(), "elcache.yaml")
	if err := os.WriteFile(file, []byte("durability: replicated\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		args []string
		env  map[string]string
		want cachev1.Durability
	}{
		{"default", nil, nil, cachev1.Durability_DURABILITY_SYNC},
		{"flag sync", []string{"--durability", "sync"}, nil, cachev1.Durability_DURABILITY_SYNC},
		{"flag replicated", []string{"--durability", "replicated"}, nil, cachev1.Durability_DURABILITY_REPLICATED},
		{"upper case", []string{"--durability=REPLICATED"}, nil, cachev1.Durability_DURABILITY_REPLICATED},
		{"env", nil, map[string]string{"ELCACHE_DURABILITY": "replicated"}, cachev1.Durability_DURABILITY_REPLICATED},
		{"yaml", []string{"--config", file}, nil, cachev1.Durability_DURABILITY_REPLICATED},
		{"flag over env", []string{"--durability", "sync"}, map[string]string{"ELCACHE_DURABILITY": "replicated"}, cachev1.Durability_DURABILITY_SYNC},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg, _, err := loadConfig(tt.args, func(k string) string { return tt.env[k] }, io.Discard)
			if err != nil || cfg.DefaultDurability != tt.want {
				t.Fatalf("DefaultDurability = %v, %v, want %v", cfg.DefaultDurability, err, tt.want)
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

func TestParseColumns(t *testing.T) {
	good := []struct {
		in   string
		want sqlstore.Columns
	}{
		{"", sqlstore.Columns{}},
		{"key=cache_key", sqlstore.Columns{Key: "cache_key"}},
		{"key=cache_key,value=payload", sqlstore.Columns{Key: "cache_key", Value: "payload"}},
		{" value = payload , key=cache_key,", sqlstore.Columns{Key: "cache_key", Value: "payload"}},
		{"key=k,value=v,version=rev,deleted=gone,idempotency_key=request_id,updated_at=touched_at",
			sqlstore.Columns{Key: "k", Value: "v", Version: "rev", Deleted: "gone", IdempotencyKey: "request_id", UpdatedAt: "touched_at"}},
		// A default name may be given explicitly.
		{"version=version", sqlstore.Columns{Version: "version"}},
	}
	for _, tt := range good {
		got, err := parseColumns(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("parseColumns(%q) = %+v, %v, want %+v", tt.in, got, err, tt.want)
			continue
		}
		// What the usage text prints parses back to the same names.
		if back, err := parseColumns(formatColumns(got)); err != nil || back != got {
			t.Errorf("formatColumns(%+v) = %q parses back to %+v, %v", got, formatColumns(got), back, err)
		}
	}
	bad := []struct {
		in   string
		want []string
	}{
		{"cache_key", []string{`"cache_key" is not role=name`}},
		{"primary=id", []string{`unknown column role "primary" (want one of key, value, version, deleted, idempotency_key, updated_at)`}},
		{"Key=k", []string{`unknown column role "Key"`}},
		{"key=a,key=b", []string{`column role "key" is given more than once`}},
		{"key=", []string{`column role "key" has an empty name`}},
		{"value=pay-load", []string{`Columns.Value: name "pay-load" may hold only letters, digits and underscores`}},
		{"value=1st", []string{`Columns.Value: name "1st" starts with a digit`}},
		{"value=" + strings.Repeat("v", 64), []string{"over the limit of 63"}},
		// SQLite compares names without regard to case.
		{"key=id,value=ID", []string{`Columns.Key and Columns.Value are both "ID"`}},
		{"key=version", []string{`Columns.Key and Columns.Version are both "version"`}},
		// Every malformed pair is reported.
		{"nope,primary=id,key=", []string{`"nope" is not role=name`, `unknown column role "primary"`, `column role "key" has an empty name`}},
	}
	for _, tt := range bad {
		got, err := parseColumns(tt.in)
		if err == nil {
			t.Errorf("parseColumns(%q) = %+v, want an error", tt.in, got)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("parseColumns(%q) = %v, want error containing %q", tt.in, err, w)
			}
		}
	}
}

// --backend-columns comes from flags, the environment and the YAML file
// like every setting, and what it prints parses back.
func TestLoadConfigColumns(t *testing.T) {
	file := filepath.Join(t.TempDir(), "elcache.yaml")
	if err := os.WriteFile(file, []byte("backend-columns: [key=file_key, value=file_value]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		args []string
		env  map[string]string
		want sqlstore.Columns
	}{
		{"default", nil, nil, sqlstore.Columns{}},
		{"flag", []string{"--backend-columns", "key=cache_key,value=payload"}, nil, sqlstore.Columns{Key: "cache_key", Value: "payload"}},
		{"env", nil, map[string]string{"ELCACHE_BACKEND_COLUMNS": "updated_at=touched_at"}, sqlstore.Columns{UpdatedAt: "touched_at"}},
		{"yaml list", []string{"--config", file}, nil, sqlstore.Columns{Key: "file_key", Value: "file_value"}},
		{"flag over env", []string{"--backend-columns", "deleted=gone"}, map[string]string{"ELCACHE_BACKEND_COLUMNS": "key=k"}, sqlstore.Columns{Deleted: "gone"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg, _, err := loadConfig(tt.args, func(k string) string { return tt.env[k] }, io.Discard)
			if err != nil || cfg.Backing.Columns != tt.want {
				t.Fatalf("Backing.Columns = %+v, %v, want %+v", cfg.Backing.Columns, err, tt.want)
			}
		})
	}
	// The setting's getter, which renders the flag's default in --help,
	// gives back what its setter reads.
	for _, st := range settings() {
		if st.name != "backend-columns" {
			continue
		}
		var cfg, again node.Config
		if err := st.set(&cfg, "value=payload, key=cache_key"); err != nil {
			t.Fatal(err)
		}
		if got := st.get(&cfg); got != "key=cache_key,value=payload" {
			t.Fatalf("get = %q, want key=cache_key,value=payload", got)
		}
		if err := st.set(&again, st.get(&cfg)); err != nil || again.Backing.Columns != cfg.Backing.Columns {
			t.Fatalf("set(get()) = %+v, %v, want %+v", again.Backing.Columns, err, cfg.Backing.Columns)
		}
		if got := st.get(&node.Config{}); got != "" {
			t.Fatalf("default prints as %q, want empty", got)
		}
		return
	}
	t.Fatal("no backend-columns setting")
}

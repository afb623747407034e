package backend

import (
	"strings"
	"testing"
	"time"
)

// TestConfigDefaults: every zero field takes its default, a set one stays,
// and NegativeTTL, Table and Columns are not defaulted here.
func TestConfigDefaults(t *testing.T) {
	if got := (Config{}).WithDefaults(); got != DefaultConfig() {
		t.Fatalf("Config{}.WithDefaults() = %+v, want DefaultConfig() %+v", got, DefaultConfig())
	}
	set := Config{Table: "t", Attempts: 1, RetryBase: time.Second, RetryMax: 2 * time.Second, BreakerFailures: 9,
		BreakerCooldown: time.Minute, NegativeTTL: time.Second, FlushInterval: time.Second, FlushBatch: 3, MaxDirty: 7,
		LoadTimeout: time.Minute}
	if got := set.WithDefaults(); got != set {
		t.Fatalf("WithDefaults changed set fields: %+v, want %+v", got, set)
	}
	d := DefaultConfig()
	if d.NegativeTTL != 0 || d.Table != "" || d.Columns.Key != "" || d.CreateTable {
		t.Fatalf("DefaultConfig() = %+v: negative caching, the table's names and CreateTable stay off", d)
	}
}

// TestConfigValidate: the zero and default configs are valid; every
// problem is reported at once; New refuses an invalid config.
func TestConfigValidate(t *testing.T) {
	for _, c := range []Config{{}, DefaultConfig()} {
		if err := c.Validate(); err != nil {
			t.Fatalf("Validate(%+v): %v", c, err)
		}
	}
	bad := Config{Table: "my table", Attempts: -1, RetryBase: -1, RetryMax: -1, BreakerCooldown: -1, NegativeTTL: -1,
		FlushInterval: -1, FlushBatch: -1, LoadTimeout: -1}
	err := bad.Validate()
	if err == nil {
		t.Fatal("Validate accepted negative fields and a bad table name")
	}
	for _, want := range []string{`backend: sqlstore: Table: name "my table"`, "Attempts", "RetryBase", "RetryMax", "BreakerCooldown",
		"NegativeTTL", "FlushInterval", "FlushBatch", "LoadTimeout"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Validate: %v\ndoes not report %s", err, want)
		}
	}
	if cl, err := New(newMemDB(), Config{Attempts: -1}, transient); err == nil || cl != nil {
		t.Fatalf("New with Attempts -1 = %v, %v; want an error", cl, err)
	}
}

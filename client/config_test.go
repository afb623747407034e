package client

import (
	"context"
	"crypto/tls"
	"strings"
	"testing"
	"time"

	cachev1 "github.com/elcache/elcache/proto/cache/v1"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Config)
		want []string // substrings, one per expected problem
	}{
		{"default", func(*Config) {}, nil},
		{"hostname", func(c *Config) { c.Seeds = []string{"cache.internal:7400"} }, nil},
		{"ipv6", func(c *Config) { c.Seeds = []string{"[::1]:7400", "10.0.0.2:7400"} }, nil},
		{"lazy dial", func(c *Config) { c.DialTimeout = 0 }, nil},
		{"tls", func(c *Config) { c.TLS = &tls.Config{} }, nil},
		{"no keepalive", func(c *Config) { c.KeepaliveTime = 0 }, nil},
		{"bounded default", func(c *Config) {
			c.DefaultConsistency = cachev1.Consistency_CONSISTENCY_BOUNDED
			c.DefaultMaxStaleness = time.Second
		}, nil},
		{"no seeds", func(c *Config) { c.Seeds = nil }, []string{"Seeds is empty"}},
		{"seed without port", func(c *Config) { c.Seeds = []string{"a:1", "localhost"} }, []string{`seed "localhost" is not HOST:PORT`}},
		{"negative dial timeout", func(c *Config) { c.DialTimeout = -time.Second }, []string{"DialTimeout"}},
		{"unknown consistency", func(c *Config) { c.DefaultConsistency = 99 }, []string{"unknown DefaultConsistency"}},
		{"bounded without staleness", func(c *Config) {
			c.DefaultConsistency = cachev1.Consistency_CONSISTENCY_BOUNDED
		}, []string{"positive DefaultMaxStaleness"}},
		{"negative staleness", func(c *Config) { c.DefaultMaxStaleness = -1 }, []string{"DefaultMaxStaleness -1ns"}},
		{"unknown write mode", func(c *Config) { c.DefaultWriteMode = 99 }, []string{"unknown DefaultWriteMode"}},
		{"replicated durability", func(c *Config) { c.DefaultDurability = DurabilityReplicated }, nil},
		{"unknown durability", func(c *Config) { c.DefaultDurability = 9 }, []string{"unknown DefaultDurability 9"}},
		{"negative keepalive", func(c *Config) { c.KeepaliveTime = -1 }, []string{"KeepaliveTime"}},
		{"keepalive below minimum", func(c *Config) { c.KeepaliveTime = time.Second }, []string{"KeepaliveTime 1s"}},
		{"keepalive at minimum", func(c *Config) { c.KeepaliveTime = 10 * time.Second }, nil},
		{"zero values take defaults", func(c *Config) { *c = Config{Seeds: []string{"a:1"}} }, nil},
		{"negative recv size", func(c *Config) { c.MaxRecvMsgSize = -1 }, []string{"MaxRecvMsgSize"}},
		{"credentials without TLS", func(c *Config) { c.Credentials = fakeCreds{} }, []string{"Credentials need TLS"}},
		{"negative attempts", func(c *Config) { c.MaxAttempts = -1 }, []string{"MaxAttempts"}},
		{"retry base over max", func(c *Config) { c.RetryBase, c.RetryMax = time.Second, time.Millisecond }, []string{"RetryBase"}},
		{"negative breaker", func(c *Config) { c.BreakerCooldown = -1 }, []string{"BreakerCooldown"}},
		{"near cache defaults", func(c *Config) { c.NearCache = &NearCacheConfig{} }, nil},
		{"near cache bounds", func(c *Config) { c.NearCache = &NearCacheConfig{MaxBytes: 1 << 20, MaxEntries: 1000} }, nil},
		{"near cache negatives", func(c *Config) {
			c.NearCache = &NearCacheConfig{MaxBytes: -1, MaxEntries: -1, ProgressInterval: -1, History: -1}
		}, []string{"MaxBytes -1", "MaxEntries -1", "ProgressInterval -1ns", "History -1"}},
		{"near cache timeout below two pings", func(c *Config) {
			c.NearCache = &NearCacheConfig{ProgressInterval: 100 * time.Millisecond, StreamTimeout: 150 * time.Millisecond}
		}, []string{"StreamTimeout 150ms is shorter than two ProgressIntervals (100ms)"}},
		{"every problem", func(c *Config) {
			*c = Config{Seeds: []string{"x"}, DialTimeout: -1, DefaultWriteMode: -1, MaxRecvMsgSize: -1}
		}, []string{"HOST:PORT", "DialTimeout", "DefaultWriteMode", "MaxRecvMsgSize"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tt.edit(&cfg)
			err := cfg.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want %d problems", len(tt.want))
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tt.want) {
				t.Errorf("Validate() reported %d problems, want %d:\n%v", len(lines), len(tt.want), err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %q, want it to mention %q", err, w)
				}
			}
			for _, l := range lines {
				if !strings.HasPrefix(l, "client: ") {
					t.Errorf("problem %q does not start with %q", l, "client: ")
				}
			}
		})
	}
}

func TestNewRejectsInvalidConfig(t *testing.T) {
	c, err := New(t.Context(), Config{})
	if err == nil {
		c.Close()
		t.Fatal("New(Config{}) succeeded")
	}
	if !strings.Contains(err.Error(), "Seeds is empty") {
		t.Errorf("New(Config{}) = %v", err)
	}
}

// fakeCreds is a PerRPCCredentials for validation tests.
type fakeCreds struct{}

func (fakeCreds) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return nil, nil
}
func (fakeCreds) RequireTransportSecurity() bool { return true }

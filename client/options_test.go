package client

import (
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	cachev1 "github.com/elcache/elcache/proto/cache/v1"
)

func TestBuildReadOptions(t *testing.T) {
	const (
		unspecified  = cachev1.Consistency_CONSISTENCY_UNSPECIFIED
		linearizable = cachev1.Consistency_CONSISTENCY_LINEARIZABLE
		bounded      = cachev1.Consistency_CONSISTENCY_BOUNDED
		session      = cachev1.Consistency_CONSISTENCY_SESSION
		eventual     = cachev1.Consistency_CONSISTENCY_EVENTUAL
	)
	tok := SessionToken{Partition: 3, Epoch: 1, Index: 42}
	tests := []struct {
		name    string
		cfg     func(*Config)
		opts    []ReadOption
		want    *cachev1.ReadOptions
		wantErr bool
	}{
		{name: "cluster default", want: &cachev1.ReadOptions{}},
		{name: "config default", cfg: func(c *Config) { c.DefaultConsistency = eventual },
			want: &cachev1.ReadOptions{Consistency: eventual}},
		{name: "option overrides config", cfg: func(c *Config) { c.DefaultConsistency = eventual },
			opts: []ReadOption{WithConsistency(linearizable)},
			want: &cachev1.ReadOptions{Consistency: linearizable}},
		{name: "last option wins",
			opts: []ReadOption{Bounded(time.Second), WithConsistency(unspecified)},
			want: &cachev1.ReadOptions{}},
		{name: "bounded", opts: []ReadOption{Bounded(100 * time.Millisecond)},
			want: &cachev1.ReadOptions{Consistency: bounded, MaxStaleness: durationpb.New(100 * time.Millisecond)}},
		{name: "bounded from config", cfg: func(c *Config) {
			c.DefaultConsistency, c.DefaultMaxStaleness = bounded, time.Second
		}, want: &cachev1.ReadOptions{Consistency: bounded, MaxStaleness: durationpb.New(time.Second)}},
		{name: "bounded level with config staleness", cfg: func(c *Config) { c.DefaultMaxStaleness = time.Second },
			opts: []ReadOption{WithConsistency(bounded)},
			want: &cachev1.ReadOptions{Consistency: bounded, MaxStaleness: durationpb.New(time.Second)}},
		{name: "staleness only sent for bounded", cfg: func(c *Config) { c.DefaultMaxStaleness = time.Second },
			want: &cachev1.ReadOptions{}},
		{name: "bounded without staleness", opts: []ReadOption{WithConsistency(bounded)}, wantErr: true},
		{name: "bounded zero", opts: []ReadOption{Bounded(0)}, wantErr: true},
		{name: "bounded negative", opts: []ReadOption{Bounded(-time.Second)}, wantErr: true},
		{name: "unknown level", opts: []ReadOption{WithConsistency(42)}, wantErr: true},
		{name: "session", opts: []ReadOption{WithSession(tok)},
			want: &cachev1.ReadOptions{Consistency: session, SessionTokens: []*cachev1.SessionToken{{Partition: 3, Epoch: 1, Index: 42}}}},
		{name: "session without tokens", opts: []ReadOption{WithSession()},
			want: &cachev1.ReadOptions{Consistency: session}},
		{name: "tokens only sent for session", opts: []ReadOption{WithSession(tok), WithConsistency(linearizable)},
			want: &cachev1.ReadOptions{Consistency: linearizable}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			if tt.cfg != nil {
				tt.cfg(&cfg)
			}
			got, err := buildReadOptions(&cfg, tt.opts)
			if tt.wantErr {
				if !errors.Is(err, ErrInvalidArgument) {
					t.Fatalf("buildReadOptions() = %v, %v; want ErrInvalidArgument", got, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(got, tt.want) {
				t.Errorf("buildReadOptions() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestBuildWriteOptions(t *testing.T) {
	const (
		through = cachev1.WriteMode_WRITE_MODE_WRITE_THROUGH
		back    = cachev1.WriteMode_WRITE_MODE_WRITE_BACK
	)
	const key = "0190a6a4-5b2e-7c3d-8e4f-123456789abc"
	tests := []struct {
		name    string
		cfg     func(*Config)
		opts    []WriteOption
		want    *cachev1.WriteOptions // IdempotencyKey "" means a fresh UUIDv7
		wantErr bool
	}{
		{name: "defaults", want: &cachev1.WriteOptions{}},
		{name: "config mode", cfg: func(c *Config) { c.DefaultWriteMode = back },
			want: &cachev1.WriteOptions{Mode: back}},
		{name: "option overrides config", cfg: func(c *Config) { c.DefaultWriteMode = back },
			opts: []WriteOption{WithWriteMode(through)},
			want: &cachev1.WriteOptions{Mode: through}},
		{name: "ttl", opts: []WriteOption{WithTTL(time.Minute)},
			want: &cachev1.WriteOptions{Ttl: durationpb.New(time.Minute)}},
		{name: "zero ttl is absent", opts: []WriteOption{WithTTL(time.Minute), WithTTL(0)},
			want: &cachev1.WriteOptions{}},
		{name: "negative ttl", opts: []WriteOption{WithTTL(-time.Second)}, wantErr: true},
		{name: "unknown mode", opts: []WriteOption{WithWriteMode(7)}, wantErr: true},
		{name: "config durability", cfg: func(c *Config) { c.DefaultDurability = DurabilityReplicated },
			want: &cachev1.WriteOptions{Durability: cachev1.Durability_DURABILITY_REPLICATED}},
		{name: "durability overrides config", cfg: func(c *Config) { c.DefaultDurability = DurabilityReplicated },
			opts: []WriteOption{WithDurability(DurabilitySync)},
			want: &cachev1.WriteOptions{Durability: cachev1.Durability_DURABILITY_SYNC}},
		{name: "durability back to the cluster's", cfg: func(c *Config) { c.DefaultDurability = DurabilitySync },
			opts: []WriteOption{WithDurability(DurabilityDefault)}, want: &cachev1.WriteOptions{}},
		{name: "unknown durability", opts: []WriteOption{WithDurability(3)}, wantErr: true},
		{name: "negative durability", opts: []WriteOption{WithDurability(-1)}, wantErr: true},
		{name: "caller key", opts: []WriteOption{WithIdempotencyKey(key)},
			want: &cachev1.WriteOptions{IdempotencyKey: key}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			if tt.cfg != nil {
				tt.cfg(&cfg)
			}
			got, err := buildWriteOptions(&cfg, tt.opts)
			if tt.wantErr {
				if !errors.Is(err, ErrInvalidArgument) {
					t.Fatalf("buildWriteOptions() = %v, %v; want ErrInvalidArgument", got, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.want.IdempotencyKey == "" {
				u, err := uuid.Parse(got.GetIdempotencyKey())
				if err != nil || u.Version() != 7 || u.String() != got.GetIdempotencyKey() {
					t.Errorf("idempotency key %q is not a canonical UUIDv7", got.GetIdempotencyKey())
				}
				got.IdempotencyKey = ""
			}
			if !proto.Equal(got, tt.want) {
				t.Errorf("buildWriteOptions() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestIdempotencyKeys(t *testing.T) {
	cfg := DefaultConfig()
	seen := map[string]bool{}
	for range 100 {
		wo, err := buildWriteOptions(&cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		if seen[wo.IdempotencyKey] {
			t.Fatalf("idempotency key %s reused", wo.IdempotencyKey)
		}
		seen[wo.IdempotencyKey] = true
	}
	wo, err := buildWriteOptions(&cfg, []WriteOption{WithIdempotencyKey("")})
	if err != nil {
		t.Fatal(err)
	}
	if wo.IdempotencyKey != "" {
		t.Errorf("WithIdempotencyKey(\"\") sent key %q, want none", wo.IdempotencyKey)
	}
}

func TestExpectation(t *testing.T) {
	tests := []struct {
		name    string
		e       Expectation
		want    *cachev1.CompareAndSetRequest
		wantErr bool
	}{
		{"version", ExpectVersion(7), &cachev1.CompareAndSetRequest{Expect: &cachev1.CompareAndSetRequest_ExpectedVersion{ExpectedVersion: 7}}, false},
		{"value", ExpectValue([]byte("v")), &cachev1.CompareAndSetRequest{Expect: &cachev1.CompareAndSetRequest_ExpectedValue{ExpectedValue: []byte("v")}}, false},
		{"absent", ExpectAbsent(), &cachev1.CompareAndSetRequest{Expect: &cachev1.CompareAndSetRequest_ExpectAbsent{ExpectAbsent: true}}, false},
		{"zero", Expectation{}, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := &cachev1.CompareAndSetRequest{}
			err := tt.e.apply(req)
			if tt.wantErr {
				if !errors.Is(err, ErrInvalidArgument) {
					t.Fatalf("apply() = %v, want ErrInvalidArgument", err)
				}
				return
			}
			if err != nil || !proto.Equal(req, tt.want) {
				t.Errorf("apply() = %v, %v; want %v", req, err, tt.want)
			}
		})
	}
}

func TestDurability(t *testing.T) {
	for _, tt := range []struct {
		d    Durability
		pb   cachev1.Durability
		name string
	}{
		{DurabilityDefault, cachev1.Durability_DURABILITY_UNSPECIFIED, "default"},
		{DurabilitySync, cachev1.Durability_DURABILITY_SYNC, "sync"},
		{DurabilityReplicated, cachev1.Durability_DURABILITY_REPLICATED, "replicated"},
	} {
		if pb, ok := tt.d.proto(); !ok || pb != tt.pb {
			t.Errorf("%v.proto() = %v, %v; want %v", tt.d, pb, ok, tt.pb)
		}
		if got := durabilityFromProto(tt.pb); got != tt.d {
			t.Errorf("durabilityFromProto(%v) = %v, want %v", tt.pb, got, tt.d)
		}
		if tt.d.String() != tt.name {
			t.Errorf("String() = %q, want %q", tt.d.String(), tt.name)
		}
	}
	// Every value of the API's enum maps to a Durability of its own.
	seen := map[Durability]bool{}
	for n := range cachev1.Durability_name {
		d := durabilityFromProto(cachev1.Durability(n))
		if pb, _ := d.proto(); pb != cachev1.Durability(n) || seen[d] {
			t.Errorf("enum value %d maps to %v, which maps back to %v", n, d, pb)
		}
		seen[d] = true
	}
	if _, ok := Durability(3).proto(); ok {
		t.Error("Durability(3).proto() is ok")
	}
}

package main

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/elcache/elcache/client"
	cachev1 "github.com/elcache/elcache/proto/cache/v1"
)

func TestParseConsistency(t *testing.T) {
	tests := []struct {
		in        string
		level     cachev1.Consistency
		staleness time.Duration
		wantErr   bool
	}{
		{in: "linearizable", level: cachev1.Consistency_CONSISTENCY_LINEARIZABLE},
		{in: "lease", level: cachev1.Consistency_CONSISTENCY_LEASE},
		{in: "bounded=100ms", level: cachev1.Consistency_CONSISTENCY_BOUNDED, staleness: 100 * time.Millisecond},
		{in: "bounded=2s", level: cachev1.Consistency_CONSISTENCY_BOUNDED, staleness: 2 * time.Second},
		{in: "session", level: cachev1.Consistency_CONSISTENCY_SESSION},
		{in: "eventual", level: cachev1.Consistency_CONSISTENCY_EVENTUAL},
		{in: "bounded", wantErr: true},
		{in: "bounded=", wantErr: true},
		{in: "bounded=0s", wantErr: true},
		{in: "bounded=-1s", wantErr: true},
		{in: "bounded=soon", wantErr: true},
		{in: "lease=1s", wantErr: true},
		{in: "strong", wantErr: true},
		{in: "LINEARIZABLE", wantErr: true},
		{in: "", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			level, staleness, err := parseConsistency(tt.in)
			if tt.wantErr {
				var ue *usageError
				if !errors.As(err, &ue) {
					t.Fatalf("parseConsistency(%q) = %v, %v, %v; want a usage error", tt.in, level, staleness, err)
				}
				return
			}
			if err != nil || level != tt.level || staleness != tt.staleness {
				t.Errorf("parseConsistency(%q) = %v, %v, %v; want %v, %v", tt.in, level, staleness, err, tt.level, tt.staleness)
			}
		})
	}
}

func TestParseMode(t *testing.T) {
	tests := []struct {
		in      string
		want    cachev1.WriteMode
		wantErr bool
	}{
		{in: "write-through", want: cachev1.WriteMode_WRITE_MODE_WRITE_THROUGH},
		{in: "write-back", want: cachev1.WriteMode_WRITE_MODE_WRITE_BACK},
		{in: "write-around", want: cachev1.WriteMode_WRITE_MODE_WRITE_AROUND},
		{in: "cache-only", want: cachev1.WriteMode_WRITE_MODE_CACHE_ONLY},
		{in: "writeback", wantErr: true},
		{in: "", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseMode(tt.in)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("parseMode(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestParseDurability(t *testing.T) {
	tests := []struct {
		in      string
		want    client.Durability
		wantErr bool
	}{
		{in: "sync", want: client.DurabilitySync},
		{in: "replicated", want: client.DurabilityReplicated},
		{in: "default", wantErr: true},
		{in: "SYNC", wantErr: true},
		{in: "", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseDurability(tt.in)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("parseDurability(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestParseArgs(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		pos     []string
		ttl     time.Duration
		value   string
		absent  bool
		wantErr bool
	}{
		{name: "no flags", args: []string{"k", "v"}, pos: []string{"k", "v"}},
		{name: "flags first", args: []string{"--ttl", "10s", "k", "v"}, pos: []string{"k", "v"}, ttl: 10 * time.Second},
		{name: "flags last", args: []string{"k", "v", "--ttl", "10s"}, pos: []string{"k", "v"}, ttl: 10 * time.Second},
		{name: "flags between", args: []string{"k", "--ttl=10s", "v"}, pos: []string{"k", "v"}, ttl: 10 * time.Second},
		{name: "single dash", args: []string{"k", "-ttl", "1m", "v", "--expect-absent"}, pos: []string{"k", "v"}, ttl: time.Minute, absent: true},
		{name: "bool then arg", args: []string{"--expect-absent", "k", "v"}, pos: []string{"k", "v"}, absent: true},
		{name: "terminator", args: []string{"k", "--", "-v", "--ttl"}, pos: []string{"k", "-v", "--ttl"}},
		{name: "terminator first", args: []string{"--", "--ttl", "v"}, pos: []string{"--ttl", "v"}},
		{name: "terminator after bool", args: []string{"--expect-absent", "--", "-k"}, pos: []string{"-k"}, absent: true},
		{name: "dashes as a value", args: []string{"--expect-value", "--", "k", "v"}, pos: []string{"k", "v"}, value: "--"},
		{name: "dashes as a value then terminator", args: []string{"--expect-value", "--", "--", "-k"}, pos: []string{"-k"}, value: "--"},
		{name: "lone dash is an argument", args: []string{"-", "v"}, pos: []string{"-", "v"}},
		{name: "unknown flag", args: []string{"k", "--bogus"}, wantErr: true},
		{name: "bad value", args: []string{"k", "v", "--ttl", "soon"}, wantErr: true},
		{name: "missing value", args: []string{"k", "v", "--ttl"}, wantErr: true},
		{name: "negative-looking argument", args: []string{"k", "-5"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := newFlagSet("test")
			ttl := fs.Duration("ttl", 0, "")
			value := fs.String("expect-value", "", "")
			absent := fs.Bool("expect-absent", false, "")
			pos, err := parseArgs(fs, tt.args)
			if tt.wantErr {
				var ue *usageError
				if !errors.As(err, &ue) {
					t.Fatalf("parseArgs(%q) = %q, %v; want a usage error", tt.args, pos, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseArgs(%q) = %v", tt.args, err)
			}
			if !slices.Equal(pos, tt.pos) || *ttl != tt.ttl || *value != tt.value || *absent != tt.absent {
				t.Errorf("parseArgs(%q) = %q ttl=%v value=%q absent=%v; want %q ttl=%v value=%q absent=%v",
					tt.args, pos, *ttl, *value, *absent, tt.pos, tt.ttl, tt.value, tt.absent)
			}
		})
	}
}

func TestBytesJSON(t *testing.T) {
	if s, b := bytesJSON([]byte("héllo")); s == nil || *s != "héllo" || b != nil {
		t.Errorf("bytesJSON(UTF-8) = %v, %v", s, b)
	}
	if s, b := bytesJSON([]byte{}); s == nil || *s != "" || b != nil {
		t.Errorf("bytesJSON(empty) = %v, %v; want an empty string", s, b)
	}
	if s, b := bytesJSON([]byte{0xff, 0}); s != nil || string(b) != "\xff\x00" {
		t.Errorf("bytesJSON(binary) = %v, %v; want base64", s, b)
	}
}

func TestEnumName(t *testing.T) {
	tests := []struct{ in, prefix, want string }{
		{cachev1.WriteMode_WRITE_MODE_WRITE_BACK.String(), "WRITE_MODE_", "write-back"},
		{cachev1.Role_ROLE_LEADER.String(), "ROLE_", "leader"},
		{cachev1.Consistency_CONSISTENCY_UNSPECIFIED.String(), "CONSISTENCY_", ""},
	}
	for _, tt := range tests {
		if got := enumName(tt.in, tt.prefix); got != tt.want {
			t.Errorf("enumName(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

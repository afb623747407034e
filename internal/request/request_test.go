package request

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	cachev1 "github.com/elcache/elcache/proto/cache/v1"
	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/durationpb"
)

// testConfig's limits are small so that every boundary is easy to write down.
var testConfig = Config{
	MaxKeyBytes:     8,
	MaxValueBytes:   16,
	MaxTTL:          time.Hour,
	MaxBatch:        3,
	MaxPageSize:     10,
	DefaultPageSize: 4,
	DefaultLevel:    cachev1.Consistency_CONSISTENCY_LINEARIZABLE,
	DefaultMode:     cachev1.WriteMode_WRITE_MODE_CACHE_ONLY,
}

func testValidator() Validator { return New(testConfig) }

// checkInvalid asserts err is an ErrInvalid error mentioning want, whose
// message starts with the package's prefix. (That a node answers any
// ErrInvalid with InvalidArgument and the same message is node's
// TestToStatus.)
func checkInvalid(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want one containing %q", want)
	}
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("error %q does not wrap ErrInvalid", err)
	}
	if !strings.HasPrefix(err.Error(), "request: invalid argument: ") {
		t.Fatalf("error %q does not start with \"request: invalid argument: \"", err)
	}
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q does not contain %q", err, want)
	}
}

// checkResult checks an (error, want) pair from a table: want == "" means
// the call must succeed.
func checkResult(t *testing.T, err error, want string) {
	t.Helper()
	if want == "" {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	checkInvalid(t, err, want)
}

func TestValidateKey(t *testing.T) {
	v := testValidator()
	tests := []struct {
		name string
		key  []byte
		want string
	}{
		{"nil", nil, "key is empty"},
		{"empty", []byte{}, "key is empty"},
		{"one byte", []byte("k"), ""},
		{"at limit", []byte("12345678"), ""},
		{"one over", []byte("123456789"), "key is 9 bytes, over the limit of 8"},
		{"binary", []byte{0, 0xff, 0}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkResult(t, v.Key("key", tt.key), tt.want) })
	}
}

func TestValidateValue(t *testing.T) {
	v := testValidator()
	tests := []struct {
		name  string
		value []byte
		want  string
	}{
		{"nil", nil, ""},
		{"empty", []byte{}, ""},
		{"at limit", make([]byte, 16), ""},
		{"one over", make([]byte, 17), "value is 17 bytes, over the limit of 16"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkResult(t, v.Value("value", tt.value), tt.want) })
	}
}

func TestValidateTTL(t *testing.T) {
	v := testValidator()
	tests := []struct {
		name string
		d    *durationpb.Duration
		ttl  time.Duration
		want string
	}{
		{"nil", nil, 0, ""},
		{"zero", &durationpb.Duration{}, 0, ""},
		{"one nanosecond", &durationpb.Duration{Nanos: 1}, time.Nanosecond, ""},
		{"at limit", durationpb.New(time.Hour), time.Hour, ""},
		{"one nanosecond over", durationpb.New(time.Hour + time.Nanosecond), 0, "ttl 1h0m0.000000001s is over the limit of 1h0m0s"},
		{"one second over", durationpb.New(time.Hour + time.Second), 0, "is over the limit of 1h0m0s"},
		{"negative", durationpb.New(-time.Second), 0, "ttl is negative (-1s)"},
		{"negative nanos", &durationpb.Duration{Nanos: -1}, 0, "ttl is negative"},
		{"nanos out of range", &durationpb.Duration{Seconds: 1, Nanos: 1_000_000_000}, 0, "ttl: "},
		{"nanos below range", &durationpb.Duration{Nanos: -1_000_000_000}, 0, "ttl: "},
		{"mismatched signs", &durationpb.Duration{Seconds: 1, Nanos: -1}, 0, "ttl: "},
		{"seconds out of range", &durationpb.Duration{Seconds: math.MaxInt64}, 0, "ttl: "},
		// Valid for durationpb, but past what time.Duration holds: AsDuration
		// saturates, the seconds check must still reject it.
		{"past time.Duration", &durationpb.Duration{Seconds: 300 * 365 * 24 * 3600}, 0, "is over the limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ttl, err := v.TTL("ttl", tt.d)
			checkResult(t, err, tt.want)
			if err == nil && ttl != tt.ttl {
				t.Fatalf("ttl = %v, want %v", ttl, tt.ttl)
			}
		})
	}
}

func TestValidateReadOptions(t *testing.T) {
	v := testValidator()
	tokens := []*cachev1.SessionToken{{Partition: 1, Epoch: 2, Index: 3}}
	const (
		unspecified  = cachev1.Consistency_CONSISTENCY_UNSPECIFIED
		linearizable = cachev1.Consistency_CONSISTENCY_LINEARIZABLE
		lease        = cachev1.Consistency_CONSISTENCY_LEASE
		bounded      = cachev1.Consistency_CONSISTENCY_BOUNDED
		session      = cachev1.Consistency_CONSISTENCY_SESSION
		eventual     = cachev1.Consistency_CONSISTENCY_EVENTUAL
	)
	tests := []struct {
		name      string
		o         *cachev1.ReadOptions
		level     cachev1.Consistency
		staleness time.Duration
		tokens    int
		want      string
	}{
		{"nil", nil, linearizable, 0, 0, ""},
		{"unspecified", &cachev1.ReadOptions{}, linearizable, 0, 0, ""},
		{"linearizable", &cachev1.ReadOptions{Consistency: linearizable}, linearizable, 0, 0, ""},
		{"lease", &cachev1.ReadOptions{Consistency: lease}, lease, 0, 0, ""},
		{"session", &cachev1.ReadOptions{Consistency: session}, session, 0, 0, ""},
		{"session with tokens", &cachev1.ReadOptions{Consistency: session, SessionTokens: tokens}, session, 0, 1, ""},
		{"eventual", &cachev1.ReadOptions{Consistency: eventual}, eventual, 0, 0, ""},
		{"bounded", &cachev1.ReadOptions{Consistency: bounded, MaxStaleness: durationpb.New(time.Second)}, bounded, time.Second, 0, ""},
		{"bounded one nanosecond", &cachev1.ReadOptions{Consistency: bounded, MaxStaleness: &durationpb.Duration{Nanos: 1}}, bounded, time.Nanosecond, 0, ""},
		{"bounded without staleness", &cachev1.ReadOptions{Consistency: bounded}, 0, 0, 0, "max_staleness must be positive with CONSISTENCY_BOUNDED"},
		{"bounded zero staleness", &cachev1.ReadOptions{Consistency: bounded, MaxStaleness: &durationpb.Duration{}}, 0, 0, 0, "max_staleness must be positive"},
		{"bounded negative staleness", &cachev1.ReadOptions{Consistency: bounded, MaxStaleness: durationpb.New(-time.Second)}, 0, 0, 0, "max_staleness must be positive"},
		{"bounded invalid staleness", &cachev1.ReadOptions{Consistency: bounded, MaxStaleness: &durationpb.Duration{Nanos: 2_000_000_000}}, 0, 0, 0, "options.max_staleness: "},
		{"bounded with tokens", &cachev1.ReadOptions{Consistency: bounded, MaxStaleness: durationpb.New(time.Second), SessionTokens: tokens}, 0, 0, 0, "session_tokens are only valid with CONSISTENCY_SESSION, not CONSISTENCY_BOUNDED"},
		{"staleness with unspecified", &cachev1.ReadOptions{MaxStaleness: durationpb.New(time.Second)}, 0, 0, 0, "max_staleness is only valid with CONSISTENCY_BOUNDED, not CONSISTENCY_LINEARIZABLE"},
		{"staleness with linearizable", &cachev1.ReadOptions{Consistency: linearizable, MaxStaleness: durationpb.New(time.Second)}, 0, 0, 0, "max_staleness is only valid with CONSISTENCY_BOUNDED"},
		{"staleness with lease", &cachev1.ReadOptions{Consistency: lease, MaxStaleness: durationpb.New(time.Second)}, 0, 0, 0, "max_staleness is only valid with CONSISTENCY_BOUNDED"},
		{"staleness with session", &cachev1.ReadOptions{Consistency: session, MaxStaleness: durationpb.New(time.Second)}, 0, 0, 0, "max_staleness is only valid with CONSISTENCY_BOUNDED"},
		{"staleness with eventual", &cachev1.ReadOptions{Consistency: eventual, MaxStaleness: durationpb.New(time.Second)}, 0, 0, 0, "max_staleness is only valid with CONSISTENCY_BOUNDED"},
		{"tokens with unspecified", &cachev1.ReadOptions{SessionTokens: tokens}, 0, 0, 0, "session_tokens are only valid with CONSISTENCY_SESSION, not CONSISTENCY_LINEARIZABLE"},
		{"tokens with linearizable", &cachev1.ReadOptions{Consistency: linearizable, SessionTokens: tokens}, 0, 0, 0, "session_tokens are only valid with CONSISTENCY_SESSION"},
		{"tokens with lease", &cachev1.ReadOptions{Consistency: lease, SessionTokens: tokens}, 0, 0, 0, "session_tokens are only valid with CONSISTENCY_SESSION"},
		{"tokens with eventual", &cachev1.ReadOptions{Consistency: eventual, SessionTokens: tokens}, 0, 0, 0, "session_tokens are only valid with CONSISTENCY_SESSION"},
		{"unknown 6", &cachev1.ReadOptions{Consistency: 6}, 0, 0, 0, "options.consistency: unknown value 6"},
		{"unknown 42", &cachev1.ReadOptions{Consistency: 42}, 0, 0, 0, "options.consistency: unknown value 42"},
		{"unknown negative", &cachev1.ReadOptions{Consistency: -1}, 0, 0, 0, "options.consistency: unknown value -1"},
		{"unknown max int32", &cachev1.ReadOptions{Consistency: math.MaxInt32}, 0, 0, 0, "unknown value 2147483647"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := v.ReadOptions(tt.o)
			checkResult(t, err, tt.want)
			if err != nil {
				return
			}
			if r.Level != tt.level || r.MaxStaleness != tt.staleness || len(r.Tokens) != tt.tokens {
				t.Fatalf("readOptions = %+v, want level %v staleness %v and %d tokens", r, tt.level, tt.staleness, tt.tokens)
			}
		})
	}
	// Every named level other than BOUNDED is accepted on its own, so a
	// new enum value shows up here if validation forgets it.
	for n, name := range cachev1.Consistency_name {
		c := cachev1.Consistency(n)
		if c == bounded {
			continue
		}
		if _, err := v.ReadOptions(&cachev1.ReadOptions{Consistency: c}); err != nil {
			t.Errorf("%s rejected: %v", name, err)
		}
	}
}

func TestValidateWriteOptions(t *testing.T) {
	v := testValidator()
	withBackend := v
	withBackend.cfg.HasBackend = true
	const (
		unspecified  = cachev1.WriteMode_WRITE_MODE_UNSPECIFIED
		writeThrough = cachev1.WriteMode_WRITE_MODE_WRITE_THROUGH
		writeBack    = cachev1.WriteMode_WRITE_MODE_WRITE_BACK
		writeAround  = cachev1.WriteMode_WRITE_MODE_WRITE_AROUND
		cacheOnly    = cachev1.WriteMode_WRITE_MODE_CACHE_ONLY
	)
	key := "01890a5d-ac96-774b-bcce-b302099a8057"
	tests := []struct {
		name string
		v    Validator
		o    *cachev1.WriteOptions
		mode cachev1.WriteMode
		ttl  time.Duration
		want string
	}{
		{"nil", v, nil, cacheOnly, 0, ""},
		{"unspecified", v, &cachev1.WriteOptions{}, cacheOnly, 0, ""},
		{"cache only", v, &cachev1.WriteOptions{Mode: cacheOnly}, cacheOnly, 0, ""},
		{"write through without backend", v, &cachev1.WriteOptions{Mode: writeThrough}, 0, 0, "options.mode WRITE_MODE_WRITE_THROUGH needs a backing database"},
		{"write back without backend", v, &cachev1.WriteOptions{Mode: writeBack}, 0, 0, "options.mode WRITE_MODE_WRITE_BACK needs a backing database"},
		{"write around without backend", v, &cachev1.WriteOptions{Mode: writeAround}, 0, 0, "options.mode WRITE_MODE_WRITE_AROUND needs a backing database"},
		{"write through with backend", withBackend, &cachev1.WriteOptions{Mode: writeThrough}, writeThrough, 0, ""},
		{"write back with backend", withBackend, &cachev1.WriteOptions{Mode: writeBack}, writeBack, 0, ""},
		{"write around with backend", withBackend, &cachev1.WriteOptions{Mode: writeAround}, writeAround, 0, ""},
		{"cache only with backend", withBackend, &cachev1.WriteOptions{Mode: cacheOnly}, cacheOnly, 0, ""},
		{"unknown 5", v, &cachev1.WriteOptions{Mode: 5}, 0, 0, "options.mode: unknown value 5"},
		{"unknown 99 with backend", withBackend, &cachev1.WriteOptions{Mode: 99}, 0, 0, "options.mode: unknown value 99"},
		{"unknown negative", v, &cachev1.WriteOptions{Mode: -1}, 0, 0, "options.mode: unknown value -1"},
		{"ttl", v, &cachev1.WriteOptions{Ttl: durationpb.New(time.Minute)}, cacheOnly, time.Minute, ""},
		{"zero ttl", v, &cachev1.WriteOptions{Ttl: &durationpb.Duration{}}, cacheOnly, 0, ""},
		{"ttl at limit", v, &cachev1.WriteOptions{Ttl: durationpb.New(time.Hour)}, cacheOnly, time.Hour, ""},
		{"ttl over limit", v, &cachev1.WriteOptions{Ttl: durationpb.New(time.Hour + 1)}, 0, 0, "options.ttl 1h0m0.000000001s is over the limit of 1h0m0s"},
		{"ttl invalid", v, &cachev1.WriteOptions{Ttl: &durationpb.Duration{Nanos: -2_000_000_000}}, 0, 0, "options.ttl: "},
		{"ttl negative", v, &cachev1.WriteOptions{Ttl: durationpb.New(-time.Nanosecond)}, 0, 0, "options.ttl is negative"},
		{"idempotency key", v, &cachev1.WriteOptions{IdempotencyKey: key}, cacheOnly, 0, ""},
		{"bad idempotency key", v, &cachev1.WriteOptions{IdempotencyKey: "nope"}, 0, 0, "options.idempotency_key \"nope\" is not a UUID"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, err := tt.v.WriteOptions(tt.o)
			checkResult(t, err, tt.want)
			if err != nil {
				return
			}
			if w.Mode != tt.mode || w.TTL != tt.ttl || w.IdempotencyKey != tt.o.GetIdempotencyKey() {
				t.Fatalf("writeOptions = %+v, want mode %v ttl %v key %q", w, tt.mode, tt.ttl, tt.o.GetIdempotencyKey())
			}
		})
	}
}

func TestValidateDurability(t *testing.T) {
	const (
		unspecified  = cachev1.Durability_DURABILITY_UNSPECIFIED
		sync         = cachev1.Durability_DURABILITY_SYNC
		replicated   = cachev1.Durability_DURABILITY_REPLICATED
		writeThrough = cachev1.WriteMode_WRITE_MODE_WRITE_THROUGH
		writeBack    = cachev1.WriteMode_WRITE_MODE_WRITE_BACK
		writeAround  = cachev1.WriteMode_WRITE_MODE_WRITE_AROUND
	)
	v := testValidator()
	v.cfg.DefaultDurability = sync
	replicatedNode := v
	replicatedNode.cfg.DefaultDurability = replicated
	withBackend := replicatedNode
	withBackend.cfg.HasBackend = true
	tests := []struct {
		name string
		v    Validator
		o    *cachev1.WriteOptions
		want cachev1.Durability
		err  string
	}{
		{"nil options: node default", v, nil, sync, ""},
		{"nil options: replicated node default", replicatedNode, nil, replicated, ""},
		{"unspecified: node default", v, &cachev1.WriteOptions{}, sync, ""},
		{"unspecified: replicated node default", replicatedNode, &cachev1.WriteOptions{Durability: unspecified}, replicated, ""},
		{"sync", replicatedNode, &cachev1.WriteOptions{Durability: sync}, sync, ""},
		{"replicated", v, &cachev1.WriteOptions{Durability: replicated}, replicated, ""},
		{"zero validator means sync", testValidator(), nil, sync, ""},
		{"write back keeps it", withBackend, &cachev1.WriteOptions{Mode: writeBack, Durability: replicated}, replicated, ""},
		{"write through is sync", withBackend, &cachev1.WriteOptions{Mode: writeThrough, Durability: replicated}, sync, ""},
		{"write around is sync", withBackend, &cachev1.WriteOptions{Mode: writeAround}, sync, ""},
		{"unknown 3", v, &cachev1.WriteOptions{Durability: 3}, 0, "options.durability: unknown value 3 (want DURABILITY_SYNC or DURABILITY_REPLICATED)"},
		{"unknown negative", replicatedNode, &cachev1.WriteOptions{Durability: -1}, 0, "options.durability: unknown value -1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, err := tt.v.WriteOptions(tt.o)
			checkResult(t, err, tt.err)
			if err == nil && w.Durability != tt.want {
				t.Fatalf("durability = %v, want %v", w.Durability, tt.want)
			}
		})
	}
}

func TestCheckUUIDv7(t *testing.T) {
	generated := uuid.Must(uuid.NewV7()).String()
	tests := []struct {
		name string
		s    string
		want string
	}{
		{"lower case", "01890a5d-ac96-774b-bcce-b302099a8057", ""},
		{"upper case", "01890A5D-AC96-774B-BCCE-B302099A8057", ""},
		{"mixed case", "01890a5D-Ac96-774B-bCcE-B302099a8057", ""},
		{"generated", generated, ""},
		{"generated upper", strings.ToUpper(generated), ""},
		{"variant 8", "01890a5d-ac96-774b-8cce-b302099a8057", ""},
		{"variant 9", "01890a5d-ac96-774b-9cce-b302099a8057", ""},
		{"variant a", "01890a5d-ac96-774b-acce-b302099a8057", ""},
		{"variant B", "01890a5d-ac96-774b-Bcce-b302099a8057", ""},
		{"v4", uuid.NewString(), "want version 7"},
		{"v4 literal", "9b2f0c1e-8d4a-4f7b-9c3e-2a1b0c9d8e7f", "is a version 4 UUID, want version 7"},
		{"v1", "01890a5d-ac96-174b-bcce-b302099a8057", "is a version 1 UUID"},
		{"nil uuid", "00000000-0000-0000-0000-000000000000", "is a version 0 UUID"},
		{"variant 0 (NCS)", "01890a5d-ac96-774b-0cce-b302099a8057", "does not have the RFC 9562 variant"},
		{"variant 7 (NCS)", "01890a5d-ac96-774b-7cce-b302099a8057", "does not have the RFC 9562 variant"},
		{"variant c (Microsoft)", "01890a5d-ac96-774b-ccce-b302099a8057", "does not have the RFC 9562 variant"},
		{"variant F (reserved)", "01890a5d-ac96-774b-Fcce-b302099a8057", "does not have the RFC 9562 variant"},
		{"empty", "", "want 36 characters, got 0"},
		{"no hyphens", "01890a5dac96774bbcceb302099a8057", "want 36 characters, got 32"},
		{"braces", "{01890a5d-ac96-774b-bcce-b302099a8057}", "want 36 characters, got 38"},
		{"one short", "01890a5d-ac96-774b-bcce-b302099a805", "want 36 characters, got 35"},
		{"one long", "01890a5d-ac96-774b-bcce-b302099a80570", "want 36 characters, got 37"},
		{"hyphen moved", "01890a5-dac96-774b-bcce-b302099a8057", "bad character at 7"},
		{"hyphen at 13 missing", "01890a5d-ac96f774b-bcce-b302099a8057", "want '-' at 13"},
		{"hyphen at 18 missing", "01890a5d-ac96-774bbbcce-b302099a8057", "want '-' at 18"},
		{"hyphen at 23 missing", "01890a5d-ac96-774b-bcceeb302099a8057", "want '-' at 23"},
		{"underscores", "01890a5d_ac96_774b_bcce_b302099a8057", "want '-' at 8"},
		{"hyphen shifted right", "01890a5dd-ac9-774b-bcce-b302099a8057", "want '-' at 8"},
		{"extra hyphen", "01890a5d-ac96-774b-bcce-b302099a-057", "bad character at 32"},
		{"non hex", "01890a5g-ac96-774b-bcce-b302099a8057", "bad character at 7"},
		{"non ascii", "01890a5d-ac96-774b-bcce-b302099a80é", "bad character at 34"},
		{"urn", "urn:uuid:01890a5d-ac96-774b-bcce-b30", "bad character at 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkResult(t, checkUUIDv7(tt.s), tt.want) })
	}
}

func TestValidatePageSize(t *testing.T) {
	v := testValidator()
	tests := []struct {
		n    uint32
		size int
		want string
	}{
		{0, 4, ""},
		{1, 1, ""},
		{10, 10, ""},
		{11, 0, "page_size 11 is over the limit of 10"},
		{math.MaxUint32, 0, "page_size 4294967295 is over the limit of 10"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.n), func(t *testing.T) {
			size, err := v.PageSize(tt.n)
			checkResult(t, err, tt.want)
			if err == nil && size != tt.size {
				t.Fatalf("pageSize(%d) = %d, want %d", tt.n, size, tt.size)
			}
		})
	}
}

func TestValidateBatchLen(t *testing.T) {
	v := testValidator()
	tests := []struct {
		n    int
		want string
	}{
		{0, "keys is empty"},
		{1, ""},
		{3, ""},
		{4, "keys has 4 items, over the limit of 3"},
		{math.MaxInt, "over the limit of 3"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.n), func(t *testing.T) { checkResult(t, v.BatchLen("keys", tt.n), tt.want) })
	}
}

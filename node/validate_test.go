package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/elcache/elcache/internal/raftnet"
	cachev1 "github.com/elcache/elcache/proto/cache/v1"
	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
)

// testLimits are small so that every boundary is easy to write down.
var testLimits = Limits{
	MaxKeyBytes:     8,
	MaxValueBytes:   16,
	MaxTTL:          time.Hour,
	MaxBatch:        3,
	MaxPageSize:     10,
	DefaultPageSize: 4,
}

func testValidator() validator {
	return validator{limits: testLimits, defaultLevel: cachev1.Consistency_CONSISTENCY_LINEARIZABLE,
		defaultWriter: cachev1.WriteMode_WRITE_MODE_CACHE_ONLY}
}

// checkInvalid asserts err is an InvalidArgument error mentioning want, and
// that toStatus turns it into codes.InvalidArgument with the same message.
func checkInvalid(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want one containing %q", want)
	}
	if !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("error %q does not wrap ErrInvalidArgument", err)
	}
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q does not contain %q", err, want)
	}
	st, ok := status.FromError(toStatus(err))
	if !ok || st.Code() != codes.InvalidArgument || st.Message() != err.Error() {
		t.Fatalf("toStatus(%q) = %v, want InvalidArgument with the same message", err, st)
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
		t.Run(tt.name, func(t *testing.T) { checkResult(t, v.key("key", tt.key), tt.want) })
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
		t.Run(tt.name, func(t *testing.T) { checkResult(t, v.value("value", tt.value), tt.want) })
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
			ttl, err := v.ttl("ttl", tt.d)
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
			r, err := v.readOptions(tt.o)
			checkResult(t, err, tt.want)
			if err != nil {
				return
			}
			if r.level != tt.level || r.maxStaleness != tt.staleness || len(r.tokens) != tt.tokens {
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
		if _, err := v.readOptions(&cachev1.ReadOptions{Consistency: c}); err != nil {
			t.Errorf("%s rejected: %v", name, err)
		}
	}
}

func TestValidateWriteOptions(t *testing.T) {
	v := testValidator()
	withBackend := v
	withBackend.hasBackend = true
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
		v    validator
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
			w, err := tt.v.writeOptions(tt.o)
			checkResult(t, err, tt.want)
			if err != nil {
				return
			}
			if w.mode != tt.mode || w.ttl != tt.ttl || w.idemKey != tt.o.GetIdempotencyKey() {
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
	v.defaultDurability = sync
	replicatedNode := v
	replicatedNode.defaultDurability = replicated
	withBackend := replicatedNode
	withBackend.hasBackend = true
	tests := []struct {
		name string
		v    validator
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
			w, err := tt.v.writeOptions(tt.o)
			checkResult(t, err, tt.err)
			if err == nil && w.durability != tt.want {
				t.Fatalf("durability = %v, want %v", w.durability, tt.want)
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
			size, err := v.pageSize(tt.n)
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
		t.Run(fmt.Sprint(tt.n), func(t *testing.T) { checkResult(t, v.batchLen("keys", tt.n), tt.want) })
	}
}

// testNode starts a node with a configuration like nodetest.Config (which
// this internal test cannot import: nodetest imports node) and returns a
// client to it. The node and the connection close when tb ends.
func testNode(tb testing.TB, opts ...func(*Config)) (*Node, cachev1.CacheClient) {
	tb.Helper()
	cfg := DefaultConfig()
	cfg.NodeName = "test-node"
	cfg.DataDir = tb.TempDir()
	cfg.GRPCAddr = "127.0.0.1:0"
	cfg.Partitions = 8
	cfg.Raft.HeartbeatTimeout = 100 * time.Millisecond
	cfg.Raft.ElectionTimeout = 100 * time.Millisecond
	cfg.Raft.LeaderLeaseTimeout = 50 * time.Millisecond
	cfg.Raft.CommitTimeout = 5 * time.Millisecond
	cfg.ReapInterval = 50 * time.Millisecond
	cfg.EvictInterval = 20 * time.Millisecond
	cfg.ReclaimInterval = 100 * time.Millisecond
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, o := range opts {
		o(&cfg)
	}
	n, err := New(cfg)
	if err != nil {
		tb.Fatalf("start node: %v", err)
	}
	tb.Cleanup(func() { n.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := n.WaitReady(ctx); err != nil {
		tb.Fatalf("node not ready: %v", err)
	}
	conn, err := grpc.NewClient(n.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(raftnet.MaxMsgBytes), grpc.MaxCallSendMsgSize(raftnet.MaxMsgBytes)))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { conn.Close() })
	return n, cachev1.NewCacheClient(conn)
}

// Reusing an idempotency key for a request of another shape is the
// client's error: it must be InvalidArgument, not Internal.
func TestIdempotencyKeyReusedForAnotherRequest(t *testing.T) {
	n, c := testNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Two keys of one partition, so that both requests below become one
	// command on the same partition with the same derived key.
	var keys [][]byte
	for i := 0; len(keys) < 2; i++ {
		k := []byte{'k', byte(i)}
		if n.ring.Partition(k) == 0 {
			keys = append(keys, k)
		}
	}
	opts := &cachev1.WriteOptions{IdempotencyKey: uuid.Must(uuid.NewV7()).String()}
	first, err := c.MultiPut(ctx, &cachev1.MultiPutRequest{Options: opts,
		Entries: []*cachev1.KeyValue{{Key: keys[0], Value: []byte("a")}}})
	if err != nil {
		t.Fatal(err)
	}
	retry, err := c.MultiPut(ctx, &cachev1.MultiPutRequest{Options: opts,
		Entries: []*cachev1.KeyValue{{Key: keys[0], Value: []byte("a")}}})
	if err != nil || !retry.Results[0].Meta.Deduplicated || retry.Results[0].Version != first.Results[0].Version {
		t.Fatalf("retry = %v, %v; first %v", retry, err, first)
	}
	_, err = c.MultiPut(ctx, &cachev1.MultiPutRequest{Options: opts,
		Entries: []*cachev1.KeyValue{{Key: keys[0], Value: []byte("a")}, {Key: keys[1], Value: []byte("b")}}})
	if st, _ := status.FromError(err); st.Code() != codes.InvalidArgument || !strings.Contains(st.Message(), "idempotency_key") {
		t.Fatalf("reused key for a larger request: %v, want InvalidArgument about the idempotency key", err)
	}
	// Same shape, other value: also a different request.
	_, err = c.MultiPut(ctx, &cachev1.MultiPutRequest{Options: opts,
		Entries: []*cachev1.KeyValue{{Key: keys[0], Value: []byte("other")}}})
	if st, _ := status.FromError(err); st.Code() != codes.InvalidArgument || !strings.Contains(st.Message(), "idempotency_key") {
		t.Fatalf("reused key for another value: %v, want InvalidArgument about the idempotency key", err)
	}
	// Nothing was written by the rejected requests.
	get, err := c.Get(ctx, &cachev1.GetRequest{Key: keys[1]})
	if err != nil || get.Found {
		t.Fatalf("get %q = %v, %v", keys[1], get, err)
	}
	get, err = c.Get(ctx, &cachev1.GetRequest{Key: keys[0]})
	if err != nil || string(get.Entry.GetValue()) != "a" {
		t.Fatalf("get %q = %v, %v", keys[0], get, err)
	}
}

// Fuzz kinds: which request the fuzzed bytes are decoded as.
const (
	fuzzPut = iota
	fuzzGet
	fuzzCAS
	fuzzScan
	fuzzMultiPut
	fuzzKinds
)

// FuzzValidate decodes arbitrary bytes as a request and sends it to a real
// node through gRPC. Whatever the bytes, the node must not panic, must keep
// serving, and must answer either success or InvalidArgument, never
// Internal or Unknown. It also checks the answer against the validator: a
// request it accepts must succeed and one it rejects must be refused.
func FuzzValidate(f *testing.F) {
	n, c := testNode(f, func(c *Config) { c.CapacityBytes = 8 << 20 })
	ctx := context.Background()
	sentinel := []byte("fuzz-sentinel")
	if _, err := c.Put(ctx, &cachev1.PutRequest{Key: sentinel, Value: []byte("v")}); err != nil {
		f.Fatal(err)
	}

	add := func(kind int, m proto.Message) {
		raw, err := proto.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(byte(kind), raw)
	}
	idem := &cachev1.WriteOptions{IdempotencyKey: "01890a5d-ac96-774b-bcce-b302099a8057"}
	add(fuzzPut, &cachev1.PutRequest{Key: []byte("k"), Value: []byte("v")})
	add(fuzzPut, &cachev1.PutRequest{Key: []byte("k"), Value: []byte("v"), Options: &cachev1.WriteOptions{Ttl: durationpb.New(time.Minute)}})
	add(fuzzPut, &cachev1.PutRequest{Key: []byte("k"), Value: []byte("v"), Options: idem})
	add(fuzzPut, &cachev1.PutRequest{Value: []byte("v")})
	add(fuzzPut, &cachev1.PutRequest{Key: []byte("k"), Options: &cachev1.WriteOptions{Ttl: &durationpb.Duration{Nanos: -5}}})
	add(fuzzPut, &cachev1.PutRequest{Key: []byte("k"), Options: &cachev1.WriteOptions{Mode: cachev1.WriteMode_WRITE_MODE_WRITE_BACK}})
	add(fuzzGet, &cachev1.GetRequest{Key: []byte("k")})
	add(fuzzGet, &cachev1.GetRequest{Key: []byte("k"), Options: &cachev1.ReadOptions{Consistency: cachev1.Consistency_CONSISTENCY_EVENTUAL}})
	add(fuzzGet, &cachev1.GetRequest{Key: []byte("k"), Options: &cachev1.ReadOptions{Consistency: cachev1.Consistency_CONSISTENCY_BOUNDED, MaxStaleness: durationpb.New(time.Second)}})
	add(fuzzGet, &cachev1.GetRequest{Key: []byte("k"), Options: &cachev1.ReadOptions{Consistency: cachev1.Consistency_CONSISTENCY_SESSION,
		SessionTokens: []*cachev1.SessionToken{{Partition: 3, Epoch: 1, Index: 1 << 40}}}})
	add(fuzzGet, &cachev1.GetRequest{Key: []byte("k"), Options: &cachev1.ReadOptions{Consistency: 17}})
	add(fuzzCAS, &cachev1.CompareAndSetRequest{Key: []byte("k"), Value: []byte("v"), Expect: &cachev1.CompareAndSetRequest_ExpectAbsent{ExpectAbsent: true}})
	add(fuzzCAS, &cachev1.CompareAndSetRequest{Key: []byte("k"), Value: []byte("v"), Expect: &cachev1.CompareAndSetRequest_ExpectedVersion{ExpectedVersion: 3}})
	add(fuzzCAS, &cachev1.CompareAndSetRequest{Key: []byte("k"), Value: []byte("w"), Expect: &cachev1.CompareAndSetRequest_ExpectedValue{ExpectedValue: []byte("v")}, Options: idem})
	add(fuzzCAS, &cachev1.CompareAndSetRequest{Key: []byte("k"), Expect: &cachev1.CompareAndSetRequest_ExpectedVersion{}})
	add(fuzzCAS, &cachev1.CompareAndSetRequest{Key: []byte("k")})
	add(fuzzScan, &cachev1.ScanRequest{})
	add(fuzzScan, &cachev1.ScanRequest{Prefix: []byte("k"), PageSize: 2, KeysOnly: true})
	add(fuzzScan, &cachev1.ScanRequest{Cursor: encodeCursor(3, []byte("k")), PageSize: 1})
	add(fuzzScan, &cachev1.ScanRequest{Cursor: encodeCursor(99, nil)})
	add(fuzzScan, &cachev1.ScanRequest{PageSize: 5000})
	add(fuzzMultiPut, &cachev1.MultiPutRequest{Entries: []*cachev1.KeyValue{{Key: []byte("a")}, {Key: []byte("b"), Value: []byte("v"), Ttl: durationpb.New(time.Second)}}})
	add(fuzzMultiPut, &cachev1.MultiPutRequest{Entries: []*cachev1.KeyValue{{Key: []byte("a")}}, Options: idem})
	add(fuzzMultiPut, &cachev1.MultiPutRequest{Entries: []*cachev1.KeyValue{{Key: []byte("a")}, {}}})
	add(fuzzMultiPut, &cachev1.MultiPutRequest{})

	f.Fuzz(func(t *testing.T, kind byte, data []byte) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		v := n.check
		var (
			err     error
			wantErr error // the validator's verdict on the request
			idemKey bool  // the request carries an idempotency key
		)
		switch kind % fuzzKinds {
		case fuzzPut:
			req := new(cachev1.PutRequest)
			if proto.Unmarshal(data, req) != nil {
				t.Skip()
			}
			wantErr = errors.Join(v.key("key", req.Key), v.value("value", req.Value), writeErr(v, req.Options))
			idemKey = req.GetOptions().GetIdempotencyKey() != ""
			_, err = c.Put(ctx, req)
		case fuzzGet:
			req := new(cachev1.GetRequest)
			if proto.Unmarshal(data, req) != nil {
				t.Skip()
			}
			_, rerr := v.readOptions(req.Options)
			wantErr = errors.Join(v.key("key", req.Key), rerr)
			_, err = c.Get(ctx, req)
		case fuzzCAS:
			req := new(cachev1.CompareAndSetRequest)
			if proto.Unmarshal(data, req) != nil {
				t.Skip()
			}
			var expErr error
			switch x := req.Expect.(type) {
			case *cachev1.CompareAndSetRequest_ExpectedVersion:
				if x.ExpectedVersion == 0 {
					expErr = ErrInvalidArgument
				}
			case *cachev1.CompareAndSetRequest_ExpectedValue:
				expErr = v.value("expected_value", x.ExpectedValue)
			case *cachev1.CompareAndSetRequest_ExpectAbsent:
				if !x.ExpectAbsent {
					expErr = ErrInvalidArgument
				}
			default:
				expErr = ErrInvalidArgument
			}
			wantErr = errors.Join(v.key("key", req.Key), v.value("value", req.Value), writeErr(v, req.Options), expErr)
			idemKey = req.GetOptions().GetIdempotencyKey() != ""
			_, err = c.CompareAndSet(ctx, req)
		case fuzzScan:
			req := new(cachev1.ScanRequest)
			if proto.Unmarshal(data, req) != nil {
				t.Skip()
			}
			_, perr := v.pageSize(req.PageSize)
			_, rerr := v.readOptions(req.Options)
			_, _, cerr := decodeCursor(req.Cursor, n.ring.Count())
			wantErr = errors.Join(perr, rerr, cerr)
			if len(req.Prefix) > v.limits.MaxKeyBytes {
				wantErr = ErrInvalidArgument
			}
			_, err = c.Scan(ctx, req)
		case fuzzMultiPut:
			req := new(cachev1.MultiPutRequest)
			if proto.Unmarshal(data, req) != nil {
				t.Skip()
			}
			errs := []error{v.batchLen("entries", len(req.Entries)), writeErr(v, req.Options)}
			for _, kv := range req.Entries {
				_, terr := v.ttl("ttl", kv.Ttl)
				errs = append(errs, v.key("key", kv.Key), v.value("value", kv.Value), terr)
			}
			wantErr = errors.Join(errs...)
			idemKey = req.GetOptions().GetIdempotencyKey() != ""
			_, err = c.MultiPut(ctx, req)
		}

		code := status.Code(err)
		switch {
		case code != codes.OK && code != codes.InvalidArgument:
			t.Fatalf("kind %d: got %v, want OK or InvalidArgument", kind%fuzzKinds, err)
		case wantErr != nil && code != codes.InvalidArgument:
			t.Fatalf("kind %d: the validator rejects the request (%v) but the node answered %v", kind%fuzzKinds, wantErr, err)
		case wantErr == nil && code != codes.OK && !idemKey:
			// A reused idempotency key may be refused: it names another
			// request.
			t.Fatalf("kind %d: valid request refused: %v", kind%fuzzKinds, err)
		case code == codes.InvalidArgument && status.Convert(err).Message() == "":
			t.Fatalf("kind %d: InvalidArgument without a message", kind%fuzzKinds)
		}
		// The node keeps serving.
		if _, err := c.Get(ctx, &cachev1.GetRequest{Key: sentinel}); err != nil {
			t.Fatalf("node stopped serving after kind %d request: %v", kind%fuzzKinds, err)
		}
	})
}

func writeErr(v validator, o *cachev1.WriteOptions) error {
	_, err := v.writeOptions(o)
	return err
}

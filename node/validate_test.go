package node

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/elcache/elcache/internal/raftnet"
	"github.com/elcache/elcache/internal/request"
	cachev1 "github.com/elcache/elcache/proto/cache/v1"
	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
)

// testNode starts a node with a configuration like nodetest.Config (which
// this internal test cannot import: nodetest imports node) and returns a
// client to it. The node and the connection close when tb ends.
func testNode(tb testing.TB, opts ...func(*Config)) (*Node, cachev1.CacheClient) {
	tb.Helper()
	cfg := DefaultConfig()
	cfg.NodeName = "test-node"
	cfg.DataDir = tb.TempDir()
	cfg.GRPCAddr = "127.0.0.1:0"
	cfg.GossipAddr = "127.0.0.1:0"
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
			wantErr = errors.Join(v.Key("key", req.Key), v.Value("value", req.Value), writeErr(v, req.Options))
			idemKey = req.GetOptions().GetIdempotencyKey() != ""
			_, err = c.Put(ctx, req)
		case fuzzGet:
			req := new(cachev1.GetRequest)
			if proto.Unmarshal(data, req) != nil {
				t.Skip()
			}
			_, rerr := v.ReadOptions(req.Options)
			wantErr = errors.Join(v.Key("key", req.Key), rerr)
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
				expErr = v.Value("expected_value", x.ExpectedValue)
			case *cachev1.CompareAndSetRequest_ExpectAbsent:
				if !x.ExpectAbsent {
					expErr = ErrInvalidArgument
				}
			default:
				expErr = ErrInvalidArgument
			}
			wantErr = errors.Join(v.Key("key", req.Key), v.Value("value", req.Value), writeErr(v, req.Options), expErr)
			idemKey = req.GetOptions().GetIdempotencyKey() != ""
			_, err = c.CompareAndSet(ctx, req)
		case fuzzScan:
			req := new(cachev1.ScanRequest)
			if proto.Unmarshal(data, req) != nil {
				t.Skip()
			}
			_, perr := v.PageSize(req.PageSize)
			_, rerr := v.ReadOptions(req.Options)
			_, _, cerr := decodeCursor(req.Cursor, n.ring.Count())
			wantErr = errors.Join(perr, rerr, cerr)
			if len(req.Prefix) > n.cfg.Limits.MaxKeyBytes {
				wantErr = ErrInvalidArgument
			}
			_, err = c.Scan(ctx, req)
		case fuzzMultiPut:
			req := new(cachev1.MultiPutRequest)
			if proto.Unmarshal(data, req) != nil {
				t.Skip()
			}
			errs := []error{v.BatchLen("entries", len(req.Entries)), writeErr(v, req.Options)}
			for _, kv := range req.Entries {
				_, terr := v.TTL("ttl", kv.Ttl)
				errs = append(errs, v.Key("key", kv.Key), v.Value("value", kv.Value), terr)
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

func writeErr(v request.Validator, o *cachev1.WriteOptions) error {
	_, err := v.WriteOptions(o)
	return err
}

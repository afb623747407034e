package node_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/elcache/elcache/node/nodetest"
	cachev1 "github.com/elcache/elcache/proto/cache/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

func dial(t testing.TB, addr string) cachev1.CacheClient {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20), grpc.MaxCallSendMsgSize(64<<20)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return cachev1.NewCacheClient(conn)
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestPutGetDelete(t *testing.T) {
	n := nodetest.Start(t)
	c := dial(t, n.Addr())
	ctx := ctxT(t)
	put, err := c.Put(ctx, &cachev1.PutRequest{Key: []byte("k"), Value: []byte("v")})
	if err != nil {
		t.Fatal(err)
	}
	if put.Version == 0 || put.Meta.RaftIndex != put.Version || put.Meta.SessionToken.Index != put.Version {
		t.Fatalf("put response %v", put)
	}
	for _, level := range []cachev1.Consistency{cachev1.Consistency_CONSISTENCY_UNSPECIFIED, cachev1.Consistency_CONSISTENCY_LINEARIZABLE,
		cachev1.Consistency_CONSISTENCY_LEASE, cachev1.Consistency_CONSISTENCY_SESSION, cachev1.Consistency_CONSISTENCY_EVENTUAL} {
		t.Run(level.String(), func(t *testing.T) {
			get, err := c.Get(ctx, &cachev1.GetRequest{Key: []byte("k"), Options: &cachev1.ReadOptions{Consistency: level}})
			if err != nil {
				t.Fatal(err)
			}
			if !get.Found || string(get.Entry.Value) != "v" || get.Entry.Version != put.Version {
				t.Fatalf("get = %v", get)
			}
			m := get.Meta
			if m.ServedBy != "test-node" || m.Role != cachev1.Role_ROLE_LEADER || m.AppliedIndex < put.Version || m.SessionToken.Epoch == 0 {
				t.Fatalf("read meta = %v", m)
			}
		})
	}
	del, err := c.Delete(ctx, &cachev1.DeleteRequest{Key: []byte("k")})
	if err != nil || !del.Existed {
		t.Fatalf("delete = %v, %v", del, err)
	}
	get, err := c.Get(ctx, &cachev1.GetRequest{Key: []byte("k")})
	if err != nil || get.Found {
		t.Fatalf("get after delete = %v, %v", get, err)
	}
	del, err = c.Delete(ctx, &cachev1.DeleteRequest{Key: []byte("k")})
	if err != nil || del.Existed {
		t.Fatalf("second delete = %v, %v", del, err)
	}
	// Versions keep growing across a delete.
	put2, err := c.Put(ctx, &cachev1.PutRequest{Key: []byte("k"), Value: []byte("v2")})
	if err != nil || put2.Version <= put.Version {
		t.Fatalf("put after delete = %v, %v (first version %d)", put2, err, put.Version)
	}
}

func TestCompareAndSet(t *testing.T) {
	n := nodetest.Start(t)
	c := dial(t, n.Addr())
	ctx := ctxT(t)
	key := []byte("cas")
	cas := func(req *cachev1.CompareAndSetRequest) *cachev1.CompareAndSetResponse {
		t.Helper()
		req.Key = key
		r, err := c.CompareAndSet(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	absent := &cachev1.CompareAndSetRequest_ExpectAbsent{ExpectAbsent: true}
	r1 := cas(&cachev1.CompareAndSetRequest{Expect: absent, Value: []byte("a")})
	if !r1.Swapped || r1.Version == 0 {
		t.Fatalf("create: %v", r1)
	}
	if r := cas(&cachev1.CompareAndSetRequest{Expect: absent, Value: []byte("b")}); r.Swapped || r.Version != r1.Version {
		t.Fatalf("create over existing: %v", r)
	}
	if r := cas(&cachev1.CompareAndSetRequest{Expect: &cachev1.CompareAndSetRequest_ExpectedVersion{ExpectedVersion: r1.Version + 100}, Value: []byte("b")}); r.Swapped {
		t.Fatalf("wrong version swapped: %v", r)
	}
	r2 := cas(&cachev1.CompareAndSetRequest{Expect: &cachev1.CompareAndSetRequest_ExpectedVersion{ExpectedVersion: r1.Version}, Value: []byte("b")})
	if !r2.Swapped || r2.Version <= r1.Version {
		t.Fatalf("version cas: %v", r2)
	}
	if r := cas(&cachev1.CompareAndSetRequest{Expect: &cachev1.CompareAndSetRequest_ExpectedValue{ExpectedValue: []byte("a")}, Value: []byte("c")}); r.Swapped {
		t.Fatalf("wrong value swapped: %v", r)
	}
	if r := cas(&cachev1.CompareAndSetRequest{Expect: &cachev1.CompareAndSetRequest_ExpectedValue{ExpectedValue: []byte("b")}, Value: []byte("c")}); !r.Swapped {
		t.Fatalf("value cas: %v", r)
	}
	get, err := c.Get(ctx, &cachev1.GetRequest{Key: key})
	if err != nil || string(get.Entry.GetValue()) != "c" {
		t.Fatalf("get = %v, %v", get, err)
	}
}

func TestMultiPutMultiGetScan(t *testing.T) {
	n := nodetest.Start(t)
	c := dial(t, n.Addr())
	ctx := ctxT(t)
	var entries []*cachev1.KeyValue
	const total = 250
	for i := 0; i < total; i++ {
		entries = append(entries, &cachev1.KeyValue{Key: []byte(fmt.Sprintf("key-%03d", i)), Value: []byte(fmt.Sprint(i))})
	}
	mp, err := c.MultiPut(ctx, &cachev1.MultiPutRequest{Entries: entries})
	if err != nil || len(mp.Results) != total {
		t.Fatalf("multiput = %v, %v", mp, err)
	}
	keys := [][]byte{[]byte("key-007"), []byte("missing"), []byte("key-249")}
	mg, err := c.MultiGet(ctx, &cachev1.MultiGetRequest{Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	if !mg.Results[0].Found || string(mg.Results[0].Entry.Value) != "7" || mg.Results[1].Found || string(mg.Results[2].Entry.Value) != "249" {
		t.Fatalf("multiget = %v", mg)
	}
	if mg.Results[0].Entry.Version != mp.Results[7].Version {
		t.Fatalf("multiget version %d, multiput said %d", mg.Results[0].Entry.Version, mp.Results[7].Version)
	}
	seen := map[string]int{}
	var cursor []byte
	pages := 0
	for {
		page, err := c.Scan(ctx, &cachev1.ScanRequest{Cursor: cursor, PageSize: 17, Prefix: []byte("key-")})
		if err != nil {
			t.Fatal(err)
		}
		pages++
		if len(page.Entries) > 17 {
			t.Fatalf("page of %d entries", len(page.Entries))
		}
		for _, e := range page.Entries {
			seen[string(e.Key)]++
		}
		if len(page.NextCursor) == 0 {
			break
		}
		cursor = page.NextCursor
	}
	if len(seen) != total || pages < total/17 {
		t.Fatalf("scan saw %d keys in %d pages, want %d", len(seen), pages, total)
	}
	for k, c := range seen {
		if c != 1 {
			t.Fatalf("scan returned %s %d times", k, c)
		}
	}
}

func TestIdempotentRetry(t *testing.T) {
	n := nodetest.Start(t)
	c := dial(t, n.Addr())
	ctx := ctxT(t)
	opts := &cachev1.WriteOptions{IdempotencyKey: "01890a5d-ac96-774b-bcce-b302099a8057"}
	first, err := c.Put(ctx, &cachev1.PutRequest{Key: []byte("k"), Value: []byte("v1"), Options: opts})
	if err != nil {
		t.Fatal(err)
	}
	retry, err := c.Put(ctx, &cachev1.PutRequest{Key: []byte("k"), Value: []byte("v1"), Options: opts})
	if err != nil {
		t.Fatal(err)
	}
	if !retry.Meta.Deduplicated || retry.Version != first.Version || first.Meta.Deduplicated {
		t.Fatalf("first %v, retry %v", first, retry)
	}
	get, _ := c.Get(ctx, &cachev1.GetRequest{Key: []byte("k")})
	if get.Entry.Version != first.Version {
		t.Fatalf("retry was applied again: version %d, want %d", get.Entry.Version, first.Version)
	}
}

func TestTTLExpiry(t *testing.T) {
	n := nodetest.Start(t)
	c := dial(t, n.Addr())
	ctx := ctxT(t)
	_, err := c.Put(ctx, &cachev1.PutRequest{Key: []byte("short"), Value: []byte("v"),
		Options: &cachev1.WriteOptions{Ttl: durationpb.New(200 * time.Millisecond)}})
	if err != nil {
		t.Fatal(err)
	}
	get, err := c.Get(ctx, &cachev1.GetRequest{Key: []byte("short")})
	if err != nil || !get.Found || get.Entry.ExpiresAt == nil {
		t.Fatalf("fresh get = %v, %v", get, err)
	}
	deadline := get.Entry.ExpiresAt.AsTime()
	// Poll until the reaper has removed the entry from storage; a read
	// after the expiry instant must never see it.
	for {
		// A read that began after the expiry must miss; one that began
		// before may still see the entry when its answer comes late.
		began := time.Now()
		get, err := c.Get(ctx, &cachev1.GetRequest{Key: []byte("short")})
		if err != nil {
			t.Fatal(err)
		}
		if get.Found && began.After(deadline) {
			t.Fatalf("entry returned after its expiry %v", deadline)
		}
		st, err := c.Stats(ctx, &cachev1.StatsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if !get.Found && st.Keys == 0 && st.Expirations == 1 {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("entry not reaped: stats %v", st)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestInvalidArgument(t *testing.T) {
	n := nodetest.Start(t)
	c := dial(t, n.Addr())
	ctx := ctxT(t)
	big := bytes.Repeat([]byte("x"), 1<<20+1)
	longKey := bytes.Repeat([]byte("k"), 1025)
	tests := []struct {
		name string
		call func() error
		want string
	}{
		{"empty key", func() error { _, err := c.Put(ctx, &cachev1.PutRequest{Value: []byte("v")}); return err }, "key is empty"},
		{"long key", func() error { _, err := c.Put(ctx, &cachev1.PutRequest{Key: longKey}); return err }, "key is 1025 bytes, over the limit of 1024"},
		{"long get key", func() error { _, err := c.Get(ctx, &cachev1.GetRequest{Key: longKey}); return err }, "over the limit"},
		{"big value", func() error { _, err := c.Put(ctx, &cachev1.PutRequest{Key: []byte("k"), Value: big}); return err }, "value is 1048577 bytes"},
		{"negative ttl", func() error {
			_, err := c.Put(ctx, &cachev1.PutRequest{Key: []byte("k"), Options: &cachev1.WriteOptions{Ttl: durationpb.New(-time.Second)}})
			return err
		}, "options.ttl is negative"},
		{"unknown consistency", func() error {
			_, err := c.Get(ctx, &cachev1.GetRequest{Key: []byte("k"), Options: &cachev1.ReadOptions{Consistency: 42}})
			return err
		}, "options.consistency: unknown value 42"},
		{"unknown write mode", func() error {
			_, err := c.Put(ctx, &cachev1.PutRequest{Key: []byte("k"), Options: &cachev1.WriteOptions{Mode: 9}})
			return err
		}, "options.mode: unknown value 9"},
		{"write-through without backend", func() error {
			_, err := c.Put(ctx, &cachev1.PutRequest{Key: []byte("k"), Options: &cachev1.WriteOptions{Mode: cachev1.WriteMode_WRITE_MODE_WRITE_THROUGH}})
			return err
		}, "needs a backing database"},
		{"bounded without staleness", func() error {
			_, err := c.Get(ctx, &cachev1.GetRequest{Key: []byte("k"), Options: &cachev1.ReadOptions{Consistency: cachev1.Consistency_CONSISTENCY_BOUNDED}})
			return err
		}, "max_staleness must be positive"},
		{"bad idempotency key", func() error {
			_, err := c.Put(ctx, &cachev1.PutRequest{Key: []byte("k"), Options: &cachev1.WriteOptions{IdempotencyKey: "not-a-uuid"}})
			return err
		}, "is not a UUID"},
		{"uuid v4 idempotency key", func() error {
			_, err := c.Put(ctx, &cachev1.PutRequest{Key: []byte("k"), Options: &cachev1.WriteOptions{IdempotencyKey: "9b2f0c1e-8d4a-4f7b-9c3e-2a1b0c9d8e7f"}})
			return err
		}, "want version 7"},
		{"page size", func() error { _, err := c.Scan(ctx, &cachev1.ScanRequest{PageSize: 1001}); return err }, "page_size 1001 is over the limit of 1000"},
		{"bad cursor", func() error { _, err := c.Scan(ctx, &cachev1.ScanRequest{Cursor: []byte{9}}); return err }, "cursor is malformed"},
		{"cas without expectation", func() error {
			_, err := c.CompareAndSet(ctx, &cachev1.CompareAndSetRequest{Key: []byte("k")})
			return err
		}, "one of expected_version"},
		{"empty multiget", func() error { _, err := c.MultiGet(ctx, &cachev1.MultiGetRequest{}); return err }, "keys is empty"},
		{"multiget over limit", func() error {
			keys := make([][]byte, 1001)
			for i := range keys {
				keys[i] = []byte("k")
			}
			_, err := c.MultiGet(ctx, &cachev1.MultiGetRequest{Keys: keys})
			return err
		}, "1001 items, over the limit of 1000"},
		{"multiput empty key", func() error {
			_, err := c.MultiPut(ctx, &cachev1.MultiPutRequest{Entries: []*cachev1.KeyValue{{Key: []byte("a")}, {}}})
			return err
		}, "entries[1].key is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			st, _ := status.FromError(err)
			if st.Code() != codes.InvalidArgument || !bytes.Contains([]byte(st.Message()), []byte(tt.want)) {
				t.Fatalf("got %v, want InvalidArgument containing %q", err, tt.want)
			}
		})
	}
	// The node keeps serving after bad input.
	if _, err := c.Put(ctx, &cachev1.PutRequest{Key: []byte("k"), Value: []byte("v")}); err != nil {
		t.Fatalf("put after bad input: %v", err)
	}
}

package client_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/elcache/elcache/client"
	"github.com/elcache/elcache/node/nodetest"
)

// newClient starts a single node and returns a client connected to it.
func newClient(t *testing.T) *client.Client {
	t.Helper()
	n := nodetest.Start(t)
	cfg := client.DefaultConfig()
	cfg.Seeds = []string{n.Addr()}
	c, err := client.New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Error(err)
		}
	})
	return c
}

func TestPutGetDelete(t *testing.T) {
	c, ctx := newClient(t), t.Context()
	k := []byte("greeting")
	w, err := c.Put(ctx, k, []byte("hello"))
	if err != nil {
		t.Fatal(err)
	}
	if w.Version == 0 {
		t.Errorf("Put version = 0")
	}
	e, err := c.Get(ctx, k)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(e.Key, k) || string(e.Value) != "hello" || e.Version != w.Version || !e.ExpiresAt.IsZero() {
		t.Errorf("Get = %+v, want hello at version %d without expiry", e, w.Version)
	}
	if e.Meta.ServedBy == "" {
		t.Errorf("Get meta = %+v, want ServedBy", e.Meta)
	}
	w2, err := c.Put(ctx, k, []byte("again"))
	if err != nil {
		t.Fatal(err)
	}
	if w2.Version <= w.Version {
		t.Errorf("second Put version %d, want > %d", w2.Version, w.Version)
	}

	existed, err := c.Delete(ctx, k)
	if err != nil || !existed {
		t.Fatalf("Delete = %v, %v; want true", existed, err)
	}
	e, err = c.Get(ctx, k)
	if !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("Get after Delete = %+v, %v; want ErrNotFound", e, err)
	}
	if !bytes.Equal(e.Key, k) {
		t.Errorf("Get miss entry key = %q, want %q", e.Key, k)
	}
	existed, err = c.Delete(ctx, k)
	if err != nil || existed {
		t.Fatalf("second Delete = %v, %v; want false", existed, err)
	}
}

func TestTTL(t *testing.T) {
	c, ctx := newClient(t), t.Context()
	before := time.Now()
	if _, err := c.Put(ctx, []byte("k"), []byte("v"), client.WithTTL(time.Hour)); err != nil {
		t.Fatal(err)
	}
	e, err := c.Get(ctx, []byte("k"))
	if err != nil {
		t.Fatal(err)
	}
	if lo, hi := before.Add(time.Hour-time.Second), time.Now().Add(time.Hour+time.Second); e.ExpiresAt.Before(lo) || e.ExpiresAt.After(hi) {
		t.Errorf("ExpiresAt = %v, want about an hour from now", e.ExpiresAt)
	}
}

func TestCompareAndSet(t *testing.T) {
	c, ctx := newClient(t), t.Context()
	k := []byte("lock")
	cas := func(expect client.Expectation, v string) (bool, uint64) {
		t.Helper()
		ok, version, err := c.CompareAndSet(ctx, k, expect, []byte(v))
		if err != nil {
			t.Fatal(err)
		}
		return ok, version
	}
	ok, v1 := cas(client.ExpectAbsent(), "a")
	if !ok || v1 == 0 {
		t.Fatalf("CAS absent on a missing key = %v, %d; want swapped", ok, v1)
	}
	if ok, v := cas(client.ExpectAbsent(), "b"); ok || v != v1 {
		t.Errorf("CAS absent on an existing key = %v, %d; want not swapped at %d", ok, v, v1)
	}
	ok, v2 := cas(client.ExpectVersion(v1), "b")
	if !ok || v2 <= v1 {
		t.Fatalf("CAS version %d = %v, %d; want swapped", v1, ok, v2)
	}
	if ok, v := cas(client.ExpectVersion(v1), "c"); ok || v != v2 {
		t.Errorf("CAS stale version = %v, %d; want not swapped at %d", ok, v, v2)
	}
	if ok, v := cas(client.ExpectValue([]byte("a")), "c"); ok || v != v2 {
		t.Errorf("CAS wrong value = %v, %d; want not swapped at %d", ok, v, v2)
	}
	if ok, _ := cas(client.ExpectValue([]byte("b")), "c"); !ok {
		t.Errorf("CAS right value did not swap")
	}
	if ok, v, err := c.CompareAndSet(ctx, []byte("missing"), client.ExpectVersion(1), nil); err != nil || ok || v != 0 {
		t.Errorf("CAS version on a missing key = %v, %d, %v; want not swapped at 0", ok, v, err)
	}
	e, err := c.Get(ctx, k)
	if err != nil || string(e.Value) != "c" {
		t.Errorf("Get after CAS = %q, %v; want c", e.Value, err)
	}
}

func TestMultiPutMultiGet(t *testing.T) {
	c, ctx := newClient(t), t.Context()
	ws, err := c.MultiPut(ctx, []client.KeyValue{
		{Key: []byte("a"), Value: []byte("1")},
		{Key: []byte("b"), Value: []byte("2"), TTL: time.Hour},
		{Key: []byte("c"), Value: []byte("3")},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(ws) != 3 {
		t.Fatalf("MultiPut returned %d results, want 3", len(ws))
	}
	rs, err := c.MultiGet(ctx, [][]byte{[]byte("c"), []byte("missing"), []byte("a"), []byte("b")})
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		key, value string
		found      bool
		expires    bool
	}{{"c", "3", true, false}, {"missing", "", false, false}, {"a", "1", true, false}, {"b", "2", true, true}}
	if len(rs) != len(want) {
		t.Fatalf("MultiGet returned %d results, want %d", len(rs), len(want))
	}
	for i, w := range want {
		r := rs[i]
		if r.Found != w.found || string(r.Entry.Key) != w.key || string(r.Entry.Value) != w.value || r.Entry.ExpiresAt.IsZero() == w.expires {
			t.Errorf("result %d = %+v, want %+v", i, r, w)
		}
	}
	if rs[0].Entry.Version != ws[2].Version {
		t.Errorf("c version = %d, want %d", rs[0].Entry.Version, ws[2].Version)
	}
}

func TestScanPagination(t *testing.T) {
	c, ctx := newClient(t), t.Context()
	want := map[string]string{}
	var kvs []client.KeyValue
	for i := range 25 {
		k, v := fmt.Sprintf("scan/%02d", i), fmt.Sprintf("v%d", i)
		want[k] = v
		kvs = append(kvs, client.KeyValue{Key: []byte(k), Value: []byte(v)})
	}
	kvs = append(kvs, client.KeyValue{Key: []byte("other"), Value: []byte("x")})
	if _, err := c.MultiPut(ctx, kvs); err != nil {
		t.Fatal(err)
	}

	got := map[string]string{}
	so := client.ScanOptions{Prefix: []byte("scan/"), PageSize: 10}
	for pages := 1; ; pages++ {
		entries, next, err := c.Scan(ctx, so)
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) > so.PageSize {
			t.Fatalf("page %d has %d entries, more than %d", pages, len(entries), so.PageSize)
		}
		for _, e := range entries {
			if _, dup := got[string(e.Key)]; dup {
				t.Fatalf("key %s returned twice", e.Key)
			}
			got[string(e.Key)] = string(e.Value)
		}
		if len(next) == 0 {
			break
		}
		if pages > 25 {
			t.Fatal("scan does not end")
		}
		so.Cursor = next
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Scan = %v, want %v", got, want)
	}

	n := 0
	for e, err := range c.ScanAll(ctx, client.ScanOptions{Prefix: []byte("scan/"), PageSize: 7, KeysOnly: true}) {
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := want[string(e.Key)]; !ok || len(e.Value) != 0 || e.Version == 0 {
			t.Errorf("ScanAll keys-only entry = %+v", e)
		}
		n++
	}
	if n != len(want) {
		t.Errorf("ScanAll returned %d entries, want %d", n, len(want))
	}
}

func TestStats(t *testing.T) {
	c, ctx := newClient(t), t.Context()
	if _, err := c.Put(ctx, []byte("k"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	s, err := c.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s.GetNodeName() == "" || s.GetPartitionCount() == 0 || len(s.GetPartitions()) == 0 {
		t.Errorf("Stats = %v, want a node name and partitions", s)
	}
}

func TestIdempotentRetry(t *testing.T) {
	c, ctx := newClient(t), t.Context()
	key := client.WithIdempotencyKey(uuid.Must(uuid.NewV7()).String())
	w1, err := c.Put(ctx, []byte("k"), []byte("v"), key)
	if err != nil {
		t.Fatal(err)
	}
	w2, err := c.Put(ctx, []byte("k"), []byte("v"), key)
	if err != nil {
		t.Fatal(err)
	}
	if !w2.Meta.Deduplicated || w2.Version != w1.Version {
		t.Errorf("retried Put = %+v, want deduplicated at version %d", w2, w1.Version)
	}
}

func TestErrorMapping(t *testing.T) {
	c := newClient(t)
	ctx := t.Context()
	long := bytes.Repeat([]byte("k"), 2048)
	tests := []struct {
		name string
		call func(key []byte) error
	}{
		{"Get", func(k []byte) error { _, err := c.Get(ctx, k); return err }},
		{"Put", func(k []byte) error { _, err := c.Put(ctx, k, []byte("v")); return err }},
		{"Delete", func(k []byte) error { _, err := c.Delete(ctx, k); return err }},
		{"CompareAndSet", func(k []byte) error {
			_, _, err := c.CompareAndSet(ctx, k, client.ExpectAbsent(), []byte("v"))
			return err
		}},
		{"MultiGet", func(k []byte) error { _, err := c.MultiGet(ctx, [][]byte{[]byte("ok"), k}); return err }},
		{"MultiPut", func(k []byte) error { _, err := c.MultiPut(ctx, []client.KeyValue{{Key: k}}); return err }},
	}
	for _, tt := range tests {
		for _, key := range [][]byte{nil, long} {
			t.Run(fmt.Sprintf("%s/%d", tt.name, len(key)), func(t *testing.T) {
				err := tt.call(key)
				if !errors.Is(err, client.ErrInvalidArgument) {
					t.Fatalf("err = %v, want ErrInvalidArgument", err)
				}
				msg, ok := strings.CutPrefix(err.Error(), "client: invalid argument: ")
				if !ok || msg == "" {
					t.Errorf("err = %q, want the server's message after the prefix", err)
				}
			})
		}
	}

	expired, cancel := context.WithDeadline(ctx, time.Now().Add(-time.Second))
	defer cancel()
	if _, err := c.Get(expired, []byte("k")); !errors.Is(err, client.ErrDeadlineExceeded) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Get with an expired context = %v, want ErrDeadlineExceeded", err)
	}
}

// A call whose deadline has passed fails as such, on both paths, and is
// not sent.
func TestExpiredDeadline(t *testing.T) {
	c := newClient(t)
	ctx, cancel := context.WithDeadline(t.Context(), time.Now().Add(-time.Second))
	defer cancel()
	if _, err := c.Get(ctx, []byte("k")); !errors.Is(err, client.ErrDeadlineExceeded) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Get with an expired deadline = %v, want ErrDeadlineExceeded", err)
	}
	if _, err := c.Put(ctx, []byte("k"), []byte("v")); !errors.Is(err, client.ErrDeadlineExceeded) {
		t.Fatalf("Put with an expired deadline = %v, want ErrDeadlineExceeded", err)
	}
}

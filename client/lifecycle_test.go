package client_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/elcache/elcache/client"
)

// deadAddr returns a local address nothing listens on.
func deadAddr(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()
	return addr
}

func TestNewWaitsForReady(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	cfg := client.DefaultConfig()
	cfg.Seeds = []string{deadAddr(t)}
	cfg.DialTimeout = 200 * time.Millisecond
	c, err := client.New(t.Context(), cfg)
	if err == nil {
		c.Close()
		t.Fatal("New to a dead address succeeded")
	}
	if !errors.Is(err, client.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("New = %v, want ErrUnavailable and context.DeadlineExceeded", err)
	}
	if !strings.Contains(err.Error(), cfg.Seeds[0]) {
		t.Errorf("New = %q, want it to name %s", err, cfg.Seeds[0])
	}
}

func TestLazyConnectUnavailable(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	cfg := client.DefaultConfig()
	cfg.Seeds = []string{deadAddr(t)}
	cfg.DialTimeout = 0
	c, err := client.New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = c.Get(t.Context(), []byte("k"))
	if !errors.Is(err, client.ErrUnavailable) {
		t.Fatalf("Get = %v, want ErrUnavailable", err)
	}
	if msg := strings.TrimPrefix(err.Error(), "client: unavailable: "); msg == err.Error() || msg == "" {
		t.Errorf("Get = %q, want the transport's message after the prefix", err)
	}
}

func TestClose(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	cfg := client.DefaultConfig()
	cfg.Seeds = []string{deadAddr(t)}
	cfg.DialTimeout = 0
	c, err := client.New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
	ctx, k := t.Context(), []byte("k")
	calls := map[string]func() error{
		"Get":    func() error { _, err := c.Get(ctx, k); return err },
		"Put":    func() error { _, err := c.Put(ctx, k, k); return err },
		"Delete": func() error { _, err := c.Delete(ctx, k); return err },
		"CompareAndSet": func() error {
			_, _, err := c.CompareAndSet(ctx, k, client.ExpectAbsent(), k)
			return err
		},
		"MultiGet": func() error { _, err := c.MultiGet(ctx, [][]byte{k}); return err },
		"MultiPut": func() error { _, err := c.MultiPut(ctx, []client.KeyValue{{Key: k}}); return err },
		"Scan":     func() error { _, _, err := c.Scan(ctx, client.ScanOptions{}); return err },
		"ScanAll": func() error {
			for _, err := range c.ScanAll(ctx, client.ScanOptions{}) {
				return err
			}
			return nil
		},
		"Stats": func() error { _, err := c.Stats(ctx); return err },
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, client.ErrClosed) {
			t.Errorf("%s after Close = %v, want ErrClosed", name, err)
		}
	}
}

// Arguments the client can check are rejected before any request is sent.
func TestLocalValidation(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	cfg := client.DefaultConfig()
	cfg.Seeds = []string{deadAddr(t)}
	cfg.DialTimeout = 0
	c, err := client.New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, k := t.Context(), []byte("k")
	calls := map[string]func() error{
		"Get bounded 0": func() error { _, err := c.Get(ctx, k, client.Bounded(0)); return err },
		"Put negative TTL": func() error {
			_, err := c.Put(ctx, k, k, client.WithTTL(-time.Second))
			return err
		},
		"CompareAndSet zero expectation": func() error {
			_, _, err := c.CompareAndSet(ctx, k, client.Expectation{}, k)
			return err
		},
		"MultiPut negative entry TTL": func() error {
			_, err := c.MultiPut(ctx, []client.KeyValue{{Key: k, TTL: -1}})
			return err
		},
		"Scan negative page": func() error {
			_, _, err := c.Scan(ctx, client.ScanOptions{PageSize: -1})
			return err
		},
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, client.ErrInvalidArgument) {
			t.Errorf("%s = %v, want ErrInvalidArgument", name, err)
		}
	}
}

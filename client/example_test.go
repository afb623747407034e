package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/elcache/elcache/client"
	cachev1 "github.com/elcache/elcache/proto/cache/v1"
)

func ExampleNew() {
	ctx := context.Background()
	cfg := client.DefaultConfig()
	cfg.Seeds = []string{"127.0.0.1:7400"}
	cfg.DefaultConsistency = cachev1.Consistency_CONSISTENCY_LEASE
	c, err := client.New(ctx, cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	if _, err := c.Put(ctx, []byte("greeting"), []byte("hello"), client.WithTTL(time.Hour)); err != nil {
		log.Fatal(err)
	}
	e, err := c.Get(ctx, []byte("greeting"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s (version %d, served by %s)\n", e.Value, e.Version, e.Meta.ServedBy)
}

func ExampleConfig_Validate() {
	cfg := client.DefaultConfig()
	cfg.Seeds = []string{"localhost"}
	cfg.DefaultConsistency = cachev1.Consistency_CONSISTENCY_BOUNDED
	fmt.Println(cfg.Validate())
	// Output:
	// client: config: seed "localhost" is not HOST:PORT
	// client: config: DefaultConsistency BOUNDED needs a positive DefaultMaxStaleness
}

func ExampleClient_Get() {
	ctx := context.Background()
	c, err := client.New(ctx, client.DefaultConfig())
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	e, err := c.Get(ctx, []byte("user:42"), client.WithConsistency(cachev1.Consistency_CONSISTENCY_LINEARIZABLE))
	switch {
	case errors.Is(err, client.ErrNotFound):
		fmt.Println("miss")
	case err != nil:
		log.Fatal(err)
	default:
		fmt.Printf("hit: %s\n", e.Value)
	}
	// A replica at most a second behind may answer.
	if _, err := c.Get(ctx, []byte("user:42"), client.Bounded(time.Second)); err != nil && !errors.Is(err, client.ErrNotFound) {
		log.Fatal(err)
	}
}

func ExampleClient_CompareAndSet() {
	ctx := context.Background()
	c, err := client.New(ctx, client.DefaultConfig())
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	// Take a lock that expires unless renewed.
	ok, version, err := c.CompareAndSet(ctx, []byte("lock:job"), client.ExpectAbsent(), []byte("worker-1"), client.WithTTL(30*time.Second))
	if err != nil {
		log.Fatal(err)
	}
	if !ok {
		fmt.Println("held by someone else, version", version)
		return
	}
	// Renew it only if nobody took it over since.
	if _, _, err := c.CompareAndSet(ctx, []byte("lock:job"), client.ExpectVersion(version), []byte("worker-1"), client.WithTTL(30*time.Second)); err != nil {
		log.Fatal(err)
	}
}

func ExampleClient_MultiGet() {
	ctx := context.Background()
	c, err := client.New(ctx, client.DefaultConfig())
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	if _, err := c.MultiPut(ctx, []client.KeyValue{
		{Key: []byte("a"), Value: []byte("1")},
		{Key: []byte("b"), Value: []byte("2"), TTL: time.Minute},
	}); err != nil {
		log.Fatal(err)
	}
	results, err := c.MultiGet(ctx, [][]byte{[]byte("a"), []byte("b"), []byte("c")})
	if err != nil {
		log.Fatal(err)
	}
	for _, r := range results {
		fmt.Printf("%s found=%v %s\n", r.Entry.Key, r.Found, r.Entry.Value)
	}
}

func ExampleClient_ScanAll() {
	ctx := context.Background()
	c, err := client.New(ctx, client.DefaultConfig())
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	for e, err := range c.ScanAll(ctx, client.ScanOptions{Prefix: []byte("user:"), PageSize: 500, KeysOnly: true}) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%s\n", e.Key)
	}
}

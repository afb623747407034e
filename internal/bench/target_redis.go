package bench

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"
)

// RedisTarget is a Redis server driven by go-redis: GET and SET, one
// command per call, on a pool of connections shared by the workers.
type RedisTarget struct {
	name   string
	client redis.UniversalClient
}

var _ Target = (*RedisTarget)(nil)

// redisPoolSize is connections per server: more than the workers of any
// run, so that no worker waits for a connection and latency is Redis's.
const redisPoolSize = 256

// NewRedisTarget connects to the Redis server at f.Addr (host:port; a
// comma-separated list is taken as a Redis Cluster) and checks it answers.
// f.Mode only labels the target, e.g. "appendfsync-always": how the server
// persists is its own configuration.
func NewRedisTarget(ctx context.Context, f *TargetFlags) (Target, error) {
	addrs := splitAddrs(f.Addr)
	if len(addrs) == 0 {
		return nil, errors.New("redis: no address (--addr host:port)")
	}
	client := redis.NewUniversalClient(&redis.UniversalOptions{
		Addrs:        addrs,
		PoolSize:     redisPoolSize,
		MinIdleConns: 16,
	})
	if err := client.Ping(ctx).Err(); err != nil {
		client.Close()
		return nil, fmt.Errorf("redis: ping %s: %w", f.Addr, err)
	}
	name := "redis"
	if f.Mode != "" {
		name += "/" + f.Mode
	}
	return &RedisTarget{name: name, client: client}, nil
}

func (r *RedisTarget) Name() string { return r.name }

// Client is the target's go-redis client, for measurements beyond Get and
// Put (bench-compare's memory run).
func (r *RedisTarget) Client() redis.UniversalClient { return r.client }

func (r *RedisTarget) Get(ctx context.Context, key string) error {
	err := r.client.Get(ctx, key).Err()
	if errors.Is(err, redis.Nil) {
		return nil
	}
	return err
}

func (r *RedisTarget) Put(ctx context.Context, key string, value []byte) error {
	return r.client.Set(ctx, key, value, 0).Err()
}

func (r *RedisTarget) Close() error { return r.client.Close() }

// splitAddrs splits a comma-separated address list, dropping blanks.
func splitAddrs(s string) []string {
	var out []string
	for a := range strings.SplitSeq(s, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

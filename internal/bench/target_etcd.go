package bench

import (
	"context"
	"errors"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// etcdTarget is an etcd cluster driven by the official v3 client: a read
// is a range of one key, linearizable (the default: the leader confirms
// its leadership through a quorum round) or serializable (served from the
// local member's store); a write is a plain put, committed by a quorum
// and fsynced.
type etcdTarget struct {
	name    string
	client  *clientv3.Client
	getOpts []clientv3.OpOption
}

var _ Target = (*etcdTarget)(nil)

// NewEtcdTarget connects to the etcd members at f.Addr (comma-separated
// host:port or URLs) and checks the cluster answers. f.Serializable makes
// reads serializable.
func NewEtcdTarget(ctx context.Context, f *TargetFlags) (Target, error) {
	endpoints := splitAddrs(f.Addr)
	if len(endpoints) == 0 {
		return nil, errors.New("etcd: no endpoint (--addr host:port,...)")
	}
	client, err := clientv3.New(clientv3.Config{
		Endpoints:   endpoints,
		DialTimeout: 5 * time.Second,
		Context:     context.WithoutCancel(ctx),
		// The client's own logger writes JSON at info level to stderr,
		// which would garble the progress line.
		Logger: zap.NewNop(),
	})
	if err != nil {
		return nil, fmt.Errorf("etcd: connect %s: %w", f.Addr, err)
	}
	// A linearizable read needs a leader and a quorum: proof that the
	// cluster is ready.
	if _, err := client.Get(ctx, "elcache-bench-ping"); err != nil {
		client.Close()
		return nil, fmt.Errorf("etcd: get from %s: %w", f.Addr, err)
	}
	t := &etcdTarget{name: "etcd/linearizable", client: client}
	if f.Serializable {
		t.name = "etcd/serializable"
		t.getOpts = []clientv3.OpOption{clientv3.WithSerializable()}
	}
	return t, nil
}

func (e *etcdTarget) Name() string { return e.name }

func (e *etcdTarget) Get(ctx context.Context, key string) error {
	_, err := e.client.Get(ctx, key, e.getOpts...)
	return err
}

func (e *etcdTarget) Put(ctx context.Context, key string, value []byte) error {
	_, err := e.client.Put(ctx, key, string(value))
	return err
}

func (e *etcdTarget) Close() error { return e.client.Close() }

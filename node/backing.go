package node

import (
	"context"
	"fmt"
	"time"

	dbclient "github.com/elcache/elcache/internal/backend"
	"github.com/elcache/elcache/storage/sqlstore"
)

// BackendConfig tunes the node's use of its backing database: retries,
// the circuit breaker, negative caching, the write-back flusher and
// refills (see internal/backend.Config for each field).
type BackendConfig = dbclient.Config

// ErrBackend: the backing database failed or its circuit breaker is open.
var ErrBackend = dbclient.ErrUnavailable

// ErrRefused: the backing database, otherwise healthy, refused the rows
// for what they hold (a constraint or check of the table, a value it
// cannot store). Sending them again fails the same way.
var ErrRefused = dbclient.ErrRefused

// openBackend connects to the backing database named by the config.
func (n *Node) openBackend() error {
	c := n.cfg.Backing
	opts := sqlstore.Options{Table: c.Table, Columns: c.Columns, CreateTable: c.CreateTable}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	store, err := sqlstore.Open(ctx, n.cfg.Backend, opts)
	if err != nil {
		return fmt.Errorf("node: backing database: %w", err)
	}
	client, err := dbclient.New(store, c, sqlstore.IsTransient)
	if err != nil {
		store.Close()
		return fmt.Errorf("node: backing database: %w", err)
	}
	n.backend, n.backendCfg = client, client.Config()
	return nil
}

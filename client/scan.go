package client

import (
	"context"
	"fmt"
	"iter"
	"math"

	cachev1 "github.com/elcache/elcache/proto/cache/v1"
)

// ScanOptions select one page of a Scan.
type ScanOptions struct {
	// Prefix limits the scan to keys with this prefix; empty means all.
	Prefix []byte
	// Cursor is the nextCursor of the previous page; empty starts at the
	// beginning.
	Cursor []byte
	// PageSize is the number of entries per page: 0 means the server's
	// default (100), and the server caps it (at 1000).
	PageSize int
	// KeysOnly returns entries without values.
	KeysOnly bool
}

// Scan reads one page of the keyspace in (partition, key) order. Pass
// nextCursor back in ScanOptions.Cursor for the next page; it is empty when
// the scan is complete. Entries have no Meta.
func (c *Client) Scan(ctx context.Context, so ScanOptions, opts ...ReadOption) (entries []Entry, nextCursor []byte, err error) {
	if c.closed.Load() {
		return nil, nil, ErrClosed
	}
	if so.PageSize < 0 || so.PageSize > math.MaxUint32 {
		return nil, nil, fmt.Errorf("%w: page size %d out of range", ErrInvalidArgument, so.PageSize)
	}
	ro, err := buildReadOptions(&c.cfg, opts)
	if err != nil {
		return nil, nil, err
	}
	resp, err := c.seed().rpc.Scan(ctx, &cachev1.ScanRequest{
		Cursor:   so.Cursor,
		Prefix:   so.Prefix,
		PageSize: uint32(so.PageSize),
		KeysOnly: so.KeysOnly,
		Options:  ro,
	})
	if err != nil {
		return nil, nil, c.fail(err)
	}
	entries = make([]Entry, len(resp.GetEntries()))
	for i, e := range resp.GetEntries() {
		entries[i] = entryFromProto(e)
	}
	return entries, resp.GetNextCursor(), nil
}

// ScanAll iterates over every entry from so.Cursor to the end of the scan,
// fetching pages of so.PageSize as it goes. On error it yields the error
// once and stops. Break out of the loop to stop early.
func (c *Client) ScanAll(ctx context.Context, so ScanOptions, opts ...ReadOption) iter.Seq2[Entry, error] {
	return func(yield func(Entry, error) bool) {
		for {
			entries, next, err := c.Scan(ctx, so, opts...)
			if err != nil {
				yield(Entry{}, err)
				return
			}
			for _, e := range entries {
				if !yield(e, nil) {
					return
				}
			}
			if len(next) == 0 {
				return
			}
			so.Cursor = next
		}
	}
}

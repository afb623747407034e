package respserver

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"golang.org/x/sync/errgroup"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/elcache/elcache/internal/resp"
	cachev1 "github.com/elcache/elcache/proto/cache/v1"
)

// cmdDel is DEL and UNLINK: the keys are deleted one by one (each its own
// Raft command on its partition).
func cmdDel(ctx context.Context, c *conn, args [][]byte) reply {
	var n int64
	for _, key := range args[1:] {
		existed, err := c.del(ctx, key)
		if err != nil {
			return errReply(err)
		}
		if existed {
			n++
		}
	}
	return intReply(n)
}

// cmdExists counts the keys that exist, a key named twice twice.
func cmdExists(ctx context.Context, c *conn, args [][]byte) reply {
	if len(args) == 2 {
		resp, err := c.get(ctx, args[1])
		if err != nil {
			return errReply(err)
		}
		return boolReply(resp.Found)
	}
	results, err := c.multiGet(ctx, args[1:])
	if err != nil {
		return errReply(err)
	}
	var n int64
	for _, r := range results {
		if r.Found {
			n++
		}
	}
	return intReply(n)
}

func cmdType(ctx context.Context, c *conn, args [][]byte) reply {
	resp, err := c.get(ctx, args[1])
	if err != nil {
		return errReply(err)
	}
	if resp.Found {
		return simpleReply("string")
	}
	return simpleReply("none")
}

// cmdExpire is EXPIRE, PEXPIRE, EXPIREAT and PEXPIREAT with NX, XX, GT
// or LT: one Mutate, so the condition is checked where the change
// applies.
func cmdExpire(ctx context.Context, c *conn, args [][]byte) reply {
	name := strings.ToLower(string(args[0]))
	n, err := strconv.ParseInt(string(args[2]), 10, 64)
	if err != nil {
		return errorReply(errNotInteger)
	}
	unit := time.Second
	if name[0] == 'p' {
		unit = time.Millisecond
	}
	const maxMillis = 1 << 53 // beyond it, Redis too refuses the time
	if n > maxMillis/int64(unit/time.Millisecond) || n < -maxMillis/int64(unit/time.Millisecond) {
		return errorf("ERR invalid expire time in '%s' command", name)
	}
	change := &cachev1.ExpiryChange{}
	if strings.HasSuffix(name, "at") {
		at := time.Unix(0, n*int64(unit))
		if n <= 0 {
			at = time.Unix(0, 1)
		}
		change.Action, change.At = cachev1.ExpiryChange_ACTION_AT, timestamppb.New(at)
	} else {
		change.Action, change.After = cachev1.ExpiryChange_ACTION_AFTER, durationpb.New(time.Duration(n)*unit)
	}
	var nx, xx, gt, lt bool
	for _, a := range args[3:] {
		switch strings.ToLower(string(a)) {
		case "nx":
			nx = true
		case "xx":
			xx = true
		case "gt":
			gt = true
		case "lt":
			lt = true
		default:
			return errorf("ERR Unsupported option %s", a)
		}
	}
	switch {
	case nx && (xx || gt || lt):
		return errorReply("ERR NX and XX, GT or LT options at the same time are not compatible")
	case gt && lt:
		return errorReply("ERR GT and LT options at the same time are not compatible")
	case nx:
		change.Only = cachev1.ExpiryChange_ONLY_NO_EXPIRY
	case gt:
		// GT refuses a key without expiry already, so XX GT is GT.
		change.Only = cachev1.ExpiryChange_ONLY_LATER
	case lt:
		change.Only = cachev1.ExpiryChange_ONLY_EARLIER
	case xx:
		change.Only = cachev1.ExpiryChange_ONLY_HAS_EXPIRY
	}
	if xx && lt {
		change.Only = cachev1.ExpiryChange_ONLY_EARLIER_HAS_EXPIRY
	}
	resp, err := c.mutate(ctx, &cachev1.MutateRequest{Key: args[1], Expiry: change})
	if err != nil {
		return errReply(err)
	}
	return boolReply(resp.Applied)
}

// cmdTTL is TTL and PTTL: -2 for a missing key, -1 for one without expiry.
func cmdTTL(ctx context.Context, c *conn, args [][]byte) reply {
	resp, err := c.get(ctx, args[1])
	if err != nil {
		return errReply(err)
	}
	switch {
	case !resp.Found:
		return intReply(-2)
	case resp.Entry.ExpiresAt == nil:
		return intReply(-1)
	}
	left := max(time.Until(resp.Entry.ExpiresAt.AsTime()), 0)
	if args[0][0] == 'p' || args[0][0] == 'P' {
		return intReply(left.Milliseconds())
	}
	return intReply(int64((left + 500*time.Millisecond) / time.Second))
}

func cmdPersist(ctx context.Context, c *conn, args [][]byte) reply {
	resp, err := c.mutate(ctx, &cachev1.MutateRequest{Key: args[1],
		Expiry: &cachev1.ExpiryChange{Action: cachev1.ExpiryChange_ACTION_PERSIST, Only: cachev1.ExpiryChange_ONLY_HAS_EXPIRY}})
	if err != nil {
		return errReply(err)
	}
	return boolReply(resp.Applied)
}

// cmdMSetNX sets every key only if none exists, all or none. elcache
// commits one partition atomically, so the keys must share a partition.
func cmdMSetNX(ctx context.Context, c *conn, args [][]byte) reply {
	if len(args)%2 != 1 {
		return errorReply("ERR wrong number of arguments for 'msetnx' command")
	}
	part := c.s.cfg.Partition(args[1])
	for i := 3; i < len(args); i += 2 {
		if c.s.cfg.Partition(args[i]) != part {
			return errorf("ERR MSETNX is atomic only for keys of one partition, and %q and %q are in different partitions (elcache commits one partition at a time); set them with SETNX one by one", args[1], args[i])
		}
	}
	if len(args) > 2*batchLimit+1 {
		return errorf("ERR MSETNX takes at most %d keys", batchLimit)
	}
	entries := make([]*cachev1.KeyValue, 0, len(args)/2)
	for i := 1; i < len(args); i += 2 {
		entries = append(entries, &cachev1.KeyValue{Key: args[i], Value: args[i+1]})
	}
	req := &cachev1.MultiPutRequest{Entries: entries, Options: c.writeOptions(0), OnlyIfAbsent: true}
	id, err := uuid.NewV7()
	if err != nil {
		return errReply(err)
	}
	req.Options.IdempotencyKey = id.String()
	resp, err := call(ctx, true, func(ctx context.Context) (*cachev1.MultiPutResponse, error) { return c.s.cfg.Cache.MultiPut(ctx, req) })
	if err != nil {
		return errReply(err)
	}
	stored := len(resp.Results) > 0
	for _, r := range resp.Results {
		c.learnWrite(r.Meta)
		stored = stored && r.Version != 0
	}
	return boolReply(stored)
}

// cmdScan is SCAN cursor [MATCH pattern] [COUNT n] [TYPE t] across the
// cluster. The node's cursor is a position in (partition, key) order; the
// listener hands out a number for it (cursors).
func cmdScan(ctx context.Context, c *conn, args [][]byte) reply {
	id, err := strconv.ParseUint(string(args[1]), 10, 64)
	if err != nil {
		return errorReply("ERR invalid cursor")
	}
	var cursor []byte
	if id != 0 {
		var ok bool
		if cursor, ok = c.s.cursors.get(id); !ok {
			return errorReply("ERR invalid cursor: it is unknown to this node or too old; SCAN again from 0")
		}
	}
	pattern, count, typ := "*", 10, ""
	for i := 2; i < len(args); i += 2 {
		if i+1 >= len(args) {
			return errorReply(errSyntax)
		}
		switch strings.ToLower(string(args[i])) {
		case "match":
			pattern = string(args[i+1])
		case "count":
			n, err := strconv.Atoi(string(args[i+1]))
			if err != nil {
				return errorReply(errNotInteger)
			}
			if n < 1 {
				return errorReply(errSyntax)
			}
			count = min(n, batchLimit)
		case "type":
			typ = strings.ToLower(string(args[i+1]))
		default:
			return errorReply(errSyntax)
		}
	}
	keys, next, err := c.scanPage(ctx, cursor, pattern, count)
	if err != nil {
		return errReply(err)
	}
	if typ != "" && typ != "string" {
		keys = nil
	}
	var nextID uint64
	if len(next) > 0 {
		nextID = c.s.cursors.put(next)
	}
	return funcReply(func(w *resp.Writer) {
		w.Array(2)
		w.BulkString(strconv.FormatUint(nextID, 10))
		w.Array(len(keys))
		for _, k := range keys {
			w.Bulk(k)
		}
	})
}

// scanPage reads one page of keys matching pattern from cursor.
func (c *conn) scanPage(ctx context.Context, cursor []byte, pattern string, count int) (keys [][]byte, next []byte, err error) {
	req := &cachev1.ScanRequest{Cursor: cursor, Prefix: []byte(globPrefix(pattern)), PageSize: uint32(count), KeysOnly: true, Options: c.readOptions()}
	resp, err := call(ctx, true, func(ctx context.Context) (*cachev1.ScanResponse, error) { return c.s.cfg.Cache.Scan(ctx, req) })
	if err != nil {
		return nil, nil, err
	}
	for _, e := range resp.Entries {
		if pattern == "*" || globMatch(pattern, e.Key) {
			keys = append(keys, e.Key)
		}
	}
	return keys, resp.NextCursor, nil
}

// maxKeysReply bounds KEYS: beyond it the client is told to SCAN.
const maxKeysReply = 1_000_000

// cmdKeys is KEYS pattern: a full scan of the keyspace.
func cmdKeys(ctx context.Context, c *conn, args [][]byte) reply {
	pattern := string(args[1])
	var all [][]byte
	var cursor []byte
	for {
		keys, next, err := c.scanPage(ctx, cursor, pattern, batchLimit)
		if err != nil {
			return errReply(err)
		}
		all = append(all, keys...)
		if len(all) > maxKeysReply {
			return errorf("ERR KEYS would return more than %d keys; use SCAN", maxKeysReply)
		}
		if len(next) == 0 {
			break
		}
		cursor = next
	}
	return funcReply(func(w *resp.Writer) {
		w.Array(len(all))
		for _, k := range all {
			w.Bulk(k)
		}
	})
}

// flushTimeout bounds a FLUSHDB or FLUSHALL.
const flushTimeout = 10 * time.Minute

// cmdFlush is FLUSHDB and FLUSHALL [ASYNC|SYNC]: every key is deleted,
// page by page (not atomically: writes during the flush may survive it).
// It runs for up to flushTimeout instead of the command's timeout: a large
// keyspace takes longer than Config.Timeout to delete key by key.
func cmdFlush(_ context.Context, c *conn, args [][]byte) reply {
	if len(args) > 2 {
		return errorReply(errSyntax)
	}
	if len(args) == 2 {
		switch strings.ToLower(string(args[1])) {
		case "sync", "async":
		default:
			return errorReply(errSyntax)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), flushTimeout)
	defer cancel()
	var cursor []byte
	for {
		keys, next, err := c.scanPage(ctx, cursor, "*", batchLimit)
		if err != nil {
			return errReply(err)
		}
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(32)
		for _, k := range keys {
			g.Go(func() error { _, err := c.del(gctx, k); return err })
		}
		if err := g.Wait(); err != nil {
			return errReply(err)
		}
		if len(next) == 0 {
			return okReply
		}
		cursor = next
	}
}

// cursors maps the numbers SCAN hands out to the node's cursors. Numbers
// are node-wide, so that any connection to this node may continue a
// scan; the oldest are forgotten beyond maxCursors.
type cursors struct {
	mu    sync.Mutex
	next  uint64
	byID  map[uint64][]byte
	order []uint64
}

const maxCursors = 1 << 16

func newCursors() *cursors {
	return &cursors{next: uint64(time.Now().UnixNano()&0xffffff) + 1, byID: map[uint64][]byte{}}
}

func (c *cursors) put(cursor []byte) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	id := c.next
	c.next++
	c.byID[id] = cursor
	c.order = append(c.order, id)
	if len(c.order) > maxCursors {
		delete(c.byID, c.order[0])
		c.order = c.order[1:]
	}
	return id
}

func (c *cursors) get(id uint64) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cur, ok := c.byID[id]
	return cur, ok
}

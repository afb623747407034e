package respserver

import (
	"context"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/elcache/elcache/internal/resp"
	cachev1 "github.com/elcache/elcache/proto/cache/v1"
)

// Redis's error texts.
const (
	errSyntax     = "ERR syntax error"
	errNotInteger = "ERR value is not an integer or out of range"
	errNotFloat   = "ERR value is not a valid float"
	errTooLarge   = "ERR string exceeds maximum allowed size (the node's value size limit)"
)

// get reads one key at the connection's level.
func (c *conn) get(ctx context.Context, key []byte) (*cachev1.GetResponse, error) {
	req := &cachev1.GetRequest{Key: key, Options: c.readOptions()}
	resp, err := call(ctx, true, func(ctx context.Context) (*cachev1.GetResponse, error) { return c.s.cfg.Cache.Get(ctx, req) })
	if err == nil {
		c.learnRead(resp.Meta)
	}
	return resp, err
}

// mutate runs a Mutate of one key with the connection's write mode.
func (c *conn) mutate(ctx context.Context, req *cachev1.MutateRequest) (*cachev1.MutateResponse, error) {
	req.Options = c.writeOptions(0)
	// The idempotency key makes a second run after an unknown outcome
	// answer the first run's result instead of applying it twice.
	id, err := uuid.NewV7()
	if err != nil {
		return nil, err
	}
	req.Options.IdempotencyKey = id.String()
	resp, err := call(ctx, true, func(ctx context.Context) (*cachev1.MutateResponse, error) { return c.s.cfg.Cache.Mutate(ctx, req) })
	if err == nil {
		c.learnWrite(resp.Meta)
	}
	return resp, err
}

// put writes one key.
func (c *conn) put(ctx context.Context, key, value []byte, ttl time.Duration) error {
	req := &cachev1.PutRequest{Key: key, Value: value, Options: c.writeOptions(ttl)}
	resp, err := call(ctx, true, func(ctx context.Context) (*cachev1.PutResponse, error) { return c.s.cfg.Cache.Put(ctx, req) })
	if err == nil {
		c.learnWrite(resp.Meta)
	}
	return err
}

// del deletes one key and reports whether it existed.
func (c *conn) del(ctx context.Context, key []byte) (bool, error) {
	req := &cachev1.DeleteRequest{Key: key, Options: c.writeOptions(0)}
	resp, err := call(ctx, true, func(ctx context.Context) (*cachev1.DeleteResponse, error) { return c.s.cfg.Cache.Delete(ctx, req) })
	if err != nil {
		return false, err
	}
	c.learnWrite(resp.Meta)
	return resp.Existed, nil
}

// localGet is GET's fast path (LocalGetter); ok false: take c.get.
func (c *conn) localGet(key []byte) (value []byte, found, ok bool) {
	if c.s.local == nil {
		return nil, false, false
	}
	c.mu.Lock()
	level := c.level
	c.mu.Unlock()
	if level != cachev1.Consistency_CONSISTENCY_EVENTUAL {
		return nil, false, false
	}
	value, found, meta, ok := c.s.local.LocalGet(key, level)
	if ok {
		c.learnRead(meta)
	}
	return value, found, ok
}

func cmdGet(ctx context.Context, c *conn, args [][]byte) reply {
	if value, found, ok := c.localGet(args[1]); ok {
		if !found {
			return nullReply()
		}
		return bulkReply(value)
	}
	resp, err := c.get(ctx, args[1])
	if err != nil {
		return errReply(err)
	}
	if !resp.Found {
		return nullReply()
	}
	return bulkReply(resp.Entry.Value)
}

// expiryArg is a parsed EX/PX/EXAT/PXAT/KEEPTTL/PERSIST option.
type expiryArg struct {
	set     bool
	keep    bool
	persist bool
	after   time.Duration // EX, PX
	at      time.Time     // EXAT, PXAT (non-zero)
}

// parseExpiry parses the option at args[i] (EX s, PX ms, EXAT s, PXAT ms)
// for command name; it returns the arguments it used (0: not an expiry).
func parseExpiry(name string, args [][]byte, i int, e *expiryArg) (int, reply) {
	opt := strings.ToLower(string(args[i]))
	switch opt {
	case "ex", "px", "exat", "pxat":
	default:
		return 0, reply{}
	}
	if e.set || i+1 >= len(args) {
		return 0, errorReply(errSyntax)
	}
	n, err := strconv.ParseInt(string(args[i+1]), 10, 64)
	if err != nil {
		return 0, errorReply(errNotInteger)
	}
	unit := time.Second
	if opt[0] == 'p' {
		unit = time.Millisecond
	}
	if n <= 0 || n > math.MaxInt64/int64(unit) {
		return 0, errorf("ERR invalid expire time in '%s' command", name)
	}
	e.set = true
	if strings.HasSuffix(opt, "at") {
		e.at = time.Unix(0, n*int64(unit))
	} else {
		e.after = time.Duration(n) * unit
	}
	return 2, reply{}
}

// change is the ExpiryChange for e; nil when e sets nothing.
func (e expiryArg) change() *cachev1.ExpiryChange {
	switch {
	case e.keep:
		return &cachev1.ExpiryChange{Action: cachev1.ExpiryChange_ACTION_KEEP}
	case e.persist:
		return &cachev1.ExpiryChange{Action: cachev1.ExpiryChange_ACTION_PERSIST}
	case !e.at.IsZero():
		return &cachev1.ExpiryChange{Action: cachev1.ExpiryChange_ACTION_AT, At: timestamppb.New(e.at)}
	case e.after > 0:
		return &cachev1.ExpiryChange{Action: cachev1.ExpiryChange_ACTION_AFTER, After: durationpb.New(e.after)}
	}
	return nil
}

// cmdSet is SET key value [NX|XX] [GET] [EX s|PX ms|EXAT s|PXAT ms|KEEPTTL].
// A plain SET (with a relative expiry at most) is a Put, in any write
// mode; with a condition, GET, KEEPTTL or an absolute expiry it is a
// Mutate.
func cmdSet(ctx context.Context, c *conn, args [][]byte) reply {
	var e expiryArg
	var nx, xx, get bool
	for i := 3; i < len(args); i++ {
		used, bad := parseExpiry("set", args, i, &e)
		if bad.kind != kindNone {
			return bad
		}
		if used > 0 {
			i += used - 1
			continue
		}
		switch strings.ToLower(string(args[i])) {
		case "nx":
			nx = true
		case "xx":
			xx = true
		case "get":
			get = true
		case "keepttl":
			if e.set {
				return errorReply(errSyntax)
			}
			e.set, e.keep = true, true
		default:
			return errorReply(errSyntax)
		}
	}
	if nx && xx {
		return errorReply(errSyntax)
	}
	if !nx && !xx && !get && !e.keep && e.at.IsZero() {
		if err := c.put(ctx, args[1], args[2], e.after); err != nil {
			return errReply(err)
		}
		return okReply
	}
	req := &cachev1.MutateRequest{Key: args[1], Change: &cachev1.MutateRequest_Set{Set: args[2]}, Expiry: e.change(), ReturnPrevious: get}
	switch {
	case nx:
		req.Condition = cachev1.MutateRequest_CONDITION_ABSENT
	case xx:
		req.Condition = cachev1.MutateRequest_CONDITION_EXISTS
	}
	resp, err := c.mutate(ctx, req)
	if err != nil {
		return errReply(err)
	}
	switch {
	case get && resp.Existed:
		return bulkReply(resp.Previous)
	case get, !resp.Applied:
		return nullReply()
	}
	return okReply
}

func cmdSetNX(ctx context.Context, c *conn, args [][]byte) reply {
	resp, err := c.mutate(ctx, &cachev1.MutateRequest{Key: args[1], Condition: cachev1.MutateRequest_CONDITION_ABSENT,
		Change: &cachev1.MutateRequest_Set{Set: args[2]}})
	if err != nil {
		return errReply(err)
	}
	return boolReply(resp.Applied)
}

func cmdSetEX(ctx context.Context, c *conn, args [][]byte) reply {
	return setWithTTL(ctx, c, "setex", args, time.Second)
}

func cmdPSetEX(ctx context.Context, c *conn, args [][]byte) reply {
	return setWithTTL(ctx, c, "psetex", args, time.Millisecond)
}

func setWithTTL(ctx context.Context, c *conn, name string, args [][]byte, unit time.Duration) reply {
	n, err := strconv.ParseInt(string(args[2]), 10, 64)
	if err != nil {
		return errorReply(errNotInteger)
	}
	if n <= 0 || n > math.MaxInt64/int64(unit) {
		return errorf("ERR invalid expire time in '%s' command", name)
	}
	if err := c.put(ctx, args[1], args[3], time.Duration(n)*unit); err != nil {
		return errReply(err)
	}
	return okReply
}

func cmdGetSet(ctx context.Context, c *conn, args [][]byte) reply {
	resp, err := c.mutate(ctx, &cachev1.MutateRequest{Key: args[1], Change: &cachev1.MutateRequest_Set{Set: args[2]}, ReturnPrevious: true})
	return previousReply(resp, err)
}

func cmdGetDel(ctx context.Context, c *conn, args [][]byte) reply {
	resp, err := c.mutate(ctx, &cachev1.MutateRequest{Key: args[1], Change: &cachev1.MutateRequest_Delete{Delete: true}, ReturnPrevious: true})
	return previousReply(resp, err)
}

func previousReply(resp *cachev1.MutateResponse, err error) reply {
	if err != nil {
		return errReply(err)
	}
	if !resp.Existed {
		return nullReply()
	}
	return bulkReply(resp.Previous)
}

// cmdGetEx is GETEX key [EX s|PX ms|EXAT s|PXAT ms|PERSIST].
func cmdGetEx(ctx context.Context, c *conn, args [][]byte) reply {
	var e expiryArg
	for i := 2; i < len(args); i++ {
		used, bad := parseExpiry("getex", args, i, &e)
		if bad.kind != kindNone {
			return bad
		}
		if used > 0 {
			i += used - 1
			continue
		}
		if strings.ToLower(string(args[i])) != "persist" || e.set {
			return errorReply(errSyntax)
		}
		e.set, e.persist = true, true
	}
	if !e.set {
		return cmdGet(ctx, c, args[:2])
	}
	resp, err := c.mutate(ctx, &cachev1.MutateRequest{Key: args[1], Expiry: e.change(), ReturnPrevious: true})
	return previousReply(resp, err)
}

// multiGet reads keys at the connection's level, in MultiGets of at most
// batchLimit keys, and returns their results in order.
func (c *conn) multiGet(ctx context.Context, keys [][]byte) ([]*cachev1.GetResponse, error) {
	out := make([]*cachev1.GetResponse, 0, len(keys))
	for start := 0; start < len(keys); start += batchLimit {
		req := &cachev1.MultiGetRequest{Keys: keys[start:min(start+batchLimit, len(keys))], Options: c.readOptions()}
		resp, err := call(ctx, true, func(ctx context.Context) (*cachev1.MultiGetResponse, error) { return c.s.cfg.Cache.MultiGet(ctx, req) })
		if err != nil {
			return nil, err
		}
		for _, r := range resp.Results {
			c.learnRead(r.Meta)
		}
		out = append(out, resp.Results...)
	}
	return out, nil
}

func cmdMGet(ctx context.Context, c *conn, args [][]byte) reply {
	results, err := c.multiGet(ctx, args[1:])
	if err != nil {
		return errReply(err)
	}
	values := make([][]byte, len(results))
	found := make([]bool, len(results))
	for i, r := range results {
		if r.Found {
			values[i], found[i] = r.Entry.Value, true
		}
	}
	return funcReply(func(w *resp.Writer) {
		w.Array(len(values))
		for i, v := range values {
			if found[i] {
				w.Bulk(v)
			} else {
				w.Null()
			}
		}
	})
}

// batchLimit is the most keys of one MultiGet or MultiPut (the node's
// default batch limit).
const batchLimit = 1000

func cmdMSet(ctx context.Context, c *conn, args [][]byte) reply {
	if len(args)%2 != 1 {
		return errorf("ERR wrong number of arguments for '%s' command", strings.ToLower(string(args[0])))
	}
	pairs := args[1:]
	for start := 0; start < len(pairs); start += 2 * batchLimit {
		chunk := pairs[start:min(start+2*batchLimit, len(pairs))]
		entries := make([]*cachev1.KeyValue, 0, len(chunk)/2)
		for i := 0; i < len(chunk); i += 2 {
			entries = append(entries, &cachev1.KeyValue{Key: chunk[i], Value: chunk[i+1]})
		}
		req := &cachev1.MultiPutRequest{Entries: entries, Options: c.writeOptions(0)}
		resp, err := call(ctx, true, func(ctx context.Context) (*cachev1.MultiPutResponse, error) { return c.s.cfg.Cache.MultiPut(ctx, req) })
		if err != nil {
			return errReply(err)
		}
		for _, r := range resp.Results {
			c.learnWrite(r.Meta)
		}
	}
	return okReply
}

// incr is INCRBY key by.
func incr(ctx context.Context, c *conn, key []byte, by int64) reply {
	resp, err := c.mutate(ctx, &cachev1.MutateRequest{Key: key, Change: &cachev1.MutateRequest_IncrBy{IncrBy: by}})
	if err != nil {
		return errReply(err)
	}
	switch resp.Refused {
	case cachev1.MutateResponse_REFUSAL_NONE:
	case cachev1.MutateResponse_REFUSAL_OVERFLOW:
		return errorReply("ERR increment or decrement would overflow")
	default:
		return errorReply(errNotInteger)
	}
	n, err := strconv.ParseInt(string(resp.Value), 10, 64)
	if err != nil {
		return errorf("ERR the node answered a non-integer %q", resp.Value)
	}
	return intReply(n)
}

func cmdIncr(ctx context.Context, c *conn, args [][]byte) reply { return incr(ctx, c, args[1], 1) }
func cmdDecr(ctx context.Context, c *conn, args [][]byte) reply { return incr(ctx, c, args[1], -1) }

func cmdIncrBy(ctx context.Context, c *conn, args [][]byte) reply {
	n, err := strconv.ParseInt(string(args[2]), 10, 64)
	if err != nil {
		return errorReply(errNotInteger)
	}
	return incr(ctx, c, args[1], n)
}

func cmdDecrBy(ctx context.Context, c *conn, args [][]byte) reply {
	n, err := strconv.ParseInt(string(args[2]), 10, 64)
	if err != nil {
		return errorReply(errNotInteger)
	}
	if n == math.MinInt64 {
		return errorReply("ERR decrement would overflow")
	}
	return incr(ctx, c, args[1], -n)
}

func cmdIncrByFloat(ctx context.Context, c *conn, args [][]byte) reply {
	s := string(args[2])
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || strings.TrimSpace(s) != s || math.IsNaN(f) || math.IsInf(f, 0) {
		return errorReply(errNotFloat)
	}
	resp, err := c.mutate(ctx, &cachev1.MutateRequest{Key: args[1], Change: &cachev1.MutateRequest_IncrByFloat{IncrByFloat: f}})
	if err != nil {
		return errReply(err)
	}
	switch resp.Refused {
	case cachev1.MutateResponse_REFUSAL_NONE:
		return bulkReply(resp.Value)
	case cachev1.MutateResponse_REFUSAL_OVERFLOW:
		return errorReply("ERR increment would produce NaN or Infinity")
	}
	return errorReply(errNotFloat)
}

func cmdAppend(ctx context.Context, c *conn, args [][]byte) reply {
	resp, err := c.mutate(ctx, &cachev1.MutateRequest{Key: args[1], Change: &cachev1.MutateRequest_Append{Append: args[2]}})
	return lengthReply(resp, err)
}

func lengthReply(resp *cachev1.MutateResponse, err error) reply {
	if err != nil {
		return errReply(err)
	}
	if resp.Refused == cachev1.MutateResponse_REFUSAL_TOO_LARGE {
		return errorReply(errTooLarge)
	}
	return intReply(int64(resp.Length))
}

func cmdStrlen(ctx context.Context, c *conn, args [][]byte) reply {
	resp, err := c.get(ctx, args[1])
	if err != nil {
		return errReply(err)
	}
	return intReply(int64(len(resp.GetEntry().GetValue())))
}

// cmdGetRange is GETRANGE key start end: inclusive, negative indexes count
// from the end.
func cmdGetRange(ctx context.Context, c *conn, args [][]byte) reply {
	start, err1 := strconv.ParseInt(string(args[2]), 10, 64)
	end, err2 := strconv.ParseInt(string(args[3]), 10, 64)
	if err1 != nil || err2 != nil {
		return errorReply(errNotInteger)
	}
	resp, err := c.get(ctx, args[1])
	if err != nil {
		return errReply(err)
	}
	return bulkReply(substr(resp.GetEntry().GetValue(), start, end))
}

// substr is Redis's GETRANGE of v.
func substr(v []byte, start, end int64) []byte {
	n := int64(len(v))
	if start < 0 && end < 0 && start > end {
		return []byte{}
	}
	if start < 0 {
		start = max(n+start, 0)
	}
	if end < 0 {
		end = max(n+end, 0)
	}
	end = min(end, n-1)
	if n == 0 || start > end {
		return []byte{}
	}
	return v[start : end+1]
}

func cmdSetRange(ctx context.Context, c *conn, args [][]byte) reply {
	off, err := strconv.ParseInt(string(args[2]), 10, 64)
	if err != nil {
		return errorReply(errNotInteger)
	}
	if off < 0 {
		return errorReply("ERR offset is out of range")
	}
	resp, err := c.mutate(ctx, &cachev1.MutateRequest{Key: args[1],
		Change: &cachev1.MutateRequest_SetRange{SetRange: &cachev1.SetRange{Offset: uint64(off), Value: args[3]}}})
	if st := status.Convert(err); st.Code() == codes.InvalidArgument && strings.Contains(st.Message(), "set_range: offset") {
		// The node refuses a range past the value limit before it
		// proposes; Redis says it as APPEND does.
		return errorReply(errTooLarge)
	}
	return lengthReply(resp, err)
}

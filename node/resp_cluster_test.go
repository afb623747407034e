package node_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/elcache/elcache/node"
	cachev1 "github.com/elcache/elcache/proto/cache/v1"
)

// respAtomic: concurrent read-modify-write commands on one key, through
// the listeners of all three nodes, lose no update: each is one Raft
// command that decides against the key as it applies.
//
// A command answered TRYAGAIN (its partition's leader lost its lease
// while committing) may or may not have run: it is sent again, and the
// final count may exceed the number of commands by the number of such
// answers. On a calm cluster there are none and the count is exact.
func respAtomic(t *testing.T, e respEnv) {
	const workers, each = 20, 200
	clients := []*redis.Client{e.client(t, 0), e.client(t, 1), e.client(t, 2)}
	// hammer runs op workers*each times, from workers goroutines spread over
	// the nodes, and returns the integer replies and the number of
	// TRYAGAIN answers.
	hammer := func(t *testing.T, op func(rdb *redis.Client) (int64, error)) (replies []int64, unsure int) {
		t.Helper()
		got := make([][]int64, workers)
		retried := make([]int, workers)
		errs := make([]error, workers)
		together(workers, func(w int) {
			rdb := clients[w%len(clients)]
			for len(got[w]) < each {
				n, err := op(rdb)
				switch {
				case isTryAgain(err):
					retried[w]++
				case err != nil:
					errs[w] = err
					return
				default:
					got[w] = append(got[w], n)
				}
			}
		})
		for w := range workers {
			if errs[w] != nil {
				t.Fatalf("worker %d (through n%d): %v", w, w%len(clients), errs[w])
			}
			replies = append(replies, got[w]...)
			unsure += retried[w]
		}
		if unsure > 0 {
			t.Logf("%d commands answered TRYAGAIN and were sent again", unsure)
		}
		return replies, unsure
	}
	// exact checks the replies are distinct and at most final, and that
	// final is the number of commands (plus the unsure ones, at most).
	exact := func(t *testing.T, what string, replies []int64, unsure int, final int64) {
		t.Helper()
		if final < workers*each || final > int64(workers*each+unsure) {
			t.Fatalf("%s: final %d after %d commands (%d unsure)", what, final, workers*each, unsure)
		}
		seen := make(map[int64]bool, len(replies))
		for _, n := range replies {
			if n < 1 || n > final || seen[n] {
				t.Fatalf("%s answered %d twice, or out of 1..%d", what, n, final)
			}
			seen[n] = true
		}
	}
	counters := []struct {
		name string
		// op changes the key; final reads its count.
		op, final func(ctx context.Context, rdb *redis.Client, k string) (int64, error)
	}{
		{"INCR",
			func(ctx context.Context, rdb *redis.Client, k string) (int64, error) {
				return rdb.Incr(ctx, k).Result()
			},
			func(ctx context.Context, rdb *redis.Client, k string) (int64, error) { return rdb.Get(ctx, k).Int64() }},
		{"APPEND",
			func(ctx context.Context, rdb *redis.Client, k string) (int64, error) {
				return rdb.Append(ctx, k, "x").Result()
			},
			func(ctx context.Context, rdb *redis.Client, k string) (int64, error) {
				return rdb.StrLen(ctx, k).Result()
			}},
	}
	for _, tc := range counters {
		t.Run(tc.name, func(t *testing.T) {
			ctx, k := respCtx(t), e.key(t, "k")
			replies, unsure := hammer(t, func(rdb *redis.Client) (int64, error) { return tc.op(ctx, rdb, k) })
			for i, rdb := range clients {
				got, err := tc.final(ctx, rdb, k)
				if err != nil {
					t.Fatalf("%s's count through n%d: %v", tc.name, i, err)
				}
				exact(t, tc.name, replies, unsure, got)
			}
		})
	}
	t.Run("SETNX", func(t *testing.T) {
		ctx := respCtx(t)
		for round := range 10 {
			k := e.key(t, strconv.Itoa(round))
			won := make([]bool, workers)
			unsure := make([]bool, workers) // answered TRYAGAIN at least once
			errs := make([]error, workers)
			together(workers, func(w int) {
				for {
					won[w], errs[w] = clients[w%len(clients)].SetNX(ctx, k, w, 0).Result()
					if !isTryAgain(errs[w]) {
						return
					}
					unsure[w] = true
				}
			})
			winner := -1
			for w := range workers {
				switch {
				case errs[w] != nil:
					t.Fatalf("SETNX of worker %d: %v", w, errs[w])
				case won[w] && winner >= 0:
					t.Fatalf("round %d: workers %d and %d both won SETNX", round, winner, w)
				case won[w]:
					winner = w
				}
			}
			got, err := clients[round%3].Get(ctx, k).Int()
			switch {
			case err != nil:
				t.Fatalf("round %d: GET: %v", round, err)
			case winner >= 0 && got != winner:
				t.Fatalf("round %d: GET = %d; want the winner %d", round, got, winner)
			case winner < 0 && (got < 0 || got >= workers || !unsure[got]):
				t.Fatalf("round %d: nobody won SETNX, and GET = %d, not a worker answered TRYAGAIN", round, got)
			}
		}
	})
}

// together runs f(0) to f(n-1) at once, and waits for them.
func together(n int, f func(w int)) {
	var wg sync.WaitGroup
	for w := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(w)
		}()
	}
	wg.Wait()
}

// respPipeline: pipelined commands get every reply, in order, and
// commands on one key run in the order sent.
func respPipeline(t *testing.T, e respEnv) {
	rdb := e.client(t, 1)
	// exec runs a pipeline; an error other than a TRYAGAIN reply fails the
	// test.
	exec := func(t *testing.T, pipe redis.Pipeliner) error {
		t.Helper()
		cmds, err := pipe.Exec(respCtx(t))
		for _, c := range cmds {
			if isTryAgain(c.Err()) {
				return fmt.Errorf("%v: %w", c.Args(), c.Err())
			}
		}
		var rerr redis.Error
		if err != nil && !errors.As(err, &rerr) {
			t.Fatalf("pipeline: %v", err)
		}
		return nil
	}
	t.Run("mixed", func(t *testing.T) {
		ctx := respCtx(t)
		retryTryAgain(t, func(attempt int) error {
			key := func(name string) string { return e.key(t, fmt.Sprintf("%s#%d", name, attempt)) }
			pipe := rdb.Pipeline()
			cmds := make([]redis.Cmder, 1000)
			want := make([]any, len(cmds))
			for j := range cmds {
				k := key(strconv.Itoa(j / 3))
				switch j % 3 {
				case 0:
					cmds[j], want[j] = pipe.Set(ctx, k, "v"+k, 0), "OK"
				case 1:
					cmds[j], want[j] = pipe.Get(ctx, k), "v"+k
				case 2:
					cmds[j], want[j] = pipe.Incr(ctx, key("c")), int64(j/3+1)
				}
			}
			if err := exec(t, pipe); err != nil {
				return err
			}
			for j, cmd := range cmds {
				if got := replyOf(cmd); got != want[j] {
					t.Fatalf("reply %d (%v) = %#v, want %#v", j, cmd.Args(), got, want[j])
				}
			}
			return nil
		})
	})
	t.Run("same_key", func(t *testing.T) {
		ctx := respCtx(t)
		retryTryAgain(t, func(attempt int) error {
			k, x := e.key(t, fmt.Sprintf("k#%d", attempt)), e.key(t, fmt.Sprintf("x#%d", attempt))
			pipe := rdb.Pipeline()
			sets := []*redis.StatusCmd{pipe.Set(ctx, k, "1", 0), pipe.Set(ctx, k, "2", 0)}
			get := pipe.Get(ctx, k)
			incrs := make([]*redis.IntCmd, 100)
			for i := range incrs {
				incrs[i] = pipe.Incr(ctx, x)
			}
			app := pipe.Append(ctx, k, "3")
			del := pipe.GetDel(ctx, k)
			gone := pipe.Exists(ctx, k)
			if err := exec(t, pipe); err != nil {
				return err
			}
			if sets[0].Val() != "OK" || sets[1].Val() != "OK" || get.Val() != "2" {
				t.Fatalf("SET 1, SET 2, GET = %q %q %q; want OK OK 2", sets[0].Val(), sets[1].Val(), get.Val())
			}
			for i, c := range incrs {
				if c.Val() != int64(i+1) {
					t.Fatalf("INCR %d of the pipeline = %d, %v", i+1, c.Val(), c.Err())
				}
			}
			if app.Val() != 2 || del.Val() != "23" || gone.Val() != 0 {
				t.Fatalf("APPEND, GETDEL, EXISTS = %d %q %d; want 2 23 0", app.Val(), del.Val(), gone.Val())
			}
			return nil
		})
	})
	t.Run("errors_in_order", func(t *testing.T) {
		ctx := respCtx(t)
		retryTryAgain(t, func(attempt int) error {
			k := e.key(t, fmt.Sprintf("k#%d", attempt))
			pipe := rdb.Pipeline()
			cmds := []redis.Cmder{
				pipe.Set(ctx, k, "a", 0),
				pipe.Incr(ctx, k),
				pipe.Do(ctx, "GET"),
				pipe.Do(ctx, "NOSUCH", k),
				pipe.Append(ctx, k, "b"),
				pipe.Get(ctx, k),
			}
			if err := exec(t, pipe); err != nil {
				return err
			}
			want := []any{"OK", "ERR value is not an integer or out of range", "ERR wrong number of arguments for 'get' command",
				"ERR unknown command 'NOSUCH', with args beginning with: '" + k + "' ", int64(2), "ab"}
			for i, c := range cmds {
				if got := replyOf(c); got != want[i] {
					t.Fatalf("reply %d (%v) = %#v, want %#v", i, c.Args(), got, want[i])
				}
			}
			return nil
		})
	})
}

// replyOf is a pipelined command's reply: its value, or its error text.
func replyOf(cmd redis.Cmder) any {
	if err := cmd.Err(); err != nil {
		return err.Error()
	}
	switch c := cmd.(type) {
	case *redis.StatusCmd:
		return c.Val()
	case *redis.StringCmd:
		return c.Val()
	case *redis.IntCmd:
		return c.Val()
	case *redis.Cmd:
		return c.Val()
	}
	return fmt.Sprintf("unexpected %T", cmd)
}

// respCrossNode: what one node's listener writes, the others' read, and
// MSET and MGET span the partitions of every node.
func respCrossNode(t *testing.T, e respEnv) {
	ctx := respCtx(t)
	clients := []*redis.Client{e.client(t, 0), e.client(t, 1), e.client(t, 2)}
	for i, w := range clients {
		k, v := e.key(t, strconv.Itoa(i)), "from n"+strconv.Itoa(i)
		idempotent(t, "SET through n"+strconv.Itoa(i), func() error { return w.Set(ctx, k, v, 0).Err() })
		for j, r := range clients {
			if got, err := r.Get(ctx, k).Result(); err != nil || got != v {
				t.Fatalf("GET through n%d of what n%d wrote = %q, %v", j, i, got, err)
			}
		}
	}
	keys := keyPerPartition(t, partitioner(t, e.c).Count(), e.key(t, "p"))
	var kv []any
	for _, k := range keys {
		kv = append(kv, k, "v-"+k)
	}
	idempotent(t, "MSET", func() error { return clients[0].MSet(ctx, kv...).Err() })
	for j, r := range clients {
		got, err := r.MGet(ctx, keys...).Result()
		if err != nil {
			t.Fatalf("MGET through n%d: %v", j, err)
		}
		for i, k := range keys {
			if got[i] != "v-"+k {
				t.Fatalf("MGET through n%d: %s = %#v", j, k, got[i])
			}
		}
		if n, err := r.Exists(ctx, keys...).Result(); err != nil || n != int64(len(keys)) {
			t.Fatalf("EXISTS through n%d = %d, %v", j, n, err)
		}
	}
}

// respSession: at the SESSION level a connection reads its own writes,
// through a node that follows the key's partition (and so may not have
// applied the write when the read comes).
func respSession(t *testing.T, e respEnv) {
	ctx := respCtx(t)
	topo, err := dial(t, e.c.Nodes[0].Addr()).Topology(ctx, &cachev1.TopologyRequest{})
	if err != nil {
		t.Fatal(err)
	}
	pr := partitioner(t, e.c)
	keys := keyPerPartition(t, pr.Count(), e.key(t, "s"))
	for _, k := range keys {
		leader := ""
		for _, p := range topo.Partitions {
			if p.Partition == pr.Partition([]byte(k)) {
				leader = p.Leader
			}
		}
		i := slices.IndexFunc(e.c.Nodes, func(n *node.Node) bool { return n.ID() != leader })
		if leader == "" || i < 0 {
			t.Fatalf("no follower of %s's partition: leader %q", k, leader)
		}
		cn := e.conn(t, i)
		if err := cn.Do(ctx, "ELCACHE.CONSISTENCY", "session").Err(); err != nil {
			t.Fatal(err)
		}
		retryTryAgain(t, func(attempt int) error {
			n := fmt.Sprintf("%s/n#%d", k, attempt)
			for round := range 5 {
				v := fmt.Sprintf("v%d#%d", round, attempt)
				if err := cn.Set(ctx, k, v, 0).Err(); isTryAgain(err) {
					return err
				} else if err != nil {
					t.Fatalf("SET %s through n%d: %v", k, i, err)
				}
				if got, err := cn.Get(ctx, k).Result(); err != nil || got != v {
					t.Fatalf("GET %s through n%d, a follower, right after SET %s = %q, %v", k, i, v, got, err)
				}
				if c, err := cn.Incr(ctx, n).Result(); isTryAgain(err) {
					return err
				} else if err != nil || c != int64(round+1) {
					t.Fatalf("INCR %s through n%d = %d, %v; want %d", n, i, c, err, round+1)
				}
				if got, err := cn.Get(ctx, n).Result(); err != nil || got != strconv.Itoa(round+1) {
					t.Fatalf("GET %s through n%d right after INCR = %q, %v; want %d", n, i, got, err, round+1)
				}
			}
			return nil
		})
		if meta := readMeta(t, cn); meta["consistency"] != "session" {
			t.Fatalf("ELCACHE.META = %v, want a session read", meta)
		}
	}
}

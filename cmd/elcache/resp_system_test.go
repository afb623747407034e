package main

// The Redis listener's system tests (issue 20): three real elcache
// processes, each with --resp-addr on a free port, driven by
// redis-benchmark (redis-tools; `make deps` installs it) and go-redis.
//
// TestRESPBenchmark proves that the listener carries a Redis load through
// any node without an error, and that INCR is atomic:
//   - redis-benchmark's SET, GET, INCR and MSET from 50 connections, one
//     request at a time and 16 pipelined, on random keys (-r), through
//     node 1's listener and then node 2's: every request is answered and
//     none with an error (redis-benchmark 7 exits at the first error
//     reply; a run must exit 0, print no "Error from server" line and
//     report every test), and the listener counted every request
//     (INFO's total_commands_processed);
//   - the random counters INCR made sum to the number of INCRs sent:
//     none lost, none applied twice, pipelined or not; every key SET and
//     MSET wrote holds one of the values the runs sent (one random value
//     each);
//   - 50 connections incrementing one key (redis-benchmark without -r)
//     through node 3, one INCR at a time and 16 pipelined, leave it at
//     exactly the number of INCRs, read linearizably through node 1.
//
// TestRESPKillNode proves that a SIGKILLed node costs the listeners of
// the survivors nothing but a short pause:
//   - 20 go-redis writers, each on one connection of its own to node 2's
//     or node 3's listener, write unique keys while node 1 (leader of
//     some partitions) is killed: their connections stay open (the same
//     CLIENT ID before and after), a failed SET answers TRYAGAIN and
//     nothing else, every writer is acknowledged again within seconds of
//     the kill, and most SETs sent are acknowledged;
//   - every acknowledged SET is then read back, with its value, through
//     both survivors' listeners at the linearizable level;
//   - redis-benchmark, run again and again against node 2 meanwhile,
//     keeps being answered: a run ends either complete or at a TRYAGAIN
//     error (it exits at its first error; those are counted and logged),
//     and its run after the failover completes.

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

const (
	// benchClients is redis-benchmark's -c, the 50.
	benchClients = 50
	// benchRandomKeys is redis-benchmark's -r: key:__rand_int__ and
	// counter:__rand_int__ become one of this many keys, key:000000012345.
	benchRandomKeys = 100000
	// benchPipeline is the pipelined runs' -P.
	benchPipeline = 16
	// singleKeyIncrs is the INCRs of one key in each of two runs
	// (redis-benchmark without -r increments the key counter:__rand_int__
	// itself).
	singleKeyIncrs = 10000
	// singleCounter is that key.
	singleCounter = "counter:__rand_int__"
)

// benchRequests is redis-benchmark's -n for SET, GET and INCR; MSET gets a
// tenth, since each of its requests writes ten keys. The issue asks for
// 100,000, but on two shared cores a 3-node cluster's listener answered
// about 1,500 unpipelined SETs per second (1,200 INCRs, 4,000 GETs, 290
// MSETs of ten keys; 3,000 SETs with -P 16), so that the test's eight
// runs would take half an hour: the default is 10,000, about a minute and
// a half. ELCACHE_RESP_BENCH_REQUESTS=100000 runs the size.
func benchRequests(t *testing.T) int {
	t.Helper()
	s := os.Getenv("ELCACHE_RESP_BENCH_REQUESTS")
	if s == "" {
		return 10000
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 10 {
		t.Fatalf("ELCACHE_RESP_BENCH_REQUESTS=%q: want a number of requests, at least 10", s)
	}
	return n
}

// steadyRaftFlags are TestRESPBenchmark's Raft timeouts, ten times
// raftFlags': its load takes both cores, and a leader that cannot reach a
// quorum within its lease (200ms by default; seen on a loaded two-core
// machine, even without -race) steps down, failing the writes it was
// committing with TRYAGAIN "leadership lost while committing log", at
// which redis-benchmark stops. That test is about the listener under
// load; TestRESPKillNode, with raftFlags, is about failover.
var steadyRaftFlags = []string{"--raft-heartbeat-timeout", "2s", "--raft-election-timeout", "2s",
	"--raft-lease-timeout", "1s", "--raft-commit-timeout", "50ms"}

// killRaftFlags are TestRESPKillNode's Raft timeouts, five times
// raftFlags'. With raftFlags its race-built nodes, under its load (20
// writers and redis-benchmark's 50 connections), lost leaderships every
// second or so with no kill at all, most often on the two survivors, whose
// quorum is both of them: each loss failed the writes in flight, ending
// redis-benchmark's run, and no run completed in the minute after the
// kill. With these, errors came with the kill only, and the writers were
// acknowledged again 0.15 to 3s after it.
var killRaftFlags = []string{"--raft-heartbeat-timeout", "1s", "--raft-election-timeout", "1s",
	"--raft-lease-timeout", "500ms", "--raft-commit-timeout", "50ms"}

// startRESPCluster starts a cluster whose nodes also listen for RESP, on
// the addresses it returns by node index, and waits until its leaderships
// have settled on their preferred nodes.
func startRESPCluster(t *testing.T, build func() (string, error), flags []string) (*cluster, []string) {
	t.Helper()
	addrs := make([]string, clusterSize)
	for i := range addrs {
		addrs[i] = freeAddr(t)
	}
	c := startClusterSpec(t, clusterSpec{partitions: clusterPartitions, flags: flags, build: build,
		nodeFlags: func(i int) []string { return []string{"--resp-addr", addrs[i]} }})
	c.waitPreferredLeaders(30 * time.Second)
	return c, addrs
}

// redisBenchmarkBin returns the redis-benchmark binary, or fails the test.
func redisBenchmarkBin(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("redis-benchmark")
	if err != nil {
		t.Fatalf("redis-benchmark is not in PATH (%v): run `make deps`, which installs redis-tools", err)
	}
	return bin
}

// benchmarkRun is what one redis-benchmark run did.
type benchmarkRun struct {
	args       []string
	start, end time.Time
	// rps is the requests per second of each test, by its CSV name: SET,
	// GET, INCR, "MSET (10 keys)".
	rps map[string]float64
	// errors are the "Error from server: ..." lines of stdout and stderr.
	errors []string
	stdout string
	stderr string
	// err is the exit status: redis-benchmark exits 1 at the first
	// error reply.
	err error
}

// redisBenchmark runs redis-benchmark against addr with --csv and args.
func redisBenchmark(ctx context.Context, bin, addr string, args ...string) benchmarkRun {
	host, port, _ := net.SplitHostPort(addr)
	args = append([]string{"-h", host, "-p", port, "--csv"}, args...)
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	r := benchmarkRun{args: args, start: time.Now(), rps: map[string]float64{}}
	r.err = cmd.Run()
	r.end = time.Now()
	r.stdout, r.stderr = stdout.String(), stderr.String()
	for _, line := range strings.Split(r.stdout+"\n"+r.stderr, "\n") {
		if strings.Contains(line, "Error from server") {
			r.errors = append(r.errors, strings.TrimSpace(line))
		}
	}
	for _, line := range strings.Split(r.stdout, "\n") {
		rec, err := csv.NewReader(strings.NewReader(line)).Read()
		if err != nil || len(rec) < 2 || rec[0] == "test" {
			continue
		}
		if rps, err := strconv.ParseFloat(rec[1], 64); err == nil {
			r.rps[rec[0]] = rps
		}
	}
	return r
}

// problem says why the run did not answer every request of tests
// without an error, or returns "".
func (r benchmarkRun) problem(tests ...string) string {
	switch {
	case len(r.errors) > 0:
		return "error replies: " + strings.Join(r.errors, "; ")
	case r.err != nil:
		// A signal here came from outside the test.
		return fmt.Sprintf("exit status: %v", r.err)
	}
	for _, name := range tests {
		if _, ok := r.rps[name]; !ok {
			return fmt.Sprintf("no result for %s", name)
		}
	}
	return ""
}

func (r benchmarkRun) String() string {
	return fmt.Sprintf("redis-benchmark %s (%v)\nstdout:\n%s\nstderr:\n%s", strings.Join(r.args, " "),
		r.end.Sub(r.start).Round(time.Millisecond), r.stdout, r.stderr)
}

// mustComplete fails the test unless run answered every request of tests
// without an error.
func mustComplete(t *testing.T, run benchmarkRun, tests ...string) {
	t.Helper()
	if p := run.problem(tests...); p != "" {
		t.Fatalf("%s\n%s", p, run)
	}
}

// respClient returns a go-redis client of addr, closed when the test ends.
// It never retries by itself (the tests count every attempt), waits for
// an answer longer than the listener's own 10s bound on a command, and,
// when linearizable, reads at that level on every connection.
func respClient(t *testing.T, addr string, linearizable bool) *redis.Client {
	t.Helper()
	opts := &redis.Options{Addr: addr, MaxRetries: -1, PoolSize: 32,
		DialTimeout: 5 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second}
	if linearizable {
		opts.OnConnect = func(ctx context.Context, cn *redis.Conn) error {
			return cn.Do(ctx, "ELCACHE.CONSISTENCY", "linearizable").Err()
		}
	}
	rdb := redis.NewClient(opts)
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

// commandsProcessed returns INFO's total_commands_processed.
func commandsProcessed(ctx context.Context, t *testing.T, rdb *redis.Client) int {
	t.Helper()
	info, err := rdb.Info(ctx, "stats").Result()
	if err != nil {
		t.Fatalf("INFO stats: %v", err)
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "total_commands_processed:"); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatalf("INFO stats: %q", line)
			}
			return n
		}
	}
	t.Fatalf("INFO stats has no total_commands_processed:\n%s", info)
	return 0
}

// roundUp rounds n up to a multiple of m.
func roundUp(n, m int) int { return (n + m - 1) / m * m }

// mgetAll reads keys in chunks of MGET and returns their values (nil
// for a missing key).
func mgetAll(ctx context.Context, rdb *redis.Client, keys []string) ([]any, error) {
	var out []any
	for start := 0; start < len(keys); start += 1000 {
		vals, err := rdb.MGet(ctx, keys[start:min(start+1000, len(keys))]...).Result()
		if err != nil {
			return nil, fmt.Errorf("MGET: %w", err)
		}
		out = append(out, vals...)
	}
	return out, nil
}

func TestRESPBenchmark(t *testing.T) {
	bin := redisBenchmarkBin(t)
	n := benchRequests(t)
	c, addrs := startRESPCluster(t, buildServerNoRace, steadyRaftFlags)
	defer c.logWarnings()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()

	randomIncrs, writingRuns := 0, 0
	for _, node := range []int{0, 1} {
		rdb := respClient(t, addrs[node], false)
		for _, pipeline := range []int{1, benchPipeline} {
			before := commandsProcessed(ctx, t, rdb)
			opts := []string{"-c", strconv.Itoa(benchClients), "-r", strconv.Itoa(benchRandomKeys), "-P", strconv.Itoa(pipeline)}
			run := redisBenchmark(ctx, bin, addrs[node], append([]string{"-t", "set,get,incr", "-n", strconv.Itoa(n)}, opts...)...)
			mustComplete(t, run, "SET", "GET", "INCR")
			mset := redisBenchmark(ctx, bin, addrs[node], append([]string{"-t", "mset", "-n", strconv.Itoa(n / 10)}, opts...)...)
			mustComplete(t, mset, "MSET (10 keys)")
			randomIncrs += n
			writingRuns += 2

			// A pipelined run sends whole batches of -P requests, up to
			// the next multiple. Besides them, the listener counts each
			// run's attempt at CONFIG GET (it answers an error, and
			// redis-benchmark goes on without the server's config) and
			// the INFO that reads the count.
			processed := commandsProcessed(ctx, t, rdb) - before
			want := 3*roundUp(n, pipeline) + roundUp(n/10, pipeline)
			if processed < want || processed > want+10 {
				t.Errorf("%s -P %d: the listener counted %d commands for the benchmark's %d requests",
					c.procs[node].name, pipeline, processed, want)
			}
			t.Logf("%s's listener, -n %d -c %d -r %d -P %d: SET %.0f, GET %.0f, INCR %.0f requests/s; MSET (10 keys) %.0f requests/s (-n %d); "+
				"%d commands counted for %d requests; %v and %v",
				c.procs[node].name, n, benchClients, benchRandomKeys, pipeline, run.rps["SET"], run.rps["GET"], run.rps["INCR"],
				mset.rps["MSET (10 keys)"], n/10, processed, want,
				run.end.Sub(run.start).Round(time.Millisecond), mset.end.Sub(mset.start).Round(time.Millisecond))
		}
	}

	// 50 connections incrementing one key through node 3, one INCR at a
	// time and then 16 pipelined (a batch splits at a key it already
	// holds, so that those run one after another).
	reader := respClient(t, addrs[0], true)
	for i, pipeline := range []int{1, benchPipeline} {
		run := redisBenchmark(ctx, bin, addrs[2], "-t", "incr", "-n", strconv.Itoa(singleKeyIncrs),
			"-c", strconv.Itoa(benchClients), "-P", strconv.Itoa(pipeline))
		mustComplete(t, run, "INCR")
		got, err := reader.Get(ctx, singleCounter).Int()
		want := (i + 1) * roundUp(singleKeyIncrs, pipeline)
		if err != nil || got != want {
			t.Errorf("%s after %d INCRs from %d connections: %d, %v", singleCounter, want, benchClients, got, err)
		}
		t.Logf("%s's listener, one key: INCR %.0f requests/s (-n %d -c %d -P %d); read through %s: %d",
			c.procs[2].name, run.rps["INCR"], singleKeyIncrs, benchClients, pipeline, c.procs[0].name, got)
	}

	// The random counters hold every INCR once, and the keys SET and MSET
	// wrote hold values they sent: each run sends one random value of 3
	// bytes (-d) in all its SETs and MSETs.
	counters, err := reader.Keys(ctx, "counter:*").Result()
	if err != nil {
		t.Fatalf("KEYS counter:*: %v", err)
	}
	counters = slices.DeleteFunc(counters, func(k string) bool { return k == singleCounter })
	vals, err := mgetAll(ctx, reader, counters)
	if err != nil {
		t.Fatal(err)
	}
	sum := 0
	for i, v := range vals {
		s, _ := v.(string)
		x, err := strconv.Atoi(s)
		if err != nil || x < 1 {
			t.Fatalf("%s holds %#v, not a count of INCRs", counters[i], v)
		}
		sum += x
	}
	if sum != randomIncrs {
		t.Errorf("the %d random counters sum to %d, want the %d INCRs sent", len(counters), sum, randomIncrs)
	}
	keys, err := reader.Keys(ctx, "key:*").Result()
	if err != nil {
		t.Fatalf("KEYS key:*: %v", err)
	}
	vals, err = mgetAll(ctx, reader, keys)
	if err != nil {
		t.Fatal(err)
	}
	distinct := map[string]int{}
	for i, v := range vals {
		s, _ := v.(string)
		if len(s) != 3 {
			t.Fatalf("%s holds %#v, not one of redis-benchmark's 3-byte values", keys[i], v)
		}
		distinct[s]++
	}
	if len(distinct) > writingRuns {
		t.Errorf("the %d keys of SET and MSET hold %d values, but %d runs sent one each: %v", len(keys), len(distinct), writingRuns, distinct)
	}
	t.Logf("read linearizably through %s: %d random counters summing to %d; %d keys of SET and MSET holding %d values %v",
		c.procs[0].name, len(counters), sum, len(keys), len(distinct), distinct)
}

// respWriter is one writer of TestRESPKillNode.
type respWriter struct {
	via    int // node index
	acked  []string
	failed int // attempts answered TRYAGAIN
	// sample is the first TRYAGAIN answer.
	sample string
	// unexpected is the error that stopped the writer.
	unexpected error
	// resumed is when the first SET sent after the kill was
	// acknowledged; ackedAfter counts those SETs.
	resumed    time.Time
	ackedAfter int
	// ids are the connection's CLIENT ID before and after the load.
	idBefore, idAfter int64
}

func respValue(key string) string { return "value-" + key }

func TestRESPKillNode(t *testing.T) {
	const (
		writers = 20
		// before is how many SETs are acknowledged before the kill,
		// after how many each writer must have acknowledged since.
		before, after = 300, 20
		// resumeBound only catches a hang: the figures are logged.
		resumeBound = 10 * time.Second
		// benchSets is the SETs of each redis-benchmark run; benchAfter
		// bounds the wait for a complete run after the writers stop.
		benchSets  = 2000
		benchAfter = time.Minute
	)
	bin := redisBenchmarkBin(t)
	c, addrs := startRESPCluster(t, nil, killRaftFlags)
	defer c.logWarnings()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	victim, survivors := 0, []int{1, 2}
	led := 0
	for _, id := range c.leaders(1) {
		if id == c.ids[victim] {
			led++
		}
	}
	if led == 0 {
		t.Fatalf("%s leads no partition: its kill would need no failover", c.procs[victim].name)
	}

	var (
		mu       sync.Mutex
		killedAt time.Time // zero until the kill
	)

	// redis-benchmark against node 2, one run after another, since it
	// exits at its first error reply; once told to stop, until a run
	// that began after the kill completes.
	var runs []benchmarkRun // the goroutine's until benchDone
	benchStop, benchDone := make(chan struct{}), make(chan struct{})
	bctx, bcancel := context.WithCancel(ctx)
	go func() {
		defer close(benchDone)
		for bctx.Err() == nil {
			r := redisBenchmark(bctx, bin, addrs[1], "-t", "set", "-n", strconv.Itoa(benchSets),
				"-c", strconv.Itoa(benchClients), "-r", strconv.Itoa(benchRandomKeys))
			runs = append(runs, r)
			mu.Lock()
			afterKill := !killedAt.IsZero() && r.start.After(killedAt)
			mu.Unlock()
			select {
			case <-benchStop:
				if afterKill && r.problem("SET") == "" {
					return
				}
			default:
			}
		}
	}()
	stopBench := sync.OnceFunc(func() {
		close(benchStop)
		select {
		case <-benchDone:
		case <-time.After(benchAfter):
		}
		bcancel()
		<-benchDone
	})
	defer stopBench()

	// The writers, each on one connection to node 2 or node 3.
	clients := map[int]*redis.Client{}
	for _, i := range survivors {
		clients[i] = respClient(t, addrs[i], false)
	}
	ws := make([]*respWriter, writers)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for g := range writers {
		w := &respWriter{via: survivors[g%len(survivors)]}
		ws[g] = w
		conn := clients[w.via].Conn()
		id, err := conn.ClientID(ctx).Result()
		if err != nil {
			t.Fatalf("CLIENT ID through %s: %v", c.procs[w.via].name, err)
		}
		w.idBefore = id
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer conn.Close()
			for i := 0; ; {
				select {
				case <-stop:
					id, err := conn.ClientID(ctx).Result()
					mu.Lock()
					w.idAfter, w.unexpected = id, err
					mu.Unlock()
					return
				default:
				}
				key := fmt.Sprintf("k-%d-%d", g, i)
				mu.Lock()
				sentAfterKill := !killedAt.IsZero()
				mu.Unlock()
				err := conn.Set(ctx, key, respValue(key), 0).Err()
				mu.Lock()
				switch {
				case err == nil:
					w.acked = append(w.acked, key)
					if sentAfterKill {
						if w.ackedAfter == 0 {
							w.resumed = time.Now()
						}
						w.ackedAfter++
					}
					i++
				case strings.HasPrefix(err.Error(), "TRYAGAIN "):
					w.failed++
					if w.sample == "" {
						w.sample = err.Error()
					}
				default:
					w.unexpected = fmt.Errorf("SET %s: %w", key, err)
				}
				mu.Unlock()
				if w.unexpected != nil {
					return
				}
				if err != nil {
					// The same key again after a pause, as a client would.
					select {
					case <-time.After(retryBackoff):
					case <-stop:
					}
				}
			}
		}()
	}
	stopWriters := sync.OnceFunc(func() {
		close(stop)
		wg.Wait()
	})
	defer stopWriters()

	// waitWriters waits until ok holds for the writers, or fails the test.
	waitWriters := func(what string, timeout time.Duration, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(timeout)
		for {
			mu.Lock()
			done := ok()
			var stopped []error
			for _, w := range ws {
				if w.unexpected != nil {
					stopped = append(stopped, w.unexpected)
				}
			}
			mu.Unlock()
			if len(stopped) > 0 {
				t.Fatalf("writers stopped on an answer other than TRYAGAIN: %v", errors.Join(stopped...))
			}
			if done {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("writers: not %s after %v", what, timeout)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	acked := func() (n int) {
		for _, w := range ws {
			n += len(w.acked)
		}
		return n
	}
	waitWriters(fmt.Sprintf("%d SETs acknowledged", before), time.Minute, func() bool { return acked() >= before })

	mu.Lock()
	killedAt = time.Now()
	ackedBefore := acked()
	mu.Unlock()
	c.procs[victim].kill()
	waitWriters(fmt.Sprintf("each %d SETs acknowledged since the kill", after), time.Minute, func() bool {
		for _, w := range ws {
			if w.ackedAfter < after {
				return false
			}
		}
		return true
	})
	stopWriters()
	stopBench()

	// The writers' connections lived through it, and a failed SET said
	// TRYAGAIN.
	want := map[string]string{}
	var resumed []time.Duration
	failed := 0
	var samples []string
	for g, w := range ws {
		if w.unexpected != nil {
			t.Fatalf("writer %d through %s: %v", g, c.procs[w.via].name, w.unexpected)
		}
		if w.idAfter != w.idBefore {
			t.Errorf("writer %d through %s: CLIENT ID %d before the kill, %d after: its connection was replaced",
				g, c.procs[w.via].name, w.idBefore, w.idAfter)
		}
		for _, key := range w.acked {
			want[key] = respValue(key)
		}
		resumed = append(resumed, w.resumed.Sub(killedAt))
		failed += w.failed
		if w.sample != "" && len(samples) < 3 {
			samples = append(samples, w.sample)
		}
	}
	slices.Sort(resumed)
	t.Logf("killed %s, leader of %d of %d partitions; %d writers through %s and %s: %d SETs acknowledged before the kill, %d in all; "+
		"each writer acknowledged again %v to %v after the kill (median %v); %d attempts answered TRYAGAIN %q",
		c.procs[victim].name, led, clusterPartitions, writers, c.procs[survivors[0]].name, c.procs[survivors[1]].name,
		ackedBefore, len(want), resumed[0].Round(time.Millisecond), resumed[len(resumed)-1].Round(time.Millisecond),
		resumed[len(resumed)/2].Round(time.Millisecond), failed, samples)
	if last := resumed[len(resumed)-1]; last > resumeBound {
		t.Errorf("a writer waited %v after the kill for an acknowledged SET", last)
	}
	if failed >= len(want) {
		t.Errorf("%d SETs acknowledged and %d attempts failed: most should be acknowledged", len(want), failed)
	}

	// redis-benchmark's runs were answered: complete, or stopped at a
	// TRYAGAIN; and a run that began after the kill completed.
	var aborted []string
	var rps []string
	for i, r := range runs {
		p := r.problem("SET")
		switch {
		case p == "":
			rps = append(rps, fmt.Sprintf("%.0f", r.rps["SET"]))
		case r.err != nil && len(r.errors) > 0 && !slices.ContainsFunc(r.errors, func(e string) bool { return !strings.Contains(e, "TRYAGAIN ") }):
			aborted = append(aborted, fmt.Sprintf("run %d, %v to %v after the kill: %s", i+1, r.start.Sub(killedAt).Round(time.Millisecond),
				r.end.Sub(killedAt).Round(time.Millisecond), strings.Join(r.errors, "; ")))
		case bctx.Err() != nil && i == len(runs)-1:
			// Cut short below.
		default:
			t.Errorf("redis-benchmark run %d: %s\n%s", i+1, p, r)
		}
	}
	t.Logf("redis-benchmark -t set -n %d -c %d -r %d through %s: %d runs, %d complete (SET requests/s: %s), %d stopped at a TRYAGAIN answer:\n%s",
		benchSets, benchClients, benchRandomKeys, c.procs[1].name, len(runs), len(rps), strings.Join(rps, ", "), len(aborted), strings.Join(aborted, "\n"))
	if last := runs[len(runs)-1]; last.problem("SET") != "" || !last.start.After(killedAt) {
		t.Errorf("no redis-benchmark run that began after the kill completed within %v of the writers' end; the last:\n%s", benchAfter, last)
	}

	// Every acknowledged SET, read back through each survivor.
	for _, i := range survivors {
		checkRESPReadable(ctx, t, c.procs[i].name, respClient(t, addrs[i], true), want)
	}
}

// checkRESPReadable reads every key of want through rdb, pipelined, and
// fails the test on a miss or a wrong value. A read answered TRYAGAIN is
// tried again, for up to 30s.
func checkRESPReadable(ctx context.Context, t *testing.T, name string, rdb *redis.Client, want map[string]string) {
	t.Helper()
	start := time.Now()
	deadline := start.Add(30 * time.Second)
	keys := make([]string, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var problems []string
	retried := 0
	for len(keys) > 0 {
		var again []string
		for chunk := range slices.Chunk(keys, 500) {
			pipe := rdb.Pipeline()
			cmds := make([]*redis.StringCmd, len(chunk))
			for i, k := range chunk {
				cmds[i] = pipe.Get(ctx, k)
			}
			pipe.Exec(ctx) // each command holds its own answer
			for i, cmd := range cmds {
				v, err := cmd.Result()
				switch {
				case err != nil && strings.HasPrefix(err.Error(), "TRYAGAIN ") && time.Now().Before(deadline):
					again = append(again, chunk[i])
				case errors.Is(err, redis.Nil):
					problems = append(problems, chunk[i]+": missing")
				case err != nil:
					problems = append(problems, fmt.Sprintf("%s: %v", chunk[i], err))
				case v != want[chunk[i]]:
					problems = append(problems, fmt.Sprintf("%s: %q, want %q", chunk[i], v, want[chunk[i]]))
				}
			}
		}
		retried += len(again)
		keys = again
		if len(keys) > 0 {
			time.Sleep(retryBackoff)
		}
	}
	if len(problems) > 0 {
		t.Fatalf("%d of %d acknowledged SETs not readable through %s's listener: %s", len(problems), len(want), name,
			strings.Join(problems[:min(10, len(problems))], "; "))
	}
	t.Logf("%s's listener: all %d acknowledged SETs read back linearizably in %v (%d reads answered TRYAGAIN and retried)",
		name, len(want), time.Since(start).Round(time.Millisecond), retried)
}

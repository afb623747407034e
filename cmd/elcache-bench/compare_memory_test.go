//go:build benchcompare

package main

// The memory measurement of TestCompare: bytes of RAM and disk per key of
// a loaded elcache cluster, against Redis holding the same keys.

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/elcache/elcache/client"
	"github.com/elcache/elcache/internal/bench"
	"github.com/elcache/elcache/ring"
	"github.com/redis/go-redis/v9"
)

const (
	// memoryBatch is the entries of one MultiPut (the server's default
	// batch limit) and the SETs of one Redis pipeline.
	memoryBatch = 1000
	// memoryLoaders is the batches in flight at once.
	memoryLoaders = 8
	// memoryLoadMax bounds each system's load.
	memoryLoadMax = 10 * time.Minute
	// memoryRSSWindow is how long each RSS figure is sampled, every
	// memoryRSSEvery.
	memoryRSSWindow = 10 * time.Second
	memoryRSSEvery  = 250 * time.Millisecond
)

// memoryNode is one elcache node's figures, empty and loaded.
type memoryNode struct {
	Node string `json:"node"`
	// RSS figures are the mean of sampleRSS, RSSLoadedPeak its peak.
	RSSEmpty      int64  `json:"rss_empty_bytes"`
	RSSLoaded     int64  `json:"rss_loaded_bytes"`
	RSSLoadedPeak int64  `json:"rss_loaded_peak_bytes"`
	DiskEmpty     int64  `json:"disk_empty_bytes"`
	DiskLoaded    int64  `json:"disk_loaded_bytes"`
	Keys          uint64 `json:"keys"`       // as the node's Stats count them
	LiveBytes     uint64 `json:"live_bytes"` // Stats bytes_used: keys, values and entry headers
}

// memoryResult is the memory measurement, for results.json. Per-key
// figures are bytes; elcache's are the mean over its nodes, each node
// holding a replica of every key.
type memoryResult struct {
	Keys           int          `json:"keys"`
	KeyBytes       int          `json:"key_bytes"`
	ValueSize      int          `json:"value_bytes"`
	Partitions     int          `json:"partitions"`
	Elcache        []memoryNode `json:"elcache"`
	ElcacheLoadSec float64      `json:"elcache_load_s"`

	ElcacheRSSPerKey     float64 `json:"elcache_rss_per_key"`
	ElcacheRSSNetPerKey  float64 `json:"elcache_rss_net_per_key"` // net of the empty node's RSS
	ElcacheDiskPerKey    float64 `json:"elcache_disk_per_key"`
	ElcacheDiskNetPerKey float64 `json:"elcache_disk_net_per_key"`

	RedisUsedEmpty  int64   `json:"redis_used_memory_empty_bytes"`
	RedisUsedLoaded int64   `json:"redis_used_memory_loaded_bytes"`
	RedisRSSEmpty   int64   `json:"redis_rss_empty_bytes"`
	RedisRSSLoaded  int64   `json:"redis_rss_loaded_bytes"`
	RedisLoadSec    float64 `json:"redis_load_s"`

	RedisUsedPerKey    float64 `json:"redis_used_memory_per_key"`
	RedisUsedNetPerKey float64 `json:"redis_used_memory_net_per_key"`
	RedisRSSPerKey     float64 `json:"redis_rss_per_key"`
	RedisRSSNetPerKey  float64 `json:"redis_rss_net_per_key"`

	// Ratio is elcache's RSS per key over Redis's used_memory per key,
	// gross and net of the empty figures (goal <= 1).
	Ratio    float64 `json:"elcache_rss_over_redis_used_memory"`
	RatioNet float64 `json:"elcache_rss_over_redis_used_memory_net"`
}

// measureMemory loads keys keys into a fresh elcache cluster and then into
// a fresh Redis, each in a subtest that stops its processes when it ends.
func measureMemory(t *testing.T, logDir string, keys int) compareExtra {
	return measureExtra(t, "memory", "memory per key", func(t *testing.T) memoryResult {
		r := memoryResult{Keys: keys, KeyBytes: len(memoryKey(0)), ValueSize: *compareValueSize, Partitions: *comparePartitions}
		if _, err := exec.LookPath("redis-server"); err != nil {
			t.Fatal("redis-server not found: `make bench-compare` installs it (apt-get install redis-server)")
		}
		if !t.Run("elcache", func(t *testing.T) { loadElcacheMemory(t, logDir, &r) }) {
			t.FailNow()
		}
		if !t.Run("redis", func(t *testing.T) { loadRedisMemory(t, logDir, &r) }) {
			t.FailNow()
		}
		r.finish()
		return r
	})
}

// loadElcacheMemory starts a 3-node cluster (a pure cache), measures its
// empty nodes, loads r.Keys keys with batched REPLICATED writes, waits
// until every node holds them all, and measures again.
func loadElcacheMemory(t *testing.T, logDir string, r *memoryResult) {
	ctx := t.Context()
	c := startElcacheCluster(t, logDir, "memory")
	pids := make([]int, len(c.nodes))
	for i, nd := range c.nodes {
		pids[i] = nd.proc.Pid
	}
	empty, _ := sampleRSS(t, pids)
	for i, nd := range c.nodes {
		r.Elcache = append(r.Elcache, memoryNode{Node: nd.name, RSSEmpty: empty[i], DiskEmpty: diskUsage(t, nd.dataDir)})
	}

	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	tgt, err := bench.NewElcacheTarget(cctx, c.addrs(), "", "cache_only", "replicated", false, nil)
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	defer tgt.Close()
	cl := tgt.(*bench.ElcacheTarget).Client()
	// Batches of one partition each: one MultiPut is one RPC and one Raft
	// entry.
	p, err := ring.NewPartitioner(uint32(c.partitions))
	if err != nil {
		t.Fatal(err)
	}
	byPart := make([][]int, c.partitions)
	for i := range r.Keys {
		part := p.Partition(memoryKey(i))
		byPart[part] = append(byPart[part], i)
	}
	var batches [][]int
	for _, idx := range byPart {
		for len(idx) > 0 {
			n := min(memoryBatch, len(idx))
			batches = append(batches, idx[:n])
			idx = idx[n:]
		}
	}
	start := time.Now()
	err = loadBatches(ctx, batches, func(ctx context.Context, rnd *rand.ChaCha8, idx []int) error {
		kvs := make([]client.KeyValue, len(idx))
		for j, i := range idx {
			kvs[j] = client.KeyValue{Key: memoryKey(i), Value: memoryValue(rnd, r.ValueSize)}
		}
		_, err := cl.MultiPut(ctx, kvs)
		return err
	})
	if err != nil {
		t.Fatalf("elcache load: %v", err)
	}
	r.ElcacheLoadSec = time.Since(start).Seconds()
	t.Logf("elcache: %d keys loaded in %.1fs", r.Keys, r.ElcacheLoadSec)

	for i, nd := range c.nodes {
		waitFor(t, nd.name+" holding every key", nd.exited, 2*time.Minute, func(ctx context.Context) error {
			st, err := nodeStats(ctx, nd.addr)
			if err != nil {
				return err
			}
			r.Elcache[i].Keys, r.Elcache[i].LiveBytes = st.Keys, st.BytesUsed
			if st.Keys != uint64(r.Keys) {
				return fmt.Errorf("%d of %d keys", st.Keys, r.Keys)
			}
			return nil
		})
	}
	loaded, peak := sampleRSS(t, pids)
	for i, nd := range c.nodes {
		r.Elcache[i].RSSLoaded, r.Elcache[i].RSSLoadedPeak = loaded[i], peak[i]
		r.Elcache[i].DiskLoaded = diskUsage(t, nd.dataDir)
	}
}

// loadRedisMemory starts a redis-server without persistence, reads INFO
// memory, loads r.Keys keys with pipelined SETs and reads it again.
func loadRedisMemory(t *testing.T, logDir string, r *memoryResult) {
	ctx := t.Context()
	addr := startRedis(t, logDir, false)
	tgt, err := bench.NewRedisTarget(ctx, &bench.TargetFlags{Addr: addr})
	if err != nil {
		t.Fatal(err)
	}
	defer tgt.Close()
	rc := tgt.(*bench.RedisTarget).Client()
	if r.RedisUsedEmpty, r.RedisRSSEmpty, err = redisMemory(ctx, rc); err != nil {
		t.Fatal(err)
	}
	var batches [][]int
	for i := 0; i < r.Keys; i += memoryBatch {
		idx := make([]int, 0, memoryBatch)
		for j := i; j < min(i+memoryBatch, r.Keys); j++ {
			idx = append(idx, j)
		}
		batches = append(batches, idx)
	}
	start := time.Now()
	err = loadBatches(ctx, batches, func(ctx context.Context, rnd *rand.ChaCha8, idx []int) error {
		pipe := rc.Pipeline()
		for _, i := range idx {
			pipe.Set(ctx, string(memoryKey(i)), memoryValue(rnd, r.ValueSize), 0)
		}
		_, err := pipe.Exec(ctx)
		return err
	})
	if err != nil {
		t.Fatalf("redis load: %v", err)
	}
	r.RedisLoadSec = time.Since(start).Seconds()
	if n, err := rc.DBSize(ctx).Result(); err != nil || n != int64(r.Keys) {
		t.Fatalf("redis holds %d keys, want %d (%v)", n, r.Keys, err)
	}
	if r.RedisUsedLoaded, r.RedisRSSLoaded, err = redisMemory(ctx, rc); err != nil {
		t.Fatal(err)
	}
	t.Logf("redis: %d keys loaded in %.1fs", r.Keys, r.RedisLoadSec)
}

// loadBatches runs load for every batch, memoryLoaders at a time, each
// loader with its own source of value bytes, within memoryLoadMax. It
// returns the first error.
func loadBatches(ctx context.Context, batches [][]int, load func(ctx context.Context, rnd *rand.ChaCha8, idx []int) error) error {
	ctx, cancel := context.WithTimeout(ctx, memoryLoadMax)
	defer cancel()
	next := make(chan []int)
	errs := make(chan error, memoryLoaders)
	var wg sync.WaitGroup
	for w := range memoryLoaders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var seed [32]byte
			seed[0] = byte(w)
			rnd := rand.NewChaCha8(seed)
			for idx := range next {
				if err := load(ctx, rnd, idx); err != nil {
					errs <- err
					cancel()
					return
				}
			}
		}()
	}
feed:
	for _, idx := range batches {
		select {
		case next <- idx:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	return ctx.Err()
}

// memoryKey is key i of the measurement, the same for both systems.
func memoryKey(i int) []byte { return fmt.Appendf(nil, "mem-%08d", i) }

// memoryValue returns size random bytes: incompressible, as most cached
// values are once compressed or encrypted.
func memoryValue(rnd *rand.ChaCha8, size int) []byte {
	v := make([]byte, size)
	rnd.Read(v)
	return v
}

// finish computes the per-key figures and the ratios.
func (r *memoryResult) finish() {
	n := float64(r.Keys)
	var rss, rssNet, disk, diskNet float64
	for _, nd := range r.Elcache {
		rss += float64(nd.RSSLoaded)
		rssNet += float64(nd.RSSLoaded - nd.RSSEmpty)
		disk += float64(nd.DiskLoaded)
		diskNet += float64(nd.DiskLoaded - nd.DiskEmpty)
	}
	nodes := float64(len(r.Elcache))
	r.ElcacheRSSPerKey, r.ElcacheRSSNetPerKey = rss/nodes/n, rssNet/nodes/n
	r.ElcacheDiskPerKey, r.ElcacheDiskNetPerKey = disk/nodes/n, diskNet/nodes/n
	r.RedisUsedPerKey = float64(r.RedisUsedLoaded) / n
	r.RedisUsedNetPerKey = float64(r.RedisUsedLoaded-r.RedisUsedEmpty) / n
	r.RedisRSSPerKey = float64(r.RedisRSSLoaded) / n
	r.RedisRSSNetPerKey = float64(r.RedisRSSLoaded-r.RedisRSSEmpty) / n
	r.Ratio = div(r.ElcacheRSSPerKey, r.RedisUsedPerKey)
	r.RatioNet = div(r.ElcacheRSSNetPerKey, r.RedisUsedNetPerKey)
}

// summary returns the lines of r for the log and results.md.
func (r memoryResult) summary() []string {
	n := float64(r.Keys)
	var perNode []string
	for _, nd := range r.Elcache {
		perNode = append(perNode, fmt.Sprintf("%s %.0f/%.0f B RSS, %.0f/%.0f B disk (RSS %s MiB empty, %s MiB loaded, peak %s MiB)",
			nd.Node, float64(nd.RSSLoaded)/n, float64(nd.RSSLoaded-nd.RSSEmpty)/n,
			float64(nd.DiskLoaded)/n, float64(nd.DiskLoaded-nd.DiskEmpty)/n,
			mib(nd.RSSEmpty), mib(nd.RSSLoaded), mib(nd.RSSLoadedPeak)))
	}
	return []string{
		fmt.Sprintf("memory per key (%s keys of %d bytes, %d-byte values, per replica): elcache RSS (mean of %v) %.0f B gross, %.0f B net of the empty node, for %.0f B of live entries (Stats bytes_used, mostly in Pebble's files, outside RSS); disk (du of the data dir) %.0f B gross, %.0f B net; Redis used_memory %.0f B gross, %.0f B net, RSS %.0f B gross, %.0f B net",
			bench.FormatOps(n), r.KeyBytes, r.ValueSize, memoryRSSWindow, r.ElcacheRSSPerKey, r.ElcacheRSSNetPerKey, r.liveBytesPerKey(), r.ElcacheDiskPerKey, r.ElcacheDiskNetPerKey,
			r.RedisUsedPerKey, r.RedisUsedNetPerKey, r.RedisRSSPerKey, r.RedisRSSNetPerKey),
		fmt.Sprintf("memory per key: elcache RSS / Redis used_memory %.2fx gross, %.2fx net (goal <= 1x); per node, gross/net: %s; loads took %.1fs (elcache, MultiPut of %d at REPLICATED, %d in flight) and %.1fs (Redis, pipelines of %d)",
			r.Ratio, r.RatioNet, strings.Join(perNode, "; "), r.ElcacheLoadSec, memoryBatch, memoryLoaders, r.RedisLoadSec, memoryBatch),
	}
}

// liveBytesPerKey is the mean over the nodes of their live entry bytes
// per key.
func (r memoryResult) liveBytesPerKey() float64 {
	var live float64
	for _, nd := range r.Elcache {
		live += float64(nd.LiveBytes)
	}
	return live / float64(len(r.Elcache)) / float64(r.Keys)
}

func mib(b int64) string { return fmt.Sprintf("%.0f", float64(b)/(1<<20)) }

// sampleRSS samples the RSS of pids every memoryRSSEvery for
// memoryRSSWindow and returns each one's mean and peak: a loaded node's
// RSS swings with its garbage collector.
func sampleRSS(t *testing.T, pids []int) (mean, peak []int64) {
	t.Helper()
	sum := make([]int64, len(pids))
	peak = make([]int64, len(pids))
	n := int64(memoryRSSWindow / memoryRSSEvery)
	for s := range n {
		if s > 0 {
			wait(t.Context(), memoryRSSEvery)
		}
		for i, pid := range pids {
			rss := processRSS(t, pid)
			sum[i] += rss
			peak[i] = max(peak[i], rss)
		}
	}
	mean = make([]int64, len(pids))
	for i := range sum {
		mean[i] = sum[i] / n
	}
	return mean, peak
}

// processRSS reads VmRSS of process pid from /proc, in bytes.
func processRSS(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatalf("pid %d: VmRSS %q: %v", pid, v, err)
			}
			return kb << 10
		}
	}
	t.Fatalf("pid %d: no VmRSS", pid)
	return 0
}

// diskUsage is what du reports for dir: the bytes of the blocks
// allocated to its files.
func diskUsage(t *testing.T, dir string) int64 {
	t.Helper()
	var total int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil // removed while walking (a compaction, say)
		}
		if err != nil {
			return err
		}
		info, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			total += st.Blocks * 512
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return total
}

// redisMemory returns INFO memory's used_memory and used_memory_rss.
func redisMemory(ctx context.Context, rc redis.UniversalClient) (used, rss int64, err error) {
	info, err := rc.Info(ctx, "memory").Result()
	if err != nil {
		return 0, 0, err
	}
	fields := map[string]int64{}
	for line := range strings.Lines(info) {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok {
			continue
		}
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			fields[k] = n
		}
	}
	used, okUsed := fields["used_memory"]
	rss, okRSS := fields["used_memory_rss"]
	if !okUsed || !okRSS {
		return 0, 0, errors.New("redis: INFO memory lacks used_memory or used_memory_rss")
	}
	return used, rss, nil
}

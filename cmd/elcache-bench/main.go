// Command elcache-bench measures the throughput and latency of an elcache
// cluster at each consistency level and write mode, and of Redis and etcd
// under the same load, with YCSB's core workloads: A (50% reads, 50%
// updates), B (95/5), C (reads only) and W (5/95), over uniform or
// zipfian keys, in closed loop (clients issue operations back to back) or
// open loop (-rate: operations are scheduled at a fixed rate and latency
// counts from the scheduled time, so queueing is not hidden).
//
//	elcache-bench -target elcache -addr 127.0.0.1:7400 -consistency eventual -workload B
//	elcache-bench -target redis -addr 127.0.0.1:6379 -rate 20000 -json redis.json
//	elcache-bench -target etcd -addr 127.0.0.1:2379 -serializable
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"
)

// targetFlags are the flags that choose and configure the target.
type targetFlags struct {
	// Addr is the target's address, comma-separated host:port for several
	// (elcache seeds, etcd endpoints, a Redis Cluster); empty means the
	// target's usual local port (see defaultAddrs).
	Addr string
	// Consistency is elcache's read level (see parseLevel).
	Consistency string
	// Mode is elcache's write mode (see parseMode); for Redis, a label
	// naming how the server persists (e.g. "appendfsync-always").
	Mode string
	// Durability is elcache's write durability (see parseDurability).
	Durability string
	// Unary sends each elcache request as its own RPC.
	Unary bool
	// Serializable reads etcd serializably (any member) instead of
	// linearizably.
	Serializable bool
}

// targetNames are the values of -target.
var targetNames = []string{"elcache", "redis", "etcd"}

// defaultAddrs are the addresses targets use when -addr is empty.
var defaultAddrs = map[string]string{
	"elcache": "127.0.0.1:7400",
	"redis":   "127.0.0.1:6379",
	"etcd":    "127.0.0.1:2379",
}

// validate reports every problem with f for target name, joined, or nil.
func (f *targetFlags) validate(name string) error {
	var errs []error
	switch name {
	case "elcache":
		if _, _, err := parseLevel(f.Consistency); err != nil {
			errs = append(errs, err)
		}
		if _, err := parseMode(f.Mode); err != nil {
			errs = append(errs, err)
		}
		if _, err := parseDurability(f.Durability); err != nil {
			errs = append(errs, err)
		}
		if f.Serializable {
			errs = append(errs, errors.New("bench: -serializable is for etcd"))
		}
	case "redis", "etcd":
		if f.Consistency != "" || f.Durability != "" || f.Unary {
			errs = append(errs, fmt.Errorf("bench: -consistency, -durability and -unary are for elcache, not %s", name))
		}
		if name == "etcd" && f.Mode != "" {
			errs = append(errs, errors.New("bench: -mode is for elcache and redis, not etcd"))
		}
		if name == "redis" && f.Serializable {
			errs = append(errs, errors.New("bench: -serializable is for etcd"))
		}
	default:
		errs = append(errs, fmt.Errorf("bench: unknown target %q (want %s)", name, strings.Join(targetNames, ", ")))
	}
	return errors.Join(errs...)
}

// newTarget connects to target name; f.Addr empty means the target's
// default address.
func newTarget(ctx context.Context, name string, f *targetFlags) (Target, error) {
	if f.Addr == "" {
		f.Addr = defaultAddrs[name]
	}
	switch name {
	case "elcache":
		return newElcacheTarget(ctx, splitAddrs(f.Addr), f.Consistency, f.Mode, f.Durability, f.Unary)
	case "redis":
		return newRedisTarget(ctx, f)
	case "etcd":
		return newEtcdTarget(ctx, f)
	}
	return nil, fmt.Errorf("bench: unknown target %q (want %s)", name, strings.Join(targetNames, ", "))
}

// options are the parsed command line.
type options struct {
	target     string
	tf         targetFlags
	run        RunConfig
	json       string
	quiet      bool
	cpuProfile string
}

// parseFlags parses args (without the program name). Problems with the
// values are reported all together.
func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	o.run = DefaultRunConfig()
	fs := flag.NewFlagSet("elcache-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.target, "target", "elcache", "system to measure: "+strings.Join(targetNames, ", "))
	fs.StringVar(&o.tf.Addr, "addr", "", "comma-separated host:port of the target (default: elcache 127.0.0.1:7400, redis 127.0.0.1:6379, etcd 127.0.0.1:2379)")
	fs.StringVar(&o.tf.Consistency, "consistency", "", "elcache read level: linearizable, lease, bounded[:DURATION] (default bound 1s), session, eventual (default: the cluster's)")
	fs.StringVar(&o.tf.Mode, "mode", "", "elcache write mode: cache_only, write_through, write_back, write_around (default: the cluster's); for redis, a label for its persistence")
	fs.StringVar(&o.tf.Durability, "durability", "", "elcache write durability: sync (acknowledged once a quorum has fsynced it) or replicated (once a quorum has written it to the OS) (default: the cluster's)")
	fs.BoolVar(&o.tf.Unary, "unary", false, "elcache: one RPC per request instead of the pipelined stream")
	fs.BoolVar(&o.tf.Serializable, "serializable", false, "etcd: serializable reads (any member) instead of linearizable")
	fs.StringVar(&o.run.Workload, "workload", o.run.Workload, "YCSB workload: A (50% reads), B (95%), C (100%), W (5%)")
	fs.StringVar(&o.run.Distribution, "dist", o.run.Distribution, "key distribution: uniform or zipfian")
	fs.IntVar(&o.run.Keys, "keys", o.run.Keys, "number of keys")
	fs.IntVar(&o.run.ValueSize, "value-size", o.run.ValueSize, "bytes per value")
	fs.IntVar(&o.run.Clients, "clients", o.run.Clients, "concurrent clients")
	fs.DurationVar(&o.run.Duration, "duration", o.run.Duration, "measured phase")
	fs.DurationVar(&o.run.Warmup, "warmup", o.run.Warmup, "warm-up before measuring")
	fs.Float64Var(&o.run.Rate, "rate", 0, "open loop: operations per second in all (0: closed loop)")
	fs.BoolVar(&o.run.Load, "load", o.run.Load, "write every key once before the run")
	fs.Int64Var(&o.run.Seed, "seed", o.run.Seed, "random seed (worker i uses seed+i)")
	fs.StringVar(&o.json, "json", "", "write the result to this JSON file")
	fs.BoolVar(&o.quiet, "quiet", false, "no progress bar")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write the benchmark client's CPU profile of the run to this file")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("bench: unexpected arguments %q", fs.Args())
	}
	return o, errors.Join(o.run.Validate(), o.tf.validate(o.target))
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is main, returning the exit code: 2 for bad flags, 1 for a failed
// run. The table goes to stdout; progress and errors to stderr.
func run(args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	t, err := newTarget(ctx, o.target, &o.tf)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if o.cpuProfile != "" {
		stopProfile, err := startCPUProfile(o.cpuProfile)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		defer stopProfile()
	}
	var progress ProgressFunc
	if !o.quiet {
		progress = newProgressBar(stderr, isTerminal(stderr), t.Name(), o.run).Update
	}
	res, err := Run(ctx, t, o.run, progress)
	// A stopped run measured less than its duration: no result.
	if err = errors.Join(err, t.Close()); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if err := printTable(stdout, []Result{res}); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if o.json != "" {
		if err := writeResultsFile(o.json, resultsFile{Machine: currentMachine(), Results: []Result{res}}); err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
	}
	return 0
}

// startCPUProfile profiles this process's CPU into path until stop.
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("bench: cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("bench: cpu profile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

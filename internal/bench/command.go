package bench

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"strings"

	"github.com/elcache/elcache/client"
)

// TargetFlags are the flags that choose and configure the target.
type TargetFlags struct {
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
	// NearCache gives the elcache client a near cache of NearMaxBytes
	// (0: the client's default, 64 MiB).
	NearCache    bool
	NearMaxBytes int64
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
func (f *TargetFlags) validate(name string) error {
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
		if f.NearMaxBytes < 0 {
			errs = append(errs, fmt.Errorf("bench: -near-max-bytes %d is negative", f.NearMaxBytes))
		}
		if f.NearMaxBytes != 0 && !f.NearCache {
			errs = append(errs, errors.New("bench: -near-max-bytes needs -near-cache"))
		}
	case "redis", "etcd":
		if f.Consistency != "" || f.Durability != "" || f.Unary || f.NearCache || f.NearMaxBytes != 0 {
			errs = append(errs, fmt.Errorf("bench: -consistency, -durability, -unary and -near-cache are for elcache, not %s", name))
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

// newTarget connects to o's target; an empty -addr means the target's
// default address.
func (o *Options) newTarget(ctx context.Context) (Target, error) {
	f := &o.Flags
	if f.Addr == "" {
		f.Addr = defaultAddrs[o.Target]
	}
	switch o.Target {
	case "elcache":
		configure := o.Client
		if f.NearCache {
			configure = WithNearCache(configure, f.NearMaxBytes)
		}
		return NewElcacheTarget(ctx, splitAddrs(f.Addr), f.Consistency, f.Mode, f.Durability, f.Unary, configure)
	case "redis":
		return NewRedisTarget(ctx, f)
	case "etcd":
		return NewEtcdTarget(ctx, f)
	}
	return nil, fmt.Errorf("bench: unknown target %q (want %s)", o.Target, strings.Join(targetNames, ", "))
}

// Options are a benchmark's command line: the target, the run, and where
// the result goes.
type Options struct {
	Target string      // -target: elcache, redis or etcd
	Flags  TargetFlags // -addr, -consistency, -mode, -durability, -unary, -near-cache, -near-max-bytes, -serializable
	Run    RunConfig
	// JSON, if set, is the file the result is also written to.
	JSON       string
	Quiet      bool   // no progress bar
	CPUProfile string // file for the benchmark client's CPU profile
	// Client, if not nil, adjusts the elcache client's configuration
	// before it connects. No flag sets it: elcachectl passes its token
	// and TLS settings there.
	Client func(*client.Config)
}

// ParseFlags defines the benchmark's flags on fs, parses args (without the
// program name) and checks the values, reporting every problem together.
// fs's name, output and error handling are the caller's; after
// flag.ErrHelp, fs.PrintDefaults prints the flags.
func ParseFlags(fs *flag.FlagSet, args []string) (Options, error) {
	var o Options
	o.Run = DefaultRunConfig()
	fs.StringVar(&o.Target, "target", "elcache", "system to measure: "+strings.Join(targetNames, ", "))
	fs.StringVar(&o.Flags.Addr, "addr", "", "comma-separated host:port of the target (default: elcache 127.0.0.1:7400, redis 127.0.0.1:6379, etcd 127.0.0.1:2379)")
	fs.StringVar(&o.Flags.Consistency, "consistency", "", "elcache read level: linearizable, lease, bounded[:DURATION] (default bound 1s), session, eventual (default: the cluster's)")
	fs.StringVar(&o.Flags.Mode, "mode", "", "elcache write mode: cache_only, write_through, write_back, write_around (default: the cluster's); for redis, a label for its persistence")
	fs.StringVar(&o.Flags.Durability, "durability", "", "elcache write durability: sync (acknowledged once a quorum has fsynced it) or replicated (once a quorum has written it to the OS) (default: the cluster's)")
	fs.BoolVar(&o.Flags.Unary, "unary", false, "elcache: one RPC per request instead of the pipelined stream")
	fs.BoolVar(&o.Flags.NearCache, "near-cache", false, "elcache: the client keeps hot keys in a near cache and serves EVENTUAL, BOUNDED and SESSION reads from it while it can prove their promise")
	fs.Int64Var(&o.Flags.NearMaxBytes, "near-max-bytes", 0, "elcache: the near cache's bound in bytes (keys, values and bookkeeping; 0: the client's default, 64 MiB)")
	fs.BoolVar(&o.Flags.Serializable, "serializable", false, "etcd: serializable reads (any member) instead of linearizable")
	fs.StringVar(&o.Run.Workload, "workload", o.Run.Workload, "YCSB workload: A (50% reads), B (95%), C (100%), W (5%)")
	fs.StringVar(&o.Run.Distribution, "dist", o.Run.Distribution, "key distribution: uniform or zipfian")
	fs.IntVar(&o.Run.Keys, "keys", o.Run.Keys, "number of keys")
	fs.IntVar(&o.Run.ValueSize, "value-size", o.Run.ValueSize, "bytes per value")
	fs.IntVar(&o.Run.Clients, "clients", o.Run.Clients, "concurrent clients")
	fs.DurationVar(&o.Run.Duration, "duration", o.Run.Duration, "measured phase")
	fs.DurationVar(&o.Run.Warmup, "warmup", o.Run.Warmup, "warm-up before measuring")
	fs.Float64Var(&o.Run.Rate, "rate", 0, "open loop: operations per second in all (0: closed loop)")
	fs.BoolVar(&o.Run.Load, "load", o.Run.Load, "write every key once before the run")
	fs.BoolVar(&o.Run.Check, "check", false, "elcache: check every read against the run's own writes (a version older than the level's bound allows, or a value the run wrote to another key or at another version, is a violation; values of at least 16 bytes); violations fail the run")
	fs.Int64Var(&o.Run.Seed, "seed", o.Run.Seed, "random seed (worker i uses seed+i)")
	fs.StringVar(&o.JSON, "json", "", "write the result to this JSON file")
	fs.BoolVar(&o.Quiet, "quiet", false, "no progress bar")
	fs.StringVar(&o.CPUProfile, "cpuprofile", "", "write the benchmark client's CPU profile of the run to this file")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("bench: unexpected arguments %q", fs.Args())
	}
	var errCheck error
	if o.Run.Check && o.Target != "elcache" {
		errCheck = fmt.Errorf("bench: -check is for elcache, not %s", o.Target)
	}
	return o, errors.Join(o.Run.Validate(), o.Flags.validate(o.Target), errCheck)
}

// Execute connects to the target and runs the benchmark: progress goes to
// stderr (unless Quiet), the result to stdout as a table and, if JSON is
// set, to that file. A run that ctx stops measured less than its duration:
// it gives no result, only the error.
func (o Options) Execute(ctx context.Context, stdout, stderr io.Writer) error {
	t, err := o.newTarget(ctx)
	if err != nil {
		return err
	}
	if o.CPUProfile != "" {
		stopProfile, err := startCPUProfile(o.CPUProfile)
		if err != nil {
			return errors.Join(err, t.Close())
		}
		defer stopProfile()
	}
	var progress ProgressFunc
	if !o.Quiet {
		progress = newProgressBar(stderr, isTerminal(stderr), t.Name(), o.Run).Update
	}
	res, err := Run(ctx, t, o.Run, progress)
	if err = errors.Join(err, t.Close()); err != nil {
		return err
	}
	if err := printTable(stdout, []Result{res}); err != nil {
		return err
	}
	if err := printExtras(stdout, res); err != nil {
		return err
	}
	if o.JSON != "" {
		if err := WriteResultsFile(o.JSON, ResultsFile{Machine: CurrentMachine(), Results: []Result{res}}); err != nil {
			return err
		}
	}
	if n := res.Check.Violations(); n > 0 {
		return fmt.Errorf("bench: %d of %d reads checked broke the read level's promise (%d stale, %d wrong); the first: %s", n, res.Check.Reads, res.Check.Stale, res.Check.Wrong, res.Check.First)
	}
	return nil
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

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
//
// The benchmark itself is internal/bench, which "elcachectl bench" runs
// too, with the same flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/elcache/elcache/internal/bench"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// parseFlags parses args (without the program name). Problems with the
// values are reported all together.
func parseFlags(args []string, stderr io.Writer) (bench.Options, error) {
	fs := flag.NewFlagSet("elcache-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	return bench.ParseFlags(fs, args)
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
	if err := o.Execute(ctx, stdout, stderr); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	return 0
}

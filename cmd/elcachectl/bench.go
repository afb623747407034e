package main

import (
	"errors"
	"flag"
	"fmt"
	"strings"

	"github.com/elcache/elcache/client"
	"github.com/elcache/elcache/internal/bench"
)

// benchUsage heads "elcachectl bench -h"; the flags follow it.
const benchUsage = `Usage: elcachectl [--addr HOST:PORT] bench [FLAGS]

Runs elcache's benchmark, the one elcache-bench runs, with the same flags:
a YCSB workload against the cluster at --addr (or at -addr; -target redis
or etcd measures those instead), progress on stderr, then throughput and
latency quantiles on stdout. It lasts -warmup then -duration, after loading
-keys keys (-load); --timeout does not apply. For example

  elcachectl bench -workload B -consistency eventual -duration 10s

Flags:
`

// cmdBench runs the benchmark against the cluster elcachectl talks to.
func cmdBench(e *env, args []string) error {
	fs := newFlagSet("bench")
	o, err := bench.ParseFlags(fs, args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprint(e.stdout, benchUsage)
		fs.SetOutput(e.stdout)
		fs.PrintDefaults()
		return nil
	case err != nil:
		// The checks of the values name the benchmark already; the flag
		// package's errors do not.
		if msg := err.Error(); !strings.HasPrefix(msg, "bench: ") {
			return usagef("bench: %s", msg)
		}
		return usagef("%v", err)
	}
	if o.Target == "elcache" && o.Flags.Addr == "" {
		o.Flags.Addr = e.addr
	}
	o.Client = e.credentials
	// The run lasts as long as its flags say: only SIGINT stops it early.
	return o.Execute(e.base, e.stdout, e.stderr)
}

// credentials sets the token and TLS settings of the global flags on cfg.
func (e *env) credentials(cfg *client.Config) {
	cfg.Token, cfg.AllowPlaintextToken, cfg.TLS = e.token, true, e.tls
}

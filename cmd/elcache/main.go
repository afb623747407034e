// Command elcache runs an elcache server node.
//
// Every setting can come from a flag, an ELCACHE_* environment variable (the
// flag name upper-cased with '-' as '_', e.g. ELCACHE_DATA_DIR) or a YAML
// file given with --config (keys are flag names). Flags win over the
// environment, which wins over the file.
//
// `elcache schema --backend URL [--table NAME] [--columns ROLE=NAME,...]
// [--apply]` prints (or creates) the table the node uses in its backing
// database.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"syscall"

	"github.com/elcache/elcache/node"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "schema" {
		os.Exit(runSchema(os.Args[2:], os.Stdout, os.Stderr))
	}
	os.Exit(run(os.Args[1:], os.Stderr))
}

// run starts a node and serves until SIGINT or SIGTERM. It returns the exit
// code: 0 after a clean shutdown, 1 on a runtime failure, 2 on bad settings.
func run(args []string, stderr io.Writer) int {
	cfg, level, err := loadConfig(args, os.Getenv, stderr)
	if errors.Is(err, errVersion) {
		fmt.Printf("elcache %s\n", node.Version)
		return 0
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "elcache: %v\n", err)
		return 2
	}
	hooks, breakNode, err := breakSwitches(os.Getenv)
	if err != nil {
		fmt.Fprintf(stderr, "elcache: %v\n", err)
		return 2
	}
	cfg.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	if cfg.AdminAddr != "" {
		// The profiler also shows where requests wait: one in 100 mutex
		// contentions, and blocking events sampled per 100µs blocked.
		runtime.SetMutexProfileFraction(100)
		runtime.SetBlockProfileRate(100_000)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	cfg.Hooks = hooks
	n, err := node.New(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "elcache: %v\n", err)
		return 1
	}
	breakNode(cfg.Logger)
	<-ctx.Done()
	// A second signal during shutdown kills the process.
	stop()
	cfg.Logger.Info("shutting down", "signal", context.Cause(ctx))
	if err := n.Close(); err != nil {
		fmt.Fprintf(stderr, "elcache: shutdown: %v\n", err)
		return 1
	}
	return 0
}

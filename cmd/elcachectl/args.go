package main

import (
	"errors"
	"flag"
	"io"
	"strings"
	"time"

	"github.com/elcache/elcache/client"
	cachev1 "github.com/elcache/elcache/proto/cache/v1"
)

// newFlagSet returns a silent flag set: run reports errors and usage.
func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

// parseArgs parses fs's flags wherever they appear in args and returns the
// other arguments in order. Everything after a "--" is an argument.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, usagef("%s: %v", fs.Name(), err)
		}
		rest := fs.Args()
		if atTerminator(fs, args[:len(args)-len(rest)]) {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// atTerminator reports whether fs.Parse stopped at "--" after parsing
// consumed, rather than taking "--" as the value of a flag.
func atTerminator(fs *flag.FlagSet, consumed []string) bool {
	n := len(consumed)
	if n == 0 || consumed[n-1] != "--" {
		return false
	}
	if n == 1 || !strings.HasPrefix(consumed[n-2], "-") || strings.Contains(consumed[n-2], "=") {
		return true
	}
	f := fs.Lookup(strings.TrimLeft(consumed[n-2], "-"))
	if f == nil {
		return true
	}
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// parseConsistency parses a --consistency value: linearizable, lease,
// bounded=DUR, session or eventual.
func parseConsistency(s string) (cachev1.Consistency, time.Duration, error) {
	name, arg, hasArg := strings.Cut(s, "=")
	levels := map[string]cachev1.Consistency{
		"linearizable": cachev1.Consistency_CONSISTENCY_LINEARIZABLE,
		"lease":        cachev1.Consistency_CONSISTENCY_LEASE,
		"bounded":      cachev1.Consistency_CONSISTENCY_BOUNDED,
		"session":      cachev1.Consistency_CONSISTENCY_SESSION,
		"eventual":     cachev1.Consistency_CONSISTENCY_EVENTUAL,
	}
	level, ok := levels[name]
	switch {
	case !ok:
		return 0, 0, usagef("unknown consistency %q: want linearizable, lease, bounded=DUR, session or eventual", s)
	case level != cachev1.Consistency_CONSISTENCY_BOUNDED && hasArg:
		return 0, 0, usagef("consistency %q takes no =value", name)
	case level != cachev1.Consistency_CONSISTENCY_BOUNDED:
		return level, 0, nil
	case !hasArg:
		return 0, 0, usagef("consistency bounded needs a staleness, e.g. bounded=100ms")
	}
	d, err := time.ParseDuration(arg)
	if err != nil || d <= 0 {
		return 0, 0, usagef("consistency %q: staleness must be a positive duration", s)
	}
	return level, d, nil
}

// parseMode parses a --mode value.
func parseMode(s string) (cachev1.WriteMode, error) {
	switch s {
	case "write-through":
		return cachev1.WriteMode_WRITE_MODE_WRITE_THROUGH, nil
	case "write-back":
		return cachev1.WriteMode_WRITE_MODE_WRITE_BACK, nil
	case "write-around":
		return cachev1.WriteMode_WRITE_MODE_WRITE_AROUND, nil
	case "cache-only":
		return cachev1.WriteMode_WRITE_MODE_CACHE_ONLY, nil
	}
	return 0, usagef("unknown mode %q: want write-through, write-back, write-around or cache-only", s)
}

// parseDurability parses a --durability value.
func parseDurability(s string) (client.Durability, error) {
	switch s {
	case "sync":
		return client.DurabilitySync, nil
	case "replicated":
		return client.DurabilityReplicated, nil
	}
	return 0, usagef("unknown durability %q: want sync or replicated", s)
}

// readFlags are the flags of a read command.
type readFlags struct{ consistency string }

func addReadFlags(fs *flag.FlagSet) *readFlags {
	f := &readFlags{}
	fs.StringVar(&f.consistency, "consistency", "", "")
	return f
}

func (f *readFlags) options() ([]client.ReadOption, error) {
	if f.consistency == "" {
		return nil, nil
	}
	level, staleness, err := parseConsistency(f.consistency)
	if err != nil {
		return nil, err
	}
	if level == cachev1.Consistency_CONSISTENCY_BOUNDED {
		return []client.ReadOption{client.Bounded(staleness)}, nil
	}
	return []client.ReadOption{client.WithConsistency(level)}, nil
}

// writeFlags are the flags of a write command.
type writeFlags struct {
	mode       string
	durability string
	ttl        time.Duration
}

// addWriteFlags adds --mode, --durability and, if withTTL, --ttl.
func addWriteFlags(fs *flag.FlagSet, withTTL bool) *writeFlags {
	f := &writeFlags{}
	fs.StringVar(&f.mode, "mode", "", "")
	fs.StringVar(&f.durability, "durability", "", "")
	if withTTL {
		fs.DurationVar(&f.ttl, "ttl", 0, "")
	}
	return f
}

func (f *writeFlags) options() ([]client.WriteOption, error) {
	var opts []client.WriteOption
	if f.mode != "" {
		m, err := parseMode(f.mode)
		if err != nil {
			return nil, err
		}
		opts = append(opts, client.WithWriteMode(m))
	}
	if f.durability != "" {
		d, err := parseDurability(f.durability)
		if err != nil {
			return nil, err
		}
		opts = append(opts, client.WithDurability(d))
	}
	if f.ttl < 0 {
		return nil, usagef("--ttl must not be negative")
	}
	if f.ttl > 0 {
		opts = append(opts, client.WithTTL(f.ttl))
	}
	return opts, nil
}

// wantArgs checks that cmd got n positional arguments, described by names.
// parseExact parses fs's flags in args and checks that exactly n arguments
// (named by names in the usage error) remain.
func parseExact(fs *flag.FlagSet, args []string, n int, names string) ([]string, error) {
	args, err := parseArgs(fs, args)
	if err != nil {
		return nil, err
	}
	return args, wantArgs(fs.Name(), args, n, names)
}

func wantArgs(cmd string, args []string, n int, names string) error {
	switch {
	case len(args) == n:
		return nil
	case n == 0:
		return usagef("%s takes no arguments", cmd)
	}
	return usagef("%s needs %s, got %d argument%s", cmd, names, len(args), plural(len(args)))
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

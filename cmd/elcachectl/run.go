package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"time"

	"google.golang.org/grpc"

	"github.com/elcache/elcache/client"
)

const usage = `Usage: elcachectl [--addr HOST:PORT] [--timeout DUR] [-o text|json] COMMAND [ARGS]

Flags, before COMMAND (-o also after it):
  --addr HOST:PORT  node(s) to start from, comma-separated; the client finds
                    the rest (default $ELCACHE_ADDR, else 127.0.0.1:7400)
  --token-file FILE file holding the token to authenticate with (default
                    $ELCACHE_TOKEN_FILE; $ELCACHE_TOKEN holds the token itself)
  --tls-ca-file FILE  connect with TLS, verifying the nodes with these CA
                    certificates ($ELCACHE_TLS_CA_FILE)
  --tls-cert-file FILE, --tls-key-file FILE
                    client certificate for nodes that require one
                    ($ELCACHE_TLS_CERT_FILE, $ELCACHE_TLS_KEY_FILE)
  --timeout DUR     deadline for the whole command; 0 means none (default 5s);
                    drain waits for the node to empty under its own --timeout
  -o text|json      output format (default text)

Commands:
  put KEY VALUE [--ttl DUR] [--mode MODE] [--durability D]
                    (silent on success; -o json shows the version)
  get KEY [--consistency LEVEL]
  del KEY [--mode MODE] [--durability D]
  cas KEY NEWVALUE (--expect-version N | --expect-value V | --expect-absent)
      [--ttl DUR] [--mode MODE] [--durability D]
  mget KEY... [--consistency LEVEL]
  mput KEY VALUE [KEY VALUE...] [--ttl DUR] [--mode MODE] [--durability D]
  scan [--prefix P] [--limit N] [--page-size N] [--keys-only] [--cursor C]
       [--consistency LEVEL]
  stats
  health            exit 0 when the node serves, 1 while it is not ready
  version

Cluster commands (any node answers):
  members           the nodes with their gossip and placement state and how
                    many replicas and leaderships each has; the partition
                    map version and the meta group's leader
  partitions        each partition's leader and replicas (by node name, the
                    preferred leader first) and the map version
  drain NODE [--wait=false] [--timeout DUR]
                    move every replica and leadership off NODE (a name or an
                    id), then wait (default 5m) until it holds none and say
                    when it can be stopped; --wait=false returns at once

Backups (need an admin token when the nodes check tokens):
  backup FILE       a consistent copy of every partition, each read from its
                    leader after a quorum round, written to FILE (atomically)
  restore FILE [--mode MODE] [--durability D] [--force]
                    load FILE into an empty cluster (--force: a non-empty
                    one); entries keep their remaining TTL and get new
                    versions; MODE defaults to cache-only

Benchmark:
  bench [FLAGS]     a YCSB workload against the cluster, then its throughput
                    and latency; the flags are elcache-bench's (bench -h
                    lists them) and --timeout does not apply

MODE is write-through, write-back, write-around or cache-only. D is sync
(acknowledged once a quorum has fsynced the write) or replicated (once a
quorum has written it to the OS; fsynced within 10ms); write-through and
write-around are always sync. LEVEL is linearizable, lease, bounded=DUR
(e.g. bounded=100ms), session or eventual. Without them the cluster's
defaults apply. Command flags may come before or
after the arguments; put -- before arguments that start with '-'.

scan follows cursors until the scan ends or --limit (0: no limit) entries
are printed; if entries remain, the cursor to pass to --cursor is printed
(on stderr in text mode, as next_cursor in JSON).

Text output: get prints the raw value and a newline; mget and scan print
KEY<TAB>VALUE lines, "(not found)" for a missing key. -o json prints one
JSON object per command; keys and values are strings when they are valid
UTF-8, else base64 in key_b64 and value_b64.

Exit status: 0 on success; 1 when get finds no key (it prints "not found" on
stderr), cas does not swap (it prints the current version) or the cluster
refuses a drain (unknown or ambiguous NODE, or the last active node); 2 on a
usage error and on any other error, including a drain that did not finish
within its --timeout (the node keeps draining).
`

// usageError is a malformed command line: run prints it with the usage and
// exits 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// exitStatus ends a command with a status whose message, if any, the command
// printed itself.
type exitStatus int

func (e exitStatus) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// env is what a command runs with.
type env struct {
	// ctx ends at the --timeout deadline or on SIGINT; base only on SIGINT,
	// for commands that wait longer than one request (drain).
	ctx    context.Context
	base   context.Context
	addr   string
	token  string      // from --token-file or ELCACHE_TOKEN
	tls    *tls.Config // from --tls-ca-file etc.; nil: plaintext
	json   bool
	stdout io.Writer
	stderr io.Writer
	c      *client.Client
	cc     *grpc.ClientConn // for the calls the client package lacks
}

// client connects on first use, so that usage errors need no server.
func (e *env) client() (*client.Client, error) {
	if e.c == nil {
		cfg := client.DefaultConfig()
		cfg.Seeds = strings.Split(e.addr, ",")
		cfg.DialTimeout = 0 // fail fast with the RPC's own error
		e.credentials(&cfg)
		c, err := client.New(e.ctx, cfg)
		if err != nil {
			return nil, err
		}
		e.c = c
	}
	return e.c, nil
}

// run is elcachectl with the arguments after the program name; it returns
// the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	addr := os.Getenv("ELCACHE_ADDR")
	if addr == "" {
		addr = "127.0.0.1:7400"
	}
	fs := newFlagSet("elcachectl")
	fs.StringVar(&addr, "addr", addr, "")
	timeout := fs.Duration("timeout", 5*time.Second, "")
	tokenFile := fs.String("token-file", os.Getenv("ELCACHE_TOKEN_FILE"), "")
	caFile := fs.String("tls-ca-file", os.Getenv("ELCACHE_TLS_CA_FILE"), "")
	certFile := fs.String("tls-cert-file", os.Getenv("ELCACHE_TLS_CERT_FILE"), "")
	keyFile := fs.String("tls-key-file", os.Getenv("ELCACHE_TLS_KEY_FILE"), "")
	output := fs.String("o", "text", "")
	err := fs.Parse(args)
	switch {
	case err == nil:
		err = checkGlobals(fs, *output, *timeout)
	case !errors.Is(err, flag.ErrHelp):
		err = usagef("%v", err)
	}
	if err != nil {
		return report(err, stdout, stderr)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	base := ctx
	if *timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *timeout)
		defer cancel()
	}
	token, err := readToken(*tokenFile, os.Getenv("ELCACHE_TOKEN"))
	if err != nil {
		return report(err, stdout, stderr)
	}
	tlsCfg, err := clientTLS(*caFile, *certFile, *keyFile)
	if err != nil {
		return report(err, stdout, stderr)
	}
	e := &env{ctx: ctx, base: base, addr: addr, token: token, tls: tlsCfg, json: *output == "json", stdout: stdout, stderr: stderr}
	cmd, _ := lookup(fs.Arg(0))
	err = cmd(e, fs.Args()[1:])
	if e.c != nil {
		if cerr := e.c.Close(); err == nil {
			err = cerr
		}
	}
	if e.cc != nil {
		if cerr := e.cc.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("close connection: %w", cerr)
		}
	}
	return report(err, stdout, stderr)
}

func checkGlobals(fs *flag.FlagSet, output string, timeout time.Duration) error {
	switch {
	case fs.NArg() == 0:
		return usagef("no command")
	case fs.Arg(0) == "help":
		return flag.ErrHelp
	case output != "text" && output != "json":
		return usagef("-o must be text or json, not %q", output)
	case timeout < 0:
		return usagef("--timeout must not be negative")
	}
	if _, ok := lookup(fs.Arg(0)); !ok {
		return usagef("unknown command %q", fs.Arg(0))
	}
	return nil
}

// report prints err as its kind asks and returns the exit status.
func report(err error, stdout, stderr io.Writer) int {
	var ue *usageError
	var st exitStatus
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprint(stdout, usage)
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "elcachectl: %s\n\n%s", ue.msg, usage)
		return 2
	case errors.As(err, &st):
		return int(st)
	default:
		fmt.Fprintf(stderr, "elcachectl: %v\n", err)
		return 2
	}
}

// lookup returns the command called name.
func lookup(name string) (func(*env, []string) error, bool) {
	switch name {
	case "put":
		return cmdPut, true
	case "get":
		return cmdGet, true
	case "del":
		return cmdDel, true
	case "cas":
		return cmdCAS, true
	case "mget":
		return cmdMGet, true
	case "mput":
		return cmdMPut, true
	case "scan":
		return cmdScan, true
	case "stats":
		return cmdStats, true
	case "health":
		return cmdHealth, true
	case "version":
		return cmdVersion, true
	case "members":
		return cmdMembers, true
	case "partitions":
		return cmdPartitions, true
	case "drain":
		return cmdDrain, true
	case "backup":
		return cmdBackup, true
	case "restore":
		return cmdRestore, true
	case "bench":
		return cmdBench, true
	}
	return nil, false
}

// flagSet returns a command's flag set. Every command also accepts -o after
// its name, so `elcachectl get k -o json` works as well as
// `elcachectl -o json get k`.
func (e *env) flagSet(name string) *flag.FlagSet {
	fs := newFlagSet(name)
	fs.Func("o", "output format: text or json", func(v string) error {
		switch v {
		case "text", "json":
			e.json = v == "json"
			return nil
		}
		return fmt.Errorf("must be text or json, not %q", v)
	})
	return fs
}

// readToken returns the token in file (its first line, trimmed) or else
// env. The token is never printed.
func readToken(file, env string) (string, error) {
	if file == "" {
		return strings.TrimSpace(env), nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", usagef("--token-file: %v", err)
	}
	first, _, _ := strings.Cut(string(b), "\n")
	if t := strings.TrimSpace(first); t != "" {
		return t, nil
	}
	return "", usagef("--token-file %s is empty", file)
}

// clientTLS builds the TLS settings of the flags: nil without a CA file.
func clientTLS(caFile, certFile, keyFile string) (*tls.Config, error) {
	if caFile == "" {
		if certFile != "" || keyFile != "" {
			return nil, usagef("--tls-cert-file and --tls-key-file need --tls-ca-file")
		}
		return nil, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, usagef("--tls-ca-file: %v", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, usagef("--tls-ca-file %s holds no PEM certificate", caFile)
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}
	if certFile != "" || keyFile != "" {
		kp, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, usagef("client certificate: %v", err)
		}
		cfg.Certificates = []tls.Certificate{kp}
	}
	return cfg, nil
}

package main

import (
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/elcache/elcache/internal/respserver"
	"github.com/elcache/elcache/node"
	cachev1 "github.com/elcache/elcache/proto/cache/v1"
	"github.com/elcache/elcache/storage/sqlstore"
	"gopkg.in/yaml.v3"
)

// setting is one configurable value, reachable as a flag, an environment
// variable and a YAML key.
type setting struct {
	name  string
	usage string
	set   func(*node.Config, string) error
	// get renders the default for the usage text.
	get func(*node.Config) string
}

func settings() []setting {
	str := func(name, usage string, field func(*node.Config) *string) setting {
		return setting{name, usage,
			func(c *node.Config, v string) error { *field(c) = v; return nil },
			func(c *node.Config) string { return *field(c) }}
	}
	dur := func(name, usage string, field func(*node.Config) *time.Duration) setting {
		return setting{name, usage,
			func(c *node.Config, v string) error {
				d, err := time.ParseDuration(v)
				*field(c) = d
				return err
			},
			func(c *node.Config) string { return field(c).String() }}
	}
	return []setting{
		str("node-name", "name of this node", func(c *node.Config) *string { return &c.NodeName }),
		str("data-dir", "directory for the node's data", func(c *node.Config) *string { return &c.DataDir }),
		str("grpc-addr", "address for the gRPC API: clients, peers and Raft traffic", func(c *node.Config) *string { return &c.GRPCAddr }),
		str("advertise-addr", "gRPC address other nodes and clients use to reach this node (default: grpc-addr; set it when grpc-addr listens on all interfaces)",
			func(c *node.Config) *string { return &c.AdvertiseAddr }),
		str("gossip-addr", "host:port for cluster gossip (TCP and UDP)", func(c *node.Config) *string { return &c.GossipAddr }),
		{"join", "comma-separated gossip addresses of nodes of the cluster to join",
			func(c *node.Config, v string) error { c.Join = splitList(v); return nil },
			func(c *node.Config) string { return strings.Join(c.Join, ",") }},
		{"bootstrap-expect", "form a new cluster once this many nodes see each other (0: alone when --join is empty, else only join)",
			func(c *node.Config, v string) error {
				n, err := strconv.Atoi(v)
				c.BootstrapExpect = n
				return err
			},
			func(c *node.Config) string { return strconv.Itoa(c.BootstrapExpect) }},
		str("backend", "backing database URL, sqlite:///path or postgres://... (empty: a pure cache)", func(c *node.Config) *string { return &c.Backend }),
		str("backend-table", "table of the backing database (default elcache_entries)", func(c *node.Config) *string { return &c.Backing.Table }),
		{"backend-create-table", "create the backing table at start if it is missing (true or false)",
			func(c *node.Config, v string) error {
				b, err := strconv.ParseBool(v)
				c.Backing.CreateTable = b
				return err
			},
			func(c *node.Config) string { return strconv.FormatBool(c.Backing.CreateTable) }},
		{"backend-columns", "column names of the backing table that differ from the defaults, as comma-separated role=name pairs " +
			"(roles: " + columnRoleList() + "), e.g. key=cache_key,value=payload",
			func(c *node.Config, v string) error {
				cols, err := parseColumns(v)
				c.Backing.Columns = cols
				return err
			},
			func(c *node.Config) string { return formatColumns(c.Backing.Columns) }},
		{"default-write-mode", "write mode when a request names none: write_through, write_back, write_around or cache_only (default: write_through with --backend, else cache_only)",
			func(c *node.Config, v string) error {
				m, ok := cachev1.WriteMode_value["WRITE_MODE_"+strings.ToUpper(v)]
				if !ok {
					return fmt.Errorf("unknown write mode %q", v)
				}
				c.DefaultWriteMode = cachev1.WriteMode(m)
				return nil
			},
			func(c *node.Config) string {
				if c.DefaultWriteMode == cachev1.WriteMode_WRITE_MODE_UNSPECIFIED {
					return ""
				}
				return strings.ToLower(strings.TrimPrefix(c.DefaultWriteMode.String(), "WRITE_MODE_"))
			}},
		{"durability", "when a write that names no durability is acknowledged: sync (once a quorum of its partition's replicas " +
			"has fsynced it) or replicated (once a quorum has written it to the operating system, fsynced within --replicated-sync-interval: " +
			"it survives any process crash and the loss of a minority of machines, and can lose the last interval only if a majority of a " +
			"partition's machines lose power at once); write_through and write_around writes are always sync",
			func(c *node.Config, v string) error {
				d, ok := cachev1.Durability_value["DURABILITY_"+strings.ToUpper(v)]
				if !ok || d == int32(cachev1.Durability_DURABILITY_UNSPECIFIED) {
					return fmt.Errorf("unknown durability %q (want sync or replicated)", v)
				}
				c.DefaultDurability = cachev1.Durability(d)
				return nil
			},
			func(c *node.Config) string {
				if c.DefaultDurability == cachev1.Durability_DURABILITY_UNSPECIFIED {
					return "sync"
				}
				return strings.ToLower(strings.TrimPrefix(c.DefaultDurability.String(), "DURABILITY_"))
			}},
		dur("replicated-sync-interval", "how long a replicated write, acknowledged once written to the operating system, waits for its fsync on each replica (at most 1s)",
			func(c *node.Config) *time.Duration { return &c.ReplicatedSyncInterval }),
		dur("log-sync-gap", "least time between two fsyncs of the Raft log: synced writes that arrive meanwhile share the next one (at most 10ms)",
			func(c *node.Config) *time.Duration { return &c.LogSyncGap }),
		uintSetting("write-back-max-dirty", "most write-back entries per partition waiting for the database before writers wait (default 10000)",
			func(c *node.Config) *uint64 { return &c.Backing.MaxDirty }),
		dur("negative-ttl", "how long a key the database does not have is remembered as absent (0: not at all)",
			func(c *node.Config) *time.Duration { return &c.Backing.NegativeTTL }),
		{"auth-token-file", "file of client tokens, one \"NAME ROLE SECRET\" a line (roles read, write, admin, peer; the first peer token is what nodes send each other); empty: no authentication",
			func(c *node.Config, v string) error {
				if v == "" {
					c.Tokens = nil
					return nil
				}
				tokens, err := node.ReadTokenFile(v)
				c.Tokens = tokens
				return err
			},
			func(c *node.Config) string { return "" }},
		str("tls-cert-file", "PEM certificate the node serves (clients and peers) and presents to its peers; with tls-key-file and tls-ca-file turns TLS on",
			func(c *node.Config) *string { return &c.TLS.Cert }),
		str("tls-key-file", "PEM private key of tls-cert-file", func(c *node.Config) *string { return &c.TLS.Key }),
		str("tls-ca-file", "PEM CA certificates that sign the nodes' (and with tls-client-auth the clients') certificates",
			func(c *node.Config) *string { return &c.TLS.CA }),
		{"tls-client-auth", "require every client to present a certificate signed by tls-ca-file (mutual TLS): true or false",
			func(c *node.Config, v string) error {
				b, err := strconv.ParseBool(v)
				c.TLS.RequireClientCert = b
				return err
			},
			func(c *node.Config) string { return strconv.FormatBool(c.TLS.RequireClientCert) }},
		{"rate-limit", "requests a second each client (token, or address without tokens) may make; 0: no limit",
			func(c *node.Config, v string) error {
				f, err := strconv.ParseFloat(v, 64)
				c.RateLimit = f
				return err
			},
			func(c *node.Config) string { return strconv.FormatFloat(c.RateLimit, 'g', -1, 64) }},
		{"rate-burst", "requests a client may make at once above its rate (default: one second's worth)",
			func(c *node.Config, v string) error {
				b, err := strconv.Atoi(v)
				c.RateBurst = b
				return err
			},
			func(c *node.Config) string { return strconv.Itoa(c.RateBurst) }},
		str("admin-addr", "HTTP address for the Go profiler, /debug/pprof/, with block and mutex profiles sampled (empty: off; keep it private)", func(c *node.Config) *string { return &c.AdminAddr }),
		str("resp-addr", "address for the Redis protocol (RESP2 and RESP3: redis-cli, redis-benchmark, any Redis client), e.g. 0.0.0.0:6379 (empty: off)",
			func(c *node.Config) *string { return &c.RESP.Addr }),
		{"resp-consistency", "read level of a new Redis connection: linearizable, lease, bounded, session or eventual (default: --default-consistency); ELCACHE.CONSISTENCY changes a connection's",
			func(c *node.Config, v string) error {
				l, err := respserver.ParseLevel(v)
				c.RESP.Consistency = l
				return err
			},
			func(c *node.Config) string {
				if c.RESP.Consistency == cachev1.Consistency_CONSISTENCY_UNSPECIFIED {
					return ""
				}
				return strings.ToLower(strings.TrimPrefix(c.RESP.Consistency.String(), "CONSISTENCY_"))
			}},
		dur("resp-max-staleness", "staleness bound of a new Redis connection's reads when --resp-consistency is bounded",
			func(c *node.Config) *time.Duration { return &c.RESP.MaxStaleness }),
		{"resp-write-mode", "write mode of a new Redis connection: none (cache only), through, back or around (default: --default-write-mode); INCR, APPEND, SET NX and the other read-modify-write commands need none or back",
			func(c *node.Config, v string) error {
				m, err := respserver.ParseMode(v)
				c.RESP.WriteMode = m
				return err
			},
			func(c *node.Config) string {
				if c.RESP.WriteMode == cachev1.WriteMode_WRITE_MODE_UNSPECIFIED {
					return ""
				}
				return respserver.ModeName(c.RESP.WriteMode)
			}},
		str("metrics-addr", "HTTP address for Prometheus metrics at /metrics (empty: off)", func(c *node.Config) *string { return &c.MetricsAddr }),
		{"partitions", "number of partitions, fixed when the data directory is created",
			func(c *node.Config, v string) error {
				n, err := strconv.ParseUint(v, 10, 32)
				c.Partitions = uint32(n)
				return err
			},
			func(c *node.Config) string { return strconv.FormatUint(uint64(c.Partitions), 10) }},
		{"capacity", "budget of live entry bytes, e.g. 512MiB or 2GiB",
			func(c *node.Config, v string) error {
				n, err := parseBytes(v)
				c.CapacityBytes = n
				return err
			},
			func(c *node.Config) string { return formatBytes(c.CapacityBytes) }},
		{"default-consistency", "read level when a request names none: linearizable, lease, session or eventual",
			func(c *node.Config, v string) error {
				l, ok := cachev1.Consistency_value["CONSISTENCY_"+strings.ToUpper(v)]
				if !ok {
					return fmt.Errorf("unknown level %q", v)
				}
				c.DefaultConsistency = cachev1.Consistency(l)
				return nil
			},
			func(c *node.Config) string {
				return strings.ToLower(strings.TrimPrefix(c.DefaultConsistency.String(), "CONSISTENCY_"))
			}},
		{"replication-factor", "replicas of each partition, capped by the number of nodes",
			func(c *node.Config, v string) error {
				n, err := strconv.Atoi(v)
				c.Cluster.ReplicationFactor = n
				return err
			},
			func(c *node.Config) string { return strconv.Itoa(c.Cluster.ReplicationFactor) }},
		dur("failure-grace", "how long a node may be unreachable before its replicas are placed elsewhere",
			func(c *node.Config) *time.Duration { return &c.Cluster.FailureGrace }),
		{"gossip-key-file", "file holding the gossip encryption key (16, 24 or 32 bytes, raw or base64)",
			func(c *node.Config, v string) error {
				if v == "" {
					c.Cluster.GossipKey = nil
					return nil
				}
				key, err := readKeyFile(v)
				c.Cluster.GossipKey = key
				return err
			},
			func(c *node.Config) string { return "" }},
		dur("raft-heartbeat-timeout", "Raft heartbeat timeout", func(c *node.Config) *time.Duration { return &c.Raft.HeartbeatTimeout }),
		dur("raft-election-timeout", "Raft election timeout", func(c *node.Config) *time.Duration { return &c.Raft.ElectionTimeout }),
		dur("raft-lease-timeout", "Raft leader lease timeout", func(c *node.Config) *time.Duration { return &c.Raft.LeaderLeaseTimeout }),
		dur("raft-commit-timeout", "Raft commit timeout", func(c *node.Config) *time.Duration { return &c.Raft.CommitTimeout }),
		dur("raft-snapshot-interval", "how often a partition checks whether to snapshot", func(c *node.Config) *time.Duration { return &c.Raft.SnapshotInterval }),
		uintSetting("raft-snapshot-threshold", "log entries since the last snapshot that trigger a new one", func(c *node.Config) *uint64 { return &c.Raft.SnapshotThreshold }),
		uintSetting("raft-trailing-logs", "log entries kept after a snapshot, for slow followers", func(c *node.Config) *uint64 { return &c.Raft.TrailingLogs }),
	}
}

func uintSetting(name, usage string, field func(*node.Config) *uint64) setting {
	return setting{name, usage,
		func(c *node.Config, v string) error {
			n, err := strconv.ParseUint(v, 10, 64)
			*field(c) = n
			return err
		},
		func(c *node.Config) string { return strconv.FormatUint(*field(c), 10) }}
}

// errVersion asks run to print the version and exit.
var errVersion = errors.New("version requested")

// loadConfig builds the node configuration from defaults, the YAML file,
// the environment and the flags, in that order of precedence (lowest first).
func loadConfig(args []string, getenv func(string) string, stderr io.Writer) (node.Config, slog.Level, error) {
	cfg := node.DefaultConfig()
	all := settings()
	fs := flag.NewFlagSet("elcache", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", getenv("ELCACHE_CONFIG"), "YAML file of settings (keys are flag names)")
	logLevel := fs.String("log-level", envOr(getenv, "ELCACHE_LOG_LEVEL", "info"), "debug, info, warn or error")
	version := fs.Bool("version", false, "print the version and exit")
	values := make(map[string]*string, len(all))
	for _, s := range all {
		values[s.name] = fs.String(s.name, s.get(&cfg), s.usage)
	}
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: elcache [flags]\n\nRuns an elcache node. Every flag also reads ELCACHE_<FLAG> from the environment\n(e.g. ELCACHE_DATA_DIR) and a key of the same name from the --config YAML file.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return cfg, 0, err
	}
	if *version {
		return cfg, 0, errVersion
	}
	if fs.NArg() > 0 {
		return cfg, 0, fmt.Errorf("unexpected argument %q (see --help)", fs.Arg(0))
	}
	byName := make(map[string]setting, len(all))
	for _, s := range all {
		byName[s.name] = s
	}
	var errs []error
	apply := func(source, name string, s setting, v string) {
		if err := s.set(&cfg, v); err != nil {
			errs = append(errs, fmt.Errorf("%s %s=%q: %v", source, name, v, err))
		}
	}
	if *configPath != "" {
		file, err := readYAML(*configPath)
		if err != nil {
			return cfg, 0, err
		}
		keys := make([]string, 0, len(file))
		for k := range file {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			s, ok := byName[k]
			if !ok {
				errs = append(errs, fmt.Errorf("config %s: unknown key %q", *configPath, k))
				continue
			}
			apply("config "+*configPath+":", k, s, file[k])
		}
	}
	for _, s := range all {
		if v := getenv(envName(s.name)); v != "" {
			apply("env", envName(s.name), s, v)
		}
	}
	fs.Visit(func(f *flag.Flag) {
		if s, ok := byName[f.Name]; ok {
			apply("flag", f.Name, s, *values[f.Name])
		}
	})
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		errs = append(errs, fmt.Errorf("log-level %q: %v", *logLevel, err))
	}
	if len(errs) > 0 {
		return cfg, 0, errors.Join(errs...)
	}
	return cfg, level, cfg.Validate()
}

func envName(flagName string) string {
	return "ELCACHE_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

func envOr(getenv func(string) string, key, def string) string {
	if v := getenv(key); v != "" {
		return v
	}
	return def
}

// readYAML reads a flat YAML mapping of setting names to scalar values (a
// list is accepted for join).
func readYAML(path string) (map[string]string, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	out := make(map[string]string, len(doc))
	for k, v := range doc {
		switch x := v.(type) {
		case []any:
			parts := make([]string, len(x))
			for i, p := range x {
				parts[i] = fmt.Sprint(p)
			}
			out[k] = strings.Join(parts, ",")
		case map[string]any:
			return nil, fmt.Errorf("config %s: key %q must be a scalar or a list", path, k)
		default:
			out[k] = fmt.Sprint(x)
		}
	}
	return out, nil
}

func splitList(v string) []string {
	var out []string
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// columnRoles are the roles of --backend-columns, in table order, with the
// field each one sets.
var columnRoles = []struct {
	role  string
	field func(*sqlstore.Columns) *string
}{
	{"key", func(c *sqlstore.Columns) *string { return &c.Key }},
	{"value", func(c *sqlstore.Columns) *string { return &c.Value }},
	{"version", func(c *sqlstore.Columns) *string { return &c.Version }},
	{"deleted", func(c *sqlstore.Columns) *string { return &c.Deleted }},
	{"idempotency_key", func(c *sqlstore.Columns) *string { return &c.IdempotencyKey }},
	{"updated_at", func(c *sqlstore.Columns) *string { return &c.UpdatedAt }},
}

func columnRoleList() string {
	roles := make([]string, len(columnRoles))
	for i, r := range columnRoles {
		roles[i] = r.role
	}
	return strings.Join(roles, ", ")
}

// parseColumns parses comma-separated role=name pairs, e.g.
// "key=cache_key,value=payload", into column names; a role left out keeps
// its default name. It reports every malformed pair, unknown or repeated
// role and empty or invalid name.
func parseColumns(v string) (sqlstore.Columns, error) {
	var cols sqlstore.Columns
	var problems []string
	seen := map[string]bool{}
	for _, pair := range strings.Split(v, ",") {
		if pair = strings.TrimSpace(pair); pair == "" {
			continue
		}
		role, name, ok := strings.Cut(pair, "=")
		role, name = strings.TrimSpace(role), strings.TrimSpace(name)
		if !ok {
			problems = append(problems, fmt.Sprintf("%q is not role=name", pair))
			continue
		}
		var field func(*sqlstore.Columns) *string
		for _, r := range columnRoles {
			if r.role == role {
				field = r.field
			}
		}
		switch {
		case field == nil:
			problems = append(problems, fmt.Sprintf("unknown column role %q (want one of %s)", role, columnRoleList()))
		case seen[role]:
			problems = append(problems, fmt.Sprintf("column role %q is given more than once", role))
		case name == "":
			problems = append(problems, fmt.Sprintf("column role %q has an empty name", role))
		default:
			*field(&cols) = name
		}
		seen[role] = true
	}
	if len(problems) == 0 {
		if err := (sqlstore.Options{Columns: cols}).Validate(); err != nil {
			problems = append(problems, strings.ReplaceAll(err.Error(), "\n", "; "))
		}
	}
	if len(problems) > 0 {
		return sqlstore.Columns{}, errors.New(strings.Join(problems, "; "))
	}
	return cols, nil
}

// formatColumns renders the names that are set as parseColumns reads them.
func formatColumns(cols sqlstore.Columns) string {
	var pairs []string
	for _, r := range columnRoles {
		if name := *r.field(&cols); name != "" {
			pairs = append(pairs, r.role+"="+name)
		}
	}
	return strings.Join(pairs, ",")
}

var byteUnits = []struct {
	suffix string
	mult   uint64
}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"TB", 1e12}, {"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3}, {"B", 1}}

// parseBytes parses a byte count with an optional unit (KiB, MiB, GiB, TiB,
// KB, MB, GB, TB, B).
func parseBytes(v string) (uint64, error) {
	s := strings.TrimSpace(v)
	mult := uint64(1)
	for _, u := range byteUnits {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("not a byte size (want e.g. 512MiB): %q", v)
	}
	if n > 0 && mult > ^uint64(0)/n {
		return 0, fmt.Errorf("byte size %q overflows", v)
	}
	return n * mult, nil
}

func formatBytes(n uint64) string {
	for _, u := range byteUnits[:4] {
		if n >= u.mult && n%u.mult == 0 {
			return fmt.Sprintf("%d%s", n/u.mult, u.suffix)
		}
	}
	return strconv.FormatUint(n, 10)
}

// readKeyFile reads a gossip key: the file holds the key itself (16, 24 or
// 32 bytes) or its base64 encoding; surrounding whitespace is ignored.
func readKeyFile(path string) ([]byte, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	text := strings.TrimSpace(string(raw))
	if dec, err := base64.StdEncoding.DecodeString(text); err == nil && (len(dec) == 16 || len(dec) == 24 || len(dec) == 32) {
		return dec, nil
	}
	if n := len(text); n == 16 || n == 24 || n == 32 {
		return []byte(text), nil
	}
	return nil, fmt.Errorf("%s: a gossip key must be 16, 24 or 32 bytes, raw or base64", path)
}

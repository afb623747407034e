package jepsen

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"

	"github.com/elcache/elcache/client"
	cachev1 "github.com/elcache/elcache/proto/cache/v1"
	"github.com/elcache/elcache/ring"
	"github.com/elcache/elcache/storage/sqlstore"
)

// Config describes a run.
type Config struct {
	// Bin is the elcache server binary.
	Bin string
	// Out is the run's folder: history.jsonl, nemesis.log, results.json,
	// index.html, linearizability.html and nodes/ (data and logs).
	Out string
	// Database is the PostgreSQL URL the harness reaches (on the host);
	// each node reaches it through its own DBProxy. Empty: no backing
	// database, and no write-mode workload or database faults.
	Database string

	Profile Profile
	Seed    int64
	// Reproduce is the command line that reruns this run, for the report.
	Reproduce string
	// Logf prints progress.
	Logf func(format string, args ...any)
}

// Profile is what a run does: how long, which workloads, which faults.
type Profile struct {
	Name       string
	Nodes      int
	Partitions int
	Duration   time.Duration
	// Faults are the kinds the nemesis draws from, each in turn in a
	// seeded order; a fault is held FaultMin..FaultMax, then healed for
	// QuietMin..QuietMax.
	Faults             []string
	FaultMin, FaultMax time.Duration
	QuietMin, QuietMax time.Duration
	// EarlyFaults are kinds the schedule's first round draws within its
	// first half, so that a short run makes each at least once.
	EarlyFaults []string
	// EndInFault leaves the last fault in force when the workload stops
	// (it is healed before the final checks).
	EndInFault bool
	// Client processes per workload.
	Register, Set, Session, Bounded, WriteMode int
	// Pace is the mean pause between two operations of a process (10ms
	// if zero).
	Pace time.Duration
	// SetReplicated and RegisterReplicated are the shares, in percent,
	// of the set workload's adds and the register workload's writes made
	// at REPLICATED durability; the others, and every write of the other
	// workloads, are SYNC.
	SetReplicated, RegisterReplicated int
	// RegisterKeys is how many keys the register workload spreads over
	// (10 if zero).
	RegisterKeys int
	// RegisterMix is the register workload's share, in percent, of
	// linearizable gets, lease gets, puts and CASes (25/25/35/15 if
	// zero).
	RegisterMix [4]int
	// KeyPeriod is how long the register and write-mode keys last before
	// the next generation's take over (10s if zero): it bounds the
	// operations per key the linearizability search sees.
	KeyPeriod time.Duration
	// ConvergeTimeout is how long the convergence check waits, after the
	// heal, for every partition's replicas to agree (90s if zero).
	ConvergeTimeout time.Duration
	// LinTimeout bounds the linearizability search (3m if zero); running
	// out counts as a failure.
	LinTimeout time.Duration
	// FollowLeader makes every register process route to the leader it
	// last learned (else every other one does).
	FollowLeader bool
	// ServerFlags are extra elcache flags for every node.
	ServerFlags []string
	// WriteModes the write-mode workload uses.
	WriteModes []string
	// NearCache makes the set, session and bounded workloads read through
	// a Go client (package client) with a near cache, one client per
	// process, and fewer of their operations writes, so that reads find
	// keys cached. Their writes still go straight to a node: every change
	// a near cache must drop then reaches it over its Changes stream,
	// which is what the faults attack. The near-cache checker fails the
	// run if one of these workloads had no read served by a near cache.
	NearCache bool
	// Break names the self-test switches the nodes run with; the run
	// must then be invalid with one of Expect's anomaly kinds.
	Break  []string
	Expect []string
}

// Run runs one test: it starts the network, the database links and the
// cluster, runs the workloads under the nemesis, heals everything, checks
// the history and writes the report. The error is for a run that could
// not be carried out; a run whose checks fail returns a Summary with
// Valid false.
// serverLease is the read lease of a partition leader with the server's
// default Raft timeouts (node.leaseDuration: 7/8 of the 250 ms heartbeat
// timeout): the pause nemeses stop a leader for a third of it, or for
// three times it.
const serverLease = 219 * time.Millisecond

func Run(ctx context.Context, cfg Config) (Summary, error) {
	pr := cfg.Profile
	logf := cfg.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	sum := Summary{Seed: cfg.Seed, Profile: pr.Name, Nodes: pr.Nodes, Broken: pr.Break, Reproduce: cfg.Reproduce}
	if err := os.MkdirAll(filepath.Join(cfg.Out, "nodes"), 0o755); err != nil {
		return sum, err
	}
	rec, err := NewRecorder(filepath.Join(cfg.Out, "history.jsonl"))
	if err != nil {
		return sum, err
	}
	defer rec.Close()
	nemLog, err := os.Create(filepath.Join(cfg.Out, "nemesis.log"))
	if err != nil {
		return sum, err
	}
	defer nemLog.Close()

	network, err := NewNetwork("ecj", "10.213.0")
	if err != nil {
		return sum, err
	}
	defer network.Cleanup()

	spares := 0
	if slices.Contains(pr.Faults, KindMemberJoin) {
		spares = 1
	}
	names := make([]string, pr.Nodes+spares)
	for i := range names {
		names[i] = fmt.Sprintf("n%d", i+1)
	}
	proxies := make(map[string]*DBProxy)
	var backend func(string) string
	var store *sqlstore.Store
	var db *sql.DB
	if cfg.Database != "" {
		u, err := url.Parse(cfg.Database)
		if err != nil {
			return sum, fmt.Errorf("jepsen: database URL: %w", err)
		}
		for _, n := range names {
			p, err := NewDBProxy(network.HostIP+":0", u.Host)
			if err != nil {
				return sum, err
			}
			defer p.Close()
			proxies[n] = p
		}
		backend = func(name string) string {
			v := *u
			v.Host = proxies[name].Addr()
			return v.String()
		}
		if store, db, err = prepareDatabase(ctx, cfg.Database); err != nil {
			return sum, err
		}
		defer store.Close()
		defer db.Close()
	}
	var env []string
	if len(pr.Break) > 0 {
		env = append(env, "ELCACHE_BREAK="+strings.Join(pr.Break, ","))
	}
	cluster, err := NewCluster(network, ClusterConfig{Bin: cfg.Bin, Dir: filepath.Join(cfg.Out, "nodes"), Nodes: pr.Nodes,
		Spares: spares, Partitions: pr.Partitions, Backend: backend, Env: env, Extra: pr.ServerFlags,
		Disks: slices.Contains(pr.Faults, KindLeaderStall)})
	if cluster != nil {
		defer cluster.Close()
	}
	if err != nil {
		return sum, err
	}
	started := time.Now()
	if err := cluster.Start(90 * time.Second); err != nil {
		return sum, err
	}
	if err := waitLeaders(ctx, cluster, 60*time.Second); err != nil {
		return sum, err
	}
	logf("cluster of %d nodes up in %v (netem: %v)", pr.Nodes, time.Since(started).Round(time.Millisecond), network.HasNetem())

	parts, err := ring.NewPartitioner(uint32(pr.Partitions))
	if err != nil {
		return sum, err
	}
	w := &workloads{rec: rec, cluster: cluster, parts: parts, pace: cmp.Or(pr.Pace, 10*time.Millisecond), genPeriod: cmp.Or(pr.KeyPeriod, 10*time.Second), start: time.Now()}
	rng := rand.New(rand.NewPCG(uint64(cfg.Seed), 0x6a65707365))
	hot := w.hotPartition
	if pr.Register == 0 && pr.Bounded > 0 {
		// No register keys: the leader faults hit the partition of the
		// bounded workload's first key (whose leader the near caches
		// follow, in a near-cache run).
		hot = func() uint32 { return parts.Partition([]byte(boundedKey(0))) }
	}
	nem := &nemesis{rec: rec, net: network, cluster: cluster, proxies: proxies, hot: hot, rng: rng, lease: serverLease, log: nemLog}

	// The near-cache clients, one per process of the workloads that read
	// through one.
	var nearWorkloads []string
	var nears []*client.Client
	if pr.NearCache {
		for _, wl := range []struct {
			name  string
			procs int
		}{{"set", pr.Set}, {"session", pr.Session}, {"bounded", pr.Bounded}} {
			if wl.procs > 0 {
				nearWorkloads = append(nearWorkloads, wl.name)
			}
		}
		if nears, err = dialNear(ctx, cluster, pr.Set+pr.Session+pr.Bounded); err != nil {
			return sum, err
		}
		defer closeNear(nears)
	}

	// The workload.
	wctx, stop := context.WithTimeout(ctx, pr.Duration)
	defer stop()
	var wg sync.WaitGroup
	members := cluster.Members()
	id, nextNear := 0, 0
	spawn := func(count int, near bool, body func(p *process)) {
		for range count {
			p := w.newProcess(id, members[id%len(members)], uint64(cfg.Seed))
			id++
			if near && nextNear < len(nears) {
				p.near = nears[nextNear]
				nextNear++
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				body(p)
			}()
		}
	}
	regKeys := pr.RegisterKeys
	if regKeys == 0 {
		regKeys = 10
	}
	mix := pr.RegisterMix
	if mix == [4]int{} {
		mix = [4]int{25, 25, 35, 15}
	}
	spawn(pr.Register, false, func(p *process) {
		// Half the processes route like a smart client, half go through
		// their node and its forwarding.
		p.followLeader = pr.FollowLeader || p.id%2 == 1
		p.register(wctx, regKeys, mix, pr.RegisterReplicated)
	})
	sessionW, boundedW := sessionWrites, boundedWrites
	if pr.NearCache {
		sessionW, boundedW = nearWrites, nearWrites
	}
	spawn(pr.Set, true, func(p *process) { p.set(wctx, pr.SetReplicated) })
	spawn(pr.Session, true, func(p *process) { p.session(wctx, 4, sessionW) })
	spawn(pr.Bounded, true, func(p *process) { p.bounded(wctx, 4, boundedW) })
	if cfg.Database != "" {
		spawn(pr.WriteMode, false, func(p *process) { p.writeMode(wctx, 4, pr.WriteModes) })
	}
	logf("workload: %d processes for %v, faults: %s", id, pr.Duration, strings.Join(pr.Faults, " "))

	var faultsWG sync.WaitGroup
	faultsWG.Add(1)
	go func() {
		defer faultsWG.Done()
		runNemesis(wctx, nem, pr, logf)
	}()
	wg.Wait()
	faultsWG.Wait()
	sum.Duration = pr.Duration.Seconds()
	nearSum := nearCounters(nears)
	if err := closeNear(nears); err != nil {
		logf("closing the near-cache clients: %v", err)
	}
	ops, _ := rec.History()
	logf("workload done: %d operations", len(ops))

	// Heal everything, bring every initial member back, and let the
	// cluster settle.
	healAll(ctx, nem, cluster)
	var results []Result
	conv := checkConvergence(ctx, cluster, cmp.Or(pr.ConvergeTimeout, 90*time.Second))
	results = append(results, conv)
	if cfg.Database != "" {
		if err := waitFlushed(ctx, cluster, 90*time.Second); err != nil {
			logf("%v", err)
		}
	}
	finalReads(ctx, w, cluster)
	ops, faults := rec.History()
	logf("checking %d operations, %d faults", len(ops), len(faults))

	linOps, strong := filterOps(ops, "register", "writemode"), []string{LevelLinearizable, LevelLease}
	lin, info := CheckLinearizable(linOps, strong, cmp.Or(pr.LinTimeout, 3*time.Minute))
	results = append(results, lin, CheckRealtime(linOps, strong), CheckBounded(ops), CheckSession(ops), CheckSet(ops))
	if pr.NearCache {
		results = append(results, CheckNearCache(ops, nearWorkloads, nearSum))
	}
	if cfg.Database != "" {
		audit, rows, err := readDatabase(ctx, db)
		if err != nil {
			return sum, err
		}
		results = append(results, CheckDatabase(ops, audit, rows))
	}
	results = append(results, checkNodeLogs(cluster))
	Summarize(&sum, ops, faults, results)
	if err := WriteReport(cfg.Out, sum, ops, faults, info, RegisterModel); err != nil {
		return sum, err
	}
	return sum, nil
}

// prepareDatabase creates the table and an audit trigger that records
// every row write, in commit order.
func prepareDatabase(ctx context.Context, dbURL string) (*sqlstore.Store, *sql.DB, error) {
	store, err := sqlstore.Open(ctx, dbURL, sqlstore.Options{CreateTable: true})
	if err != nil {
		return nil, nil, err
	}
	db, err := sql.Open("pgx", dbURL)
	if err != nil {
		store.Close()
		return nil, nil, err
	}
	for _, q := range []string{
		`DROP TABLE IF EXISTS jepsen_audit`,
		`CREATE TABLE jepsen_audit (seq bigserial PRIMARY KEY, key bytea NOT NULL, version bigint NOT NULL, deleted boolean NOT NULL)`,
		`CREATE OR REPLACE FUNCTION jepsen_audit_row() RETURNS trigger AS $$ BEGIN
			INSERT INTO jepsen_audit (key, version, deleted) VALUES (NEW.key, NEW.version, NEW.deleted); RETURN NEW; END $$ LANGUAGE plpgsql`,
		`DROP TRIGGER IF EXISTS jepsen_audit_rows ON ` + sqlstore.DefaultTable,
		`CREATE TRIGGER jepsen_audit_rows AFTER INSERT OR UPDATE ON ` + sqlstore.DefaultTable + ` FOR EACH ROW EXECUTE FUNCTION jepsen_audit_row()`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			store.Close()
			db.Close()
			return nil, nil, fmt.Errorf("jepsen: preparing the database: %w", err)
		}
	}
	return store, db, nil
}

// readDatabase reads the audit log and the table.
func readDatabase(ctx context.Context, db *sql.DB) ([]AuditRow, map[string]DBRow, error) {
	var audit []AuditRow
	rows, err := db.QueryContext(ctx, `SELECT seq, key, version, deleted FROM jepsen_audit ORDER BY seq`)
	if err != nil {
		return nil, nil, err
	}
	for rows.Next() {
		var a AuditRow
		var k []byte
		var v int64
		if err := rows.Scan(&a.Seq, &k, &v, &a.Deleted); err != nil {
			rows.Close()
			return nil, nil, err
		}
		a.Key, a.Version = string(k), uint64(v)
		audit = append(audit, a)
	}
	rows.Close()
	table := make(map[string]DBRow)
	rows, err = db.QueryContext(ctx, `SELECT key, value, version, deleted FROM `+sqlstore.DefaultTable)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var k, val []byte
		var v int64
		var r DBRow
		if err := rows.Scan(&k, &val, &v, &r.Deleted); err != nil {
			return nil, nil, err
		}
		r.Value, r.Version = string(val), uint64(v)
		table[string(k)] = r
	}
	return audit, table, rows.Err()
}

// runNemesis injects the profile's faults until ctx is done.
func runNemesis(ctx context.Context, nem *nemesis, pr Profile, logf func(string, ...any)) {
	if len(pr.Faults) == 0 {
		return
	}
	between := func(lo, hi time.Duration) time.Duration {
		if hi <= lo {
			return lo
		}
		return lo + time.Duration(nem.rng.Int64N(int64(hi-lo)))
	}
	sleep := func(d time.Duration) bool {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(d):
			return true
		}
	}
	deadline, _ := ctx.Deadline()
	var order []string
	if !sleep(between(pr.QuietMin, pr.QuietMax)) {
		return
	}
	for round := 0; ctx.Err() == nil; {
		if len(order) == 0 {
			order = nem.shuffled(pr.Faults)
			if round == 0 {
				nem.early(order, pr.EarlyFaults)
			}
			round++
		}
		kind := order[0]
		order = order[1:]
		hold := between(pr.FaultMin, pr.FaultMax)
		switch kind {
		case KindPauseShort:
			hold = nem.lease / 3
		case KindPauseLong:
			hold = max(hold, 3*nem.lease)
		case KindKillAll:
			// Down is down: what matters is the restart.
			hold = time.Second
		}
		// The last fault of an EndInFault run is held FaultMin at least.
		last := pr.EndInFault && time.Until(deadline) < hold+pr.QuietMax+pr.FaultMin
		f, heal, err := nem.inject(ctx, kind, hold)
		if heal == nil && err == nil {
			nem.logf("%s: skipped (too few nodes running)", kind)
			continue
		}
		idx := nem.rec.BeginFault(f)
		nem.logf("start %s: %s", kind, f.Detail)
		if err != nil {
			nem.logf("%s: %v", kind, err)
			logf("nemesis: %s: %v", kind, err)
		}
		if last {
			nem.logf("%s stays until the workload ends", kind)
			<-ctx.Done()
			nem.pending = append(nem.pending, pendingHeal{idx: idx, kind: kind, heal: heal})
			return
		}
		sleep(hold)
		if err := heal(); err != nil {
			nem.logf("heal %s: %v", kind, err)
		}
		nem.rec.EndFault(idx)
		nem.logf("healed %s", kind)
		if !sleep(between(pr.QuietMin, pr.QuietMax)) {
			return
		}
	}
}

// healAll ends every fault, resumes paused nodes and restarts the initial
// members that are down.
func healAll(ctx context.Context, nem *nemesis, c *Cluster) {
	for _, p := range nem.pending {
		if err := p.heal(); err != nil {
			nem.logf("heal %s: %v", p.kind, err)
		}
		nem.rec.EndFault(p.idx)
		nem.logf("healed %s at the end", p.kind)
	}
	nem.pending = nil
	if err := nem.net.HealAll(); err != nil {
		nem.logf("heal network: %v", err)
	}
	for _, p := range nem.proxies {
		p.Heal()
	}
	for _, p := range c.Procs {
		if err := p.ThawDisk(); err != nil {
			nem.logf("thaw %s: %v", p.Name, err)
		}
		if p.Paused() {
			p.Resume()
		}
	}
	for _, p := range c.Members() {
		if !p.Running() {
			nem.logf("restarting %s for the final checks", p.Name)
			if err := p.Start(); err == nil {
				if err := p.WaitServing(60 * time.Second); err != nil {
					nem.logf("%v", err)
				}
			}
		}
	}
	_ = waitLeaders(ctx, c, 60*time.Second)
}

// waitLeaders waits until the map names a leader for every partition.
func waitLeaders(ctx context.Context, c *Cluster, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		t, err := c.Topology(ctx)
		if err == nil {
			missing := 0
			for _, p := range t.Partitions {
				if p.Leader == "" {
					missing++
				}
			}
			if missing == 0 && len(t.Partitions) > 0 {
				return nil
			}
			err = fmt.Errorf("%d partitions without a leader", missing)
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("jepsen: cluster not settled after %v: %w", timeout, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// waitFlushed waits until no running node holds dirty write-back entries.
func waitFlushed(ctx context.Context, c *Cluster, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		dirty := uint64(0)
		var errs []error
		for _, p := range c.Running() {
			cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			st, err := p.Cache.Stats(cctx, &cachev1.StatsRequest{})
			cancel()
			if err != nil {
				errs = append(errs, err)
				continue
			}
			dirty += st.DirtyKeys
		}
		if dirty == 0 && len(errs) == 0 {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("jepsen: %d write-back entries still dirty after %v (%v)", dirty, timeout, errors.Join(errs...))
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// checkConvergence waits until every partition's replicas, on the running
// nodes, report the same applied index and key count; replicas that still
// differ at the timeout are anomalies.
func checkConvergence(ctx context.Context, c *Cluster, timeout time.Duration) Result {
	res := Result{Checker: "convergence", Valid: true, Figures: map[string]float64{}}
	deadline := time.Now().Add(timeout)
	start := time.Now()
	for {
		type replica struct {
			node          string
			applied, keys uint64
		}
		byPart := make(map[uint32][]replica)
		failed := 0
		for _, p := range c.Running() {
			cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			st, err := p.Cache.Stats(cctx, &cachev1.StatsRequest{})
			cancel()
			if err != nil {
				failed++
				continue
			}
			for _, ps := range st.Partitions {
				byPart[ps.Partition] = append(byPart[ps.Partition], replica{p.Name, ps.AppliedIndex, ps.Keys})
			}
		}
		var bad []Anomaly
		parts := make([]uint32, 0, len(byPart))
		for part := range byPart {
			parts = append(parts, part)
		}
		sort.Slice(parts, func(i, j int) bool { return parts[i] < parts[j] })
		for _, part := range parts {
			rs := byPart[part]
			for _, r := range rs[1:] {
				if r.applied != rs[0].applied || r.keys != rs[0].keys {
					var desc []string
					for _, r := range rs {
						desc = append(desc, fmt.Sprintf("%s applied %d, %d keys", r.node, r.applied, r.keys))
					}
					bad = append(bad, Anomaly{Kind: "divergent-replicas", Detail: fmt.Sprintf("partition %d: %s", part, strings.Join(desc, "; "))})
					break
				}
			}
		}
		res.Ops = len(parts)
		if len(bad) == 0 && failed == 0 && len(parts) > 0 {
			res.Figures["converged_after_s"] = time.Since(start).Seconds()
			return res
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			res.Valid = false
			res.Anomalies = bad
			if failed > 0 || len(parts) == 0 {
				res.Note = fmt.Sprintf("%d nodes did not answer Stats", failed)
			}
			return res
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// finalReaders is how many processes make the final reads.
const finalReaders = 32

// finalReadBudget bounds the final reads. A healthy cluster answers them
// in seconds; a cluster a self-test broke on purpose may not answer some
// at all, and ten tries of each such element would take minutes. Past the
// budget each remaining element is read once: one that fails is recorded
// without a final read, which the set checker reports as unchecked (so a
// run never passes for want of time).
const finalReadBudget = 60 * time.Second

// finalReads reads every set element once more, linearizably, after the
// heal: the set checker's final state. Processes of their own share the
// elements.
func finalReads(ctx context.Context, w *workloads, c *Cluster) {
	ops, _ := w.rec.History()
	seen := make(map[string]bool)
	keys := make(chan string, len(ops))
	for _, op := range ops {
		if op.Workload == "set" && op.F == FAdd && !seen[op.Key] {
			seen[op.Key] = true
			keys <- op.Key
		}
	}
	close(keys)
	budget := time.Now().Add(finalReadBudget)
	var wg sync.WaitGroup
	for i := range finalReaders {
		p := w.newProcess(1<<20+i, c.Members()[i%len(c.Members())], 1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range keys {
				for try := 0; ; try++ {
					op := p.get(ctx, p.anyNode(), "set", k, LevelLinearizable)
					op.Final = true
					if op.Outcome == OK || try == 9 || time.Now().After(budget) {
						w.rec.Add(op)
						break
					}
					time.Sleep(100 * time.Millisecond)
				}
			}
		}()
	}
	wg.Wait()
}

// filterOps keeps the operations of the named workloads.
func filterOps(ops []Op, workloads ...string) []Op {
	var out []Op
	for _, op := range ops {
		if slices.Contains(workloads, op.Workload) {
			out = append(out, op)
		}
	}
	return out
}

// checkNodeLogs reports crashes and data races in the nodes' logs.
func checkNodeLogs(c *Cluster) Result {
	res := Result{Checker: "node-logs", Valid: true, Ops: len(c.Procs)}
	for _, p := range c.Procs {
		for _, s := range []string{"panic:", "fatal error:", "WARNING: DATA RACE"} {
			if p.LogHas(s) {
				res.Valid = false
				res.Anomalies = append(res.Anomalies, Anomaly{Kind: "node-crash", Detail: fmt.Sprintf("%s's log has %q: %s", p.Name, s, p.logPath)})
			}
		}
	}
	return res
}

// pendingHeal is a fault left in force when the workload stopped.
type pendingHeal struct {
	idx  int
	kind string
	heal func() error
}

package jepsen

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
)

// Profiles are the runs `make jepsen`, `make jepsen-quick` and the
// self-tests make.
var Profiles = map[string]Profile{
	// quick: every kind of fault once or so in about two minutes (kill-all
	// surely); CI runs it on every change.
	"quick": {
		Name: "quick", Nodes: 5, Partitions: 16, Duration: 120 * time.Second,
		Faults:   AllKinds,
		FaultMin: 3 * time.Second, FaultMax: 6 * time.Second, QuietMin: 1 * time.Second, QuietMax: 3 * time.Second,
		Register: 5, Set: 2, Session: 2, Bounded: 2, WriteMode: 3,
		SetReplicated: 75, RegisterReplicated: 50,
		WriteModes:  []string{ModeWriteThrough, ModeWriteBack, ModeWriteAround},
		EarlyFaults: []string{KindKillAll},
	},
	// quick-near: the set, session and bounded workloads read through
	// near caches (NearCache) under every kind of fault, each held
	// briefly so that a run of 75 s makes (nearly always) every kind; the
	// leader faults hit the bounded workload's first key's partition. CI
	// runs it after quick.
	"quick-near": {
		Name: "quick-near", Nodes: 5, Partitions: 16, Duration: 75 * time.Second,
		Faults:   AllKinds,
		FaultMin: 2 * time.Second, FaultMax: 4 * time.Second, QuietMin: 500 * time.Millisecond, QuietMax: 1500 * time.Millisecond,
		Set: 2, Session: 3, Bounded: 3, SetReplicated: 75,
		NearCache:   true,
		EarlyFaults: []string{KindKillAll},
	},
	// full: every kind of fault several times, held longer.
	"full": {
		Name: "full", Nodes: 5, Partitions: 16, Duration: 8 * time.Minute,
		Faults:   AllKinds,
		FaultMin: 4 * time.Second, FaultMax: 12 * time.Second, QuietMin: 2 * time.Second, QuietMax: 5 * time.Second,
		Register: 5, Set: 2, Session: 2, Bounded: 2, WriteMode: 3,
		SetReplicated: 75, RegisterReplicated: 50,
		WriteModes: []string{ModeWriteThrough, ModeWriteBack, ModeWriteAround},
	},
	// The self-tests: each runs nodes with one promise broken on purpose
	// and the faults that expose it, and must come out invalid.
	// The hot partition's leader has its disk frozen and its peers cut
	// off: its Raft loop blocks in an fsync, so hashicorp/raft never
	// makes it step down, while the majority elects a successor that
	// takes writes. Clients still reach the old leader; a lease read
	// without the lease check answers from its old state. (A pause or a
	// cut alone shows little: raft steps down after LeaderLeaseTimeout,
	// before a successor is elected.) One key; half the clients route to
	// the leader they know, and keep reading from the stalled one, the
	// others write through their own nodes to its successor.
	"break-lease": {
		Name: "break-lease", Nodes: 5, Partitions: 16, Duration: 60 * time.Second,
		Faults:   []string{KindLeaderStall},
		FaultMin: 6 * time.Second, FaultMax: 8 * time.Second, QuietMin: 2 * time.Second, QuietMax: 3 * time.Second,
		Register: 10, RegisterKeys: 1, RegisterMix: [4]int{0, 60, 30, 10}, KeyPeriod: 30 * time.Second,
		LinTimeout: 30 * time.Second,
		Break:      []string{"lease-check"}, Expect: []string{"stale-read", "nonlinearizable"},
	},
	"break-flush": {
		Name: "break-flush", Nodes: 5, Partitions: 16, Duration: 40 * time.Second,
		Faults:   []string{KindDBCut},
		FaultMin: 4 * time.Second, FaultMax: 6 * time.Second, QuietMin: 2 * time.Second, QuietMax: 3 * time.Second,
		EndInFault: true,
		WriteMode:  6, WriteModes: []string{ModeWriteBack},
		Break: []string{"flush-order"}, Expect: []string{"db-final-version"},
	},
	"break-fence": {
		Name: "break-fence", Nodes: 5, Partitions: 16, Duration: 45 * time.Second,
		Faults:   []string{KindDBSlow},
		FaultMin: 5 * time.Second, FaultMax: 8 * time.Second, QuietMin: 1 * time.Second, QuietMax: 2 * time.Second,
		WriteMode: 8, WriteModes: []string{ModeWriteAround, ModeWriteThrough},
		Break: []string{"refill-fence"}, Expect: []string{"stale-read", "nonlinearizable"},
	},
	// REPLICATED writes are acknowledged while their log records are
	// still only in the process's memory (up to a second, or until a
	// synced write follows), so only the death of every replica at once
	// loses them. Many set processes add REPLICATED elements only (no
	// SYNC write flushes the records early), and every fault kills all
	// nodes: each kill-all takes the last fraction of a second of adds
	// with it, and the final reads miss them. (Replicas whose logs lost
	// entries their state machines had applied diverge as well, for good:
	// the convergence check need not wait its usual 90s to say so.)
	"break-replicated": {
		Name: "break-replicated", Nodes: 5, Partitions: 16, Duration: 30 * time.Second,
		Faults:   []string{KindKillAll},
		FaultMin: time.Second, FaultMax: time.Second, QuietMin: 3 * time.Second, QuietMax: 5 * time.Second,
		Set: 10, SetReplicated: 100, Pace: 2 * time.Millisecond, ConvergeTimeout: 15 * time.Second,
		Break: []string{"replicated-ack"}, Expect: []string{"lost-element"},
	},
	// The nodes' Changes streams carry progress marks but no key changes:
	// near caches keep the copies other processes' writes overwrote, and
	// the marks claim them fresh. No fault is needed: the session
	// processes read keys they have just written around their clients,
	// and the bounded ones keys others wrote seconds ago.
	"break-changes": {
		Name: "break-changes", Nodes: 5, Partitions: 16, Duration: 20 * time.Second,
		Session: 3, Bounded: 3, NearCache: true,
		Break: []string{"changes-feed"}, Expect: []string{"bounded-stale-read", "session-read-your-writes", "session-monotonic-reads"},
	},
	// Regression scenarios: faults that once exposed a bug in elcache,
	// run against the real server, which must come out valid.
	//
	// regress-refill: a read that began after a write-around was
	// acknowledged joined a refill load that had begun before the write
	// and returned the old row (fixed in node/refill.go, refill).
	// Slow database links widen the window between a load and its fill.
	"regress-refill": {
		Name: "regress-refill", Nodes: 5, Partitions: 16, Duration: 45 * time.Second,
		Faults:   []string{KindDBSlow},
		FaultMin: 5 * time.Second, FaultMax: 8 * time.Second, QuietMin: 1 * time.Second, QuietMax: 2 * time.Second,
		WriteMode: 8, WriteModes: []string{ModeWriteAround, ModeWriteThrough},
	},
}

// Regressions are the regression scenarios' profiles.
func Regressions() []string {
	var out []string
	for name := range Profiles {
		if strings.HasPrefix(name, "regress-") {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// SelfTests are the profiles that break a promise on purpose.
func SelfTests() []string {
	var out []string
	for name, p := range Profiles {
		if len(p.Break) > 0 {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// LookupProfile returns the named profile, with Duration replaced when d
// is positive.
func LookupProfile(name string, d time.Duration) (Profile, error) {
	p, ok := Profiles[name]
	if !ok {
		var names []string
		for n := range Profiles {
			names = append(names, n)
		}
		slices.Sort(names)
		return p, fmt.Errorf("jepsen: no profile %q (have %v)", name, names)
	}
	if d > 0 {
		p.Duration = d
	}
	return p, nil
}

// Caught tells whether a self-test run found what its broken switch
// breaks: one of the expected anomaly kinds.
func (p Profile) Caught(s Summary) bool {
	for _, k := range p.Expect {
		if s.Anomalies[k] > 0 {
			return true
		}
	}
	return false
}

package jepsen

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	cachev1 "github.com/elcache/elcache/proto/cache/v1"
)

// Outcome is what a client learned about an operation.
type Outcome string

const (
	// OK: the operation took effect (a read returned, a write was
	// acknowledged, a CAS answered swapped or not).
	OK Outcome = "ok"
	// Fail: the operation certainly did not take effect (the cluster
	// refused it before running it, e.g. InvalidArgument, or a read that
	// failed: a failed read has no effect either way).
	Fail Outcome = "fail"
	// Unknown: a write that may or may not have taken effect (timeout,
	// lost connection, Unavailable after forwarding). Checkers treat it as
	// concurrent with everything after its start.
	Unknown Outcome = "unknown"
)

// Functions (Op.F).
const (
	FGet = "get"
	FPut = "put"
	FCAS = "cas"
	FAdd = "add" // set workload: put of a unique element key
)

// Op is one operation of the history, recorded when it completes. Every
// client process has at most one operation outstanding, so a process's
// operations never overlap. Times are nanoseconds on the harness's
// monotonic clock since the run started.
type Op struct {
	// Process is the client process; Node the node it talks to.
	Process int    `json:"process"`
	Node    string `json:"node"`
	// Workload: "register", "set", "session", "bounded", "writemode".
	Workload string `json:"workload"`
	F        string `json:"f"`
	// Level is the read's consistency (Level* constants); Mode the write
	// mode of a write (Mode* constants).
	Level string `json:"level,omitempty"`
	Mode  string `json:"mode,omitempty"`
	// Durability is the durability a write asked for (Durability*
	// constants): when it may be acknowledged.
	Durability string `json:"durability,omitempty"`
	// MaxStaleness is a BOUNDED read's bound, in nanoseconds.
	MaxStaleness int64  `json:"max_staleness,omitempty"`
	Key          string `json:"key"`
	// Value: for a put or cas, the value written (unique per write); for
	// a get that found the key, the value read.
	Value string `json:"value,omitempty"`
	// Expect: for a cas, the value the key must hold ("" = absent).
	Expect string `json:"expect,omitempty"`
	// Found: a get found the key. Swapped: a cas swapped.
	Found   bool `json:"found,omitempty"`
	Swapped bool `json:"swapped,omitempty"`
	// Version: for a get, the version read (0 when not found); for an
	// acknowledged write, the version it produced (the Raft index).
	Version uint64  `json:"version,omitempty"`
	Start   int64   `json:"start"`
	End     int64   `json:"end"`
	Outcome Outcome `json:"outcome"`
	Error   string  `json:"error,omitempty"`
	// Meta is the read's proof, as the server returned it.
	Meta *ReadMeta `json:"meta,omitempty"`
	// Final marks the reads the harness makes after healing every fault,
	// at the end of the run (the set workload's final reads, say).
	Final bool `json:"final,omitempty"`
}

// Consistency levels (Op.Level).
const (
	LevelLinearizable = "linearizable"
	LevelLease        = "lease"
	LevelBounded      = "bounded"
	LevelSession      = "session"
	LevelEventual     = "eventual"
)

// Write durabilities (Op.Durability).
const (
	// DurabilitySync: acknowledged once a quorum has fsynced the entry.
	DurabilitySync = "sync"
	// DurabilityReplicated: acknowledged once a quorum has written it to
	// the operating system, not yet fsynced; it must survive any process
	// crash, SIGKILL of every node at once included.
	DurabilityReplicated = "replicated"
)

// Write modes (Op.Mode).
const (
	ModeCacheOnly    = "cache_only"
	ModeWriteThrough = "write_through"
	ModeWriteBack    = "write_back"
	ModeWriteAround  = "write_around"
)

// ReadMeta is the part of a read's proof the checkers use.
type ReadMeta struct {
	Partition         uint32 `json:"partition"`
	ServedBy          string `json:"served_by"`
	Role              string `json:"role"`
	AppliedIndex      uint64 `json:"applied_index"`
	LeaderCommitIndex uint64 `json:"leader_commit_index"`
	// Staleness the server claimed, in nanoseconds.
	Staleness int64 `json:"staleness"`
	// SessionIndex is the index in the returned session token.
	SessionIndex uint64 `json:"session_index,omitempty"`
	Stale        bool   `json:"stale,omitempty"`
}

// ReadMetaOf is the checkers' view of the proof m a read came with, nil
// if it came with none.
func ReadMetaOf(m *cachev1.ReadMeta) *ReadMeta {
	if m == nil {
		return nil
	}
	out := &ReadMeta{Partition: m.Partition, ServedBy: m.ServedBy, Role: m.Role.String(), AppliedIndex: m.AppliedIndex,
		LeaderCommitIndex: m.LeaderCommitIndex, Staleness: int64(m.Staleness.AsDuration()), Stale: m.Stale}
	if m.SessionToken != nil {
		out.SessionIndex = m.SessionToken.Index
	}
	return out
}

// Fault is one nemesis action, from when it began to when it was healed.
type Fault struct {
	// Kind names the nemesis (Kind* constants); Targets the nodes it hit.
	Kind    string   `json:"kind"`
	Targets []string `json:"targets"`
	// Detail says what exactly was done, e.g. "{n1 n2} | {n3 n4 n5}".
	Detail string `json:"detail"`
	Start  int64  `json:"start"`
	// End is when it was healed; 0 if the run ended first (the harness
	// heals everything before the final checks either way).
	End int64 `json:"end"`
}

// Recorder collects the history of a run and writes it to history.jsonl
// as operations complete.
type Recorder struct {
	start time.Time

	mu     sync.Mutex
	ops    []Op
	faults []Fault
	w      *bufio.Writer
	f      *os.File
}

// NewRecorder starts the clock and writes operations to path (none if
// path is empty).
func NewRecorder(path string) (*Recorder, error) {
	r := &Recorder{start: time.Now()}
	if path != "" {
		f, err := os.Create(path)
		if err != nil {
			return nil, err
		}
		r.f, r.w = f, bufio.NewWriter(f)
	}
	return r, nil
}

// Now is the time on the run's clock.
func (r *Recorder) Now() int64 { return int64(time.Since(r.start)) }

// Add records a completed operation.
func (r *Recorder) Add(op Op) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ops = append(r.ops, op)
	if r.w != nil {
		b, _ := json.Marshal(op)
		r.w.Write(b)
		r.w.WriteByte('\n')
	}
}

// BeginFault records the start of a fault and returns its index for
// EndFault.
func (r *Recorder) BeginFault(f Fault) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	f.Start = r.Now()
	r.faults = append(r.faults, f)
	return len(r.faults) - 1
}

// EndFault records that fault i was healed.
func (r *Recorder) EndFault(i int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.faults[i].End == 0 {
		r.faults[i].End = r.Now()
	}
}

// History returns a copy of the operations and faults so far.
func (r *Recorder) History() ([]Op, []Fault) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Op(nil), r.ops...), append([]Fault(nil), r.faults...)
}

// Close flushes history.jsonl.
func (r *Recorder) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.f == nil {
		return nil
	}
	err := r.w.Flush()
	if cerr := r.f.Close(); err == nil {
		err = cerr
	}
	r.f = nil
	return err
}

// ReadHistory reads a history.jsonl file back, for checking a run again.
func ReadHistory(rd io.Reader) ([]Op, error) {
	var ops []Op
	sc := bufio.NewScanner(rd)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for line := 1; sc.Scan(); line++ {
		var op Op
		if err := json.Unmarshal(sc.Bytes(), &op); err != nil {
			return nil, fmt.Errorf("jepsen: history line %d: %w", line, err)
		}
		ops = append(ops, op)
	}
	return ops, sc.Err()
}

package ring

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/buraksezer/consistent"
	"github.com/cespare/xxhash/v2"
)

// Placement assigns each partition an ordered list of replicas. It is plain
// data: a coordinator computes it with Place and stores it versioned; nodes
// read it and never recompute it from their own view of the membership.
type Placement struct {
	// Members are the node ids the placement was computed over, sorted.
	Members []string
	// Replicas[p] are the replicas of partition p, distinct, min(rf, members)
	// of them. Replicas[p][0] is the preferred leader; the followers follow
	// in rendezvous order, best first.
	Replicas [][]string
}

// PlaceConfig configures Place. The fields are part of the placement
// contract: every node and every version must compute the same Placement
// from the same PlaceConfig and members.
type PlaceConfig struct {
	// Partitions is the fixed partition count, in [1, MaxPartitions].
	Partitions uint32
	// ReplicationFactor is the number of data replicas per partition,
	// leader included; at least 1. With fewer members every member holds
	// every partition.
	ReplicationFactor int
	// Load bounds the preferred leaders per member at
	// ceil(Partitions/members * Load); at least 1. It is consistent's Load.
	Load float64
}

// DefaultPlaceConfig returns 64 partitions, 3 replicas and a leader load
// bound of 1.25.
func DefaultPlaceConfig() PlaceConfig {
	return PlaceConfig{Partitions: 64, ReplicationFactor: 3, Load: 1.25}
}

// ErrInvalidPlacement is wrapped by every error Place returns.
var ErrInvalidPlacement = errors.New("ring: invalid placement input")

// Validate reports every problem with c.
func (c PlaceConfig) Validate() error { return errors.Join(c.problems()...) }

func (c PlaceConfig) problems() []error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidPlacement}, args...)...))
	}
	if c.Partitions == 0 || c.Partitions > MaxPartitions {
		bad("Partitions must be in [1, %d], got %d", MaxPartitions, c.Partitions)
	}
	if c.ReplicationFactor < 1 {
		bad("ReplicationFactor must be at least 1, got %d", c.ReplicationFactor)
	}
	// consistent panics when the bound leaves no room for every partition,
	// which Load >= 1 rules out.
	if !(c.Load >= 1) || math.IsInf(c.Load, 0) {
		bad("Load must be a finite number >= 1, got %v", c.Load)
	}
	return errs
}

// virtualNodes is the number of points each member has on consistent's ring
// (consistent calls it ReplicationFactor). Part of the placement contract.
const virtualNodes = 128

// Place computes the placement of cfg.Partitions partitions over members.
// It depends only on cfg and the set of members, not on their order.
//
// Preferred leaders come from consistent hashing with bounded loads
// (buraksezer/consistent): no member leads more than
// ceil(Partitions/members * Load) partitions. Followers come from rendezvous
// hashing over (partition, member), bounded so that the replicas members
// hold, leaderships included, differ by at most one.
func Place(cfg PlaceConfig, members []string) (Placement, error) {
	sorted, problems := checkMembers(members)
	if err := errors.Join(append(cfg.problems(), problems...)...); err != nil {
		return Placement{}, err
	}
	owners := leaders(cfg, sorted)
	rf := min(cfg.ReplicationFactor, len(sorted))
	return Placement{Members: sorted, Replicas: followers(owners, sorted, rf)}, nil
}

// checkMembers returns a sorted copy of members and every problem with them.
func checkMembers(members []string) ([]string, []error) {
	var errs []error
	if len(members) == 0 {
		errs = append(errs, fmt.Errorf("%w: no members", ErrInvalidPlacement))
	}
	sorted := slices.Clone(members)
	slices.Sort(sorted)
	for i, m := range sorted {
		switch {
		case m == "":
			if i == 0 {
				errs = append(errs, fmt.Errorf("%w: empty member id", ErrInvalidPlacement))
			}
		case i > 0 && sorted[i-1] == m && (i < 2 || sorted[i-2] != m):
			errs = append(errs, fmt.Errorf("%w: duplicate member id %q", ErrInvalidPlacement, m))
		}
	}
	return sorted, errs
}

// Moves compares p with next, a placement of the same partitions.
// replicasMoved counts the replicas in next that p does not have: the copies
// a move from p to next must build. leadersMoved counts the partitions whose
// preferred leader changed.
func (p Placement) Moves(next Placement) (replicasMoved, leadersMoved int) {
	for i, nr := range next.Replicas {
		var old []string
		if i < len(p.Replicas) {
			old = p.Replicas[i]
		}
		for _, m := range nr {
			if !slices.Contains(old, m) {
				replicasMoved++
			}
		}
		if len(nr) > 0 && (len(old) == 0 || old[0] != nr[0]) {
			leadersMoved++
		}
	}
	return replicasMoved, leadersMoved
}

// MemberLoad is one member's share of a placement.
type MemberLoad struct {
	Member   string
	Leaders  int // partitions it is the preferred leader of
	Replicas int // partitions it holds a replica of, leaderships included
}

// Spread returns the load of every member of p, in member order; members
// that hold nothing are included.
func (p Placement) Spread() []MemberLoad {
	out := make([]MemberLoad, len(p.Members))
	pos := make(map[string]int, len(p.Members))
	for i, m := range p.Members {
		out[i].Member = m
		pos[m] = i
	}
	for _, r := range p.Replicas {
		for j, m := range r {
			i, ok := pos[m]
			if !ok {
				i = len(out)
				pos[m] = i
				out = append(out, MemberLoad{Member: m})
			}
			out[i].Replicas++
			if j == 0 {
				out[i].Leaders++
			}
		}
	}
	return out
}

// String returns one line per partition: its number, then its replicas.
func (p Placement) String() string {
	var b strings.Builder
	for i, r := range p.Replicas {
		fmt.Fprintf(&b, "%d: %s\n", i, strings.Join(r, " "))
	}
	return b.String()
}

// member and hasher adapt ids and xxhash to consistent.
type member string

func (m member) String() string { return string(m) }

type hasher struct{}

func (hasher) Sum64(b []byte) uint64 { return xxhash.Sum64(b) }

// leaders returns the preferred leader of every partition. sorted must be
// sorted: consistent keeps the last of two members whose points collide, so
// the order it sees them in must not depend on the caller.
func leaders(cfg PlaceConfig, sorted []string) []string {
	ms := make([]consistent.Member, len(sorted))
	for i, m := range sorted {
		ms[i] = member(m)
	}
	c := consistent.New(ms, consistent.Config{
		Hasher:            hasher{},
		PartitionCount:    int(cfg.Partitions),
		ReplicationFactor: virtualNodes,
		Load:              cfg.Load,
	})
	owners := make([]string, cfg.Partitions)
	for p := range owners {
		owners[p] = c.GetPartitionOwner(p).String()
	}
	return owners
}

// scorer computes rendezvous weights: xxhash64 of the partition (4 bytes,
// big endian) followed by the member id. Part of the placement contract.
type scorer struct {
	bufs [][]byte // per member: 4 bytes for the partition, then the id
}

func newScorer(members []string) scorer {
	s := scorer{bufs: make([][]byte, len(members))}
	for i, m := range members {
		s.bufs[i] = append(make([]byte, 4, 4+len(m)), m...)
	}
	return s
}

func (s scorer) score(p uint32, m int) uint64 {
	binary.BigEndian.PutUint32(s.bufs[m], p)
	return xxhash.Sum64(s.bufs[m])
}

// followers extends every owner to a replica list of rf distinct members.
//
// The bound: of the partitions*rf replicas, leaderships included, every
// member holds floor(partitions*rf/members), and the remainder go one each
// to the members that ask for them first. So replica counts differ by at
// most one. (A member whose leaderships alone are more than that share, only
// possible with a Load well above 1, holds just its leaderships, and the
// others share the rest the same way.)
//
// Every (partition, member) pair that is not the owner gets a rendezvous
// weight. Pairs are taken in descending weight, and a pair is accepted if
// its partition still needs a follower and the member has room under the
// bound. This is the stable assignment for the bound: a partition loses a
// better member only to pairs that weigh more. A partition left short,
// because the members with room are already its replicas, takes a member
// with no room from another partition that can take a member with room
// instead (the shortest augmenting path).
func followers(owners, members []string, rf int) [][]string {
	n := len(members)
	pos := make(map[string]int, n)
	for i, m := range members {
		pos[m] = i
	}
	a := &assignment{
		reps:   make([][]int, len(owners)),
		load:   make([]int, n),
		s:      newScorer(members),
		from:   make([]int, len(owners)),
		via:    make([]int, len(owners)),
		seen:   make([]int, len(owners)),
		mseen:  make([]int, n),
		ranked: make([]int, 0, n),
	}
	for p, o := range owners {
		a.reps[p] = make([]int, 1, rf)
		a.reps[p][0] = pos[o]
		a.load[pos[o]]++
	}
	// A member whose leaderships alone exceed an even share of the
	// replicas holds just those; the others share the rest evenly. Taking
	// such a member out lowers the share of the rest, so repeat.
	total, sharing := len(owners)*rf, n
	out := make([]bool, n)
	for changed := true; changed; {
		changed = false
		for m, l := range a.load {
			if !out[m] && l*sharing > total {
				out[m], changed = true, true
				total, sharing = total-l, sharing-1
			}
		}
	}
	// Members that are out hold more than limit, so they have no room.
	a.limit, a.extra = total/sharing, total%sharing
	if rf > 1 {
		type pair struct {
			w    uint64
			p, m uint32
		}
		pairs := make([]pair, 0, len(owners)*(n-1))
		for p, r := range a.reps {
			for m := range members {
				if m != r[0] {
					pairs = append(pairs, pair{a.s.score(uint32(p), m), uint32(p), uint32(m)})
				}
			}
		}
		slices.SortFunc(pairs, func(x, y pair) int {
			switch {
			case x.w != y.w:
				return cmpDesc(x.w, y.w)
			case x.p != y.p:
				return int(x.p) - int(y.p)
			default:
				return int(x.m) - int(y.m)
			}
		})
		need := len(owners) * (rf - 1)
		for _, c := range pairs {
			if need == 0 {
				break
			}
			if len(a.reps[c.p]) < rf && a.room(int(c.m)) {
				a.take(int(c.p), int(c.m))
				need--
			}
		}
		for p := range a.reps {
			for len(a.reps[p]) < rf {
				if !a.augment(p) {
					a.overflow(p)
				}
			}
		}
	}
	placed := make([][]string, len(owners))
	for p, r := range a.reps {
		a.sortByWeight(p, r[1:])
		placed[p] = make([]string, len(r))
		for i, m := range r {
			placed[p][i] = members[m]
		}
	}
	return placed
}

// assignment is the state of followers. Members are indices into the
// sorted member list.
type assignment struct {
	reps  [][]int // per partition: owner, then followers
	load  []int   // per member: replicas held
	limit int     // replicas every member may hold
	extra int     // members that may still hold limit+1
	s     scorer

	// Scratch space for augment. A partition or member is marked seen in
	// the current search when its mark equals epoch.
	epoch     int
	seen      []int // per partition
	mseen     []int // per member
	from, via []int // per partition: it gives member via[q] to partition from[q]
	queue     []int
	ranked    []int
}

func (a *assignment) room(m int) bool {
	return a.load[m] < a.limit || (a.load[m] == a.limit && a.extra > 0)
}

func (a *assignment) take(p, m int) {
	if a.load[m] == a.limit {
		a.extra--
	}
	a.load[m]++
	a.reps[p] = append(a.reps[p], m)
}

// sortByWeight sorts ms by their rendezvous weight for p, best first.
func (a *assignment) sortByWeight(p int, ms []int) {
	slices.SortFunc(ms, func(x, y int) int {
		return cmpDesc(a.s.score(uint32(p), x), a.s.score(uint32(p), y))
	})
}

// candidates returns the members that are not replicas of p, best first.
// The slice is reused by the next call.
func (a *assignment) candidates(p int) []int {
	a.ranked = a.ranked[:0]
	for m := range a.load {
		if !slices.Contains(a.reps[p], m) {
			a.ranked = append(a.ranked, m)
		}
	}
	a.sortByWeight(p, a.ranked)
	return a.ranked
}

// augment gives partition p one more follower without breaking the bound:
// p takes a member y that has no room, y leaves a partition q where it is a
// follower, q takes a member with room or continues the chain in the same
// way. Breadth first, so the chain is as short as possible. It reports
// whether it found one.
func (a *assignment) augment(p int) bool {
	a.epoch++
	a.seen[p] = a.epoch
	a.queue = append(a.queue[:0], p)
	for len(a.queue) > 0 {
		q := a.queue[0]
		a.queue = a.queue[1:]
		for _, y := range a.candidates(q) {
			if a.room(y) {
				// q takes y; walking back, every partition on the chain
				// hands one follower to the partition before it.
				a.take(q, y)
				for q != p {
					i := slices.Index(a.reps[q], a.via[q])
					a.reps[q] = slices.Delete(a.reps[q], i, i+1)
					a.reps[a.from[q]] = append(a.reps[a.from[q]], a.via[q])
					q = a.from[q]
				}
				return true
			}
			if a.mseen[y] == a.epoch {
				continue
			}
			a.mseen[y] = a.epoch
			for q2, r := range a.reps {
				if a.seen[q2] != a.epoch && slices.Contains(r[1:], y) {
					a.seen[q2] = a.epoch
					a.from[q2], a.via[q2] = q, y
					a.queue = append(a.queue, q2)
				}
			}
		}
	}
	return false
}

// overflow gives p the least loaded member that is not yet its replica,
// breaking the bound. Only reached when no assignment within the bound
// exists, for example when a Load far above 1 lets a member lead more
// partitions than the bound allows it replicas.
func (a *assignment) overflow(p int) {
	best := -1
	for _, m := range a.candidates(p) {
		if best < 0 || a.load[m] < a.load[best] {
			best = m
		}
	}
	a.load[best]++
	a.reps[p] = append(a.reps[p], best)
}

func cmpDesc(a, b uint64) int {
	switch {
	case a > b:
		return -1
	case a < b:
		return 1
	}
	return 0
}

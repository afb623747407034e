package ring

import (
	"errors"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/buraksezer/consistent"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func TestPlaceConfigValidate(t *testing.T) {
	for _, tt := range []struct {
		name string
		cfg  PlaceConfig
		errs int
	}{
		{"default", DefaultPlaceConfig(), 0},
		{"one partition, one replica, load 1", PlaceConfig{1, 1, 1}, 0},
		{"max partitions", PlaceConfig{MaxPartitions, 5, 2}, 0},
		{"zero partitions", PlaceConfig{0, 3, 1.25}, 1},
		{"too many partitions", PlaceConfig{MaxPartitions + 1, 3, 1.25}, 1},
		{"zero replicas", PlaceConfig{64, 0, 1.25}, 1},
		{"negative replicas", PlaceConfig{64, -1, 1.25}, 1},
		{"load below 1", PlaceConfig{64, 3, 0.9}, 1},
		{"load NaN", PlaceConfig{64, 3, math.NaN()}, 1},
		{"load infinite", PlaceConfig{64, 3, math.Inf(1)}, 1},
		{"zero value reports every field", PlaceConfig{}, 3},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if got := countErrs(err); got != tt.errs {
				t.Fatalf("Validate() = %v, want %d problems", err, tt.errs)
			}
			if err != nil && !errors.Is(err, ErrInvalidPlacement) {
				t.Fatalf("Validate() = %v, want it to wrap ErrInvalidPlacement", err)
			}
		})
	}
}

func TestPlaceRejectsBadInput(t *testing.T) {
	for _, tt := range []struct {
		name    string
		cfg     PlaceConfig
		members []string
		errs    int
		want    string
	}{
		{"no members", DefaultPlaceConfig(), nil, 1, "no members"},
		{"empty id", DefaultPlaceConfig(), []string{"a", ""}, 1, "empty member id"},
		{"two empty ids", DefaultPlaceConfig(), []string{"", "a", ""}, 1, "empty member id"},
		{"duplicate", DefaultPlaceConfig(), []string{"b", "a", "b"}, 1, `duplicate member id "b"`},
		{"duplicate three times", DefaultPlaceConfig(), []string{"b", "b", "b"}, 1, `duplicate member id "b"`},
		{"two duplicates", DefaultPlaceConfig(), []string{"b", "a", "b", "a"}, 2, `"a"`},
		{"bad config", PlaceConfig{0, 3, 1.25}, []string{"a"}, 1, "Partitions"},
		{"everything", PlaceConfig{}, []string{"", "x", "x"}, 5, "Load"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Place(tt.cfg, tt.members)
			if got := countErrs(err); got != tt.errs {
				t.Fatalf("Place() = %v, want %d problems", err, tt.errs)
			}
			if !errors.Is(err, ErrInvalidPlacement) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Place() = %v, want ErrInvalidPlacement mentioning %q", err, tt.want)
			}
		})
	}
}

// countErrs counts the problems in an error built with errors.Join.
func countErrs(err error) int {
	if err == nil {
		return 0
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return len(j.Unwrap())
	}
	return 1
}

func TestPlaceSmall(t *testing.T) {
	for _, tt := range []struct {
		name    string
		cfg     PlaceConfig
		members []string
		// every partition holds exactly these members, in any order
		all []string
		// per member: leaders, replicas
		spread map[string][2]int
	}{
		{
			name: "one member holds everything", cfg: PlaceConfig{8, 3, 1.25}, members: []string{"a"},
			all: []string{"a"}, spread: map[string][2]int{"a": {8, 8}},
		},
		{
			name: "fewer members than replicas", cfg: PlaceConfig{8, 3, 1.25}, members: []string{"b", "a"},
			all: []string{"a", "b"}, spread: map[string][2]int{"a": {-1, 8}, "b": {-1, 8}},
		},
		{
			name: "as many members as replicas", cfg: PlaceConfig{12, 3, 1.25}, members: []string{"c", "a", "b"},
			all: []string{"a", "b", "c"}, spread: map[string][2]int{"a": {-1, 12}, "b": {-1, 12}, "c": {-1, 12}},
		},
		{
			name: "one replica is the leader alone", cfg: PlaceConfig{10, 1, 1}, members: []string{"a", "b"},
			spread: map[string][2]int{"a": {5, 5}, "b": {5, 5}},
		},
		{
			name: "one partition", cfg: PlaceConfig{1, 3, 1.25}, members: []string{"a", "b", "c", "d"},
		},
		{
			// node-6 leads 9 partitions, more than the even share of
			// 128/19 replicas: it holds nothing else.
			name: "a high Load gives a member only its leaderships", cfg: PlaceConfig{64, 2, 4},
			members: nodes(19), spread: map[string][2]int{"node-6": {9, 9}},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			pl, err := Place(tt.cfg, tt.members)
			if err != nil {
				t.Fatal(err)
			}
			checkPlacement(t, tt.cfg, tt.members, pl)
			for p, r := range pl.Replicas {
				if tt.all != nil && !sameSet(r, tt.all) {
					t.Errorf("partition %d has replicas %v, want %v", p, r, tt.all)
				}
			}
			for _, l := range pl.Spread() {
				want, ok := tt.spread[l.Member]
				if !ok {
					continue
				}
				if (want[0] >= 0 && l.Leaders != want[0]) || l.Replicas != want[1] {
					t.Errorf("Spread() for %s = %d leaders, %d replicas; want %v", l.Member, l.Leaders, l.Replicas, want)
				}
			}
		})
	}
}

func nodes(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("node-%d", i)
	}
	return out
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

func TestMoves(t *testing.T) {
	pl := func(rs ...string) Placement {
		var p Placement
		for _, r := range rs {
			p.Replicas = append(p.Replicas, strings.Fields(r))
		}
		return p
	}
	for _, tt := range []struct {
		name             string
		from, to         Placement
		replicas, leader int
	}{
		{"same", pl("a b c", "b c a"), pl("a b c", "b c a"), 0, 0},
		{"follower order does not matter", pl("a b c"), pl("a c b"), 0, 0},
		{"leader swaps with a follower", pl("a b c"), pl("b a c"), 0, 1},
		{"follower replaced", pl("a b c", "b c a"), pl("a b d", "b c a"), 1, 0},
		{"leader replaced", pl("a b c"), pl("d b c"), 1, 1},
		{"all new", pl("a b c"), pl("d e f"), 3, 1},
		{"replica dropped", pl("a b c"), pl("a b"), 0, 0},
		{"replica added", pl("a b"), pl("a b c"), 1, 0},
		{"from nothing", Placement{}, pl("a b", "b a"), 4, 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r, l := tt.from.Moves(tt.to)
			if r != tt.replicas || l != tt.leader {
				t.Errorf("Moves() = %d, %d; want %d, %d", r, l, tt.replicas, tt.leader)
			}
		})
	}
}

// TestAugment drives the repair step on a hand-made state: partition 0
// (owner b) needs a follower, a and c are full, and only b, its owner, has
// room. Partition 0 takes a from partition 1, which takes b instead. With b
// full as well nothing fits, and overflow breaks the bound.
func TestAugment(t *testing.T) {
	state := func(bLoad int) *assignment {
		return &assignment{
			reps:  [][]int{{1}, {2, 0}},
			load:  []int{1, bLoad, 1},
			limit: 1,
			s:     newScorer([]string{"a", "b", "c"}),
			from:  make([]int, 2), via: make([]int, 2), seen: make([]int, 2), mseen: make([]int, 3),
		}
	}
	a := state(0)
	if !a.augment(0) {
		t.Fatal("augment found no chain")
	}
	if want := [][]int{{1, 0}, {2, 1}}; !reflect.DeepEqual(a.reps, want) || !slices.Equal(a.load, []int{1, 1, 1}) {
		t.Fatalf("after augment reps = %v, load = %v; want %v, [1 1 1]", a.reps, a.load, want)
	}
	a = state(1)
	if a.augment(0) {
		t.Fatal("augment found a chain where none exists")
	}
	a.overflow(0)
	if len(a.reps[0]) != 2 || a.reps[0][1] == 1 || a.load[0]+a.load[2] != 3 {
		t.Fatalf("after overflow reps = %v, load = %v", a.reps, a.load)
	}
}

// checkPlacement checks what holds for every placement: shape, distinct
// replicas from the member set, the owner from consistent first, followers
// in rendezvous order, the leader bound, and the replica bound.
func checkPlacement(t *testing.T, cfg PlaceConfig, members []string, pl Placement) {
	t.Helper()
	sorted := slices.Sorted(slices.Values(members))
	if !slices.Equal(pl.Members, sorted) {
		t.Fatalf("Members = %v, want %v", pl.Members, sorted)
	}
	if len(pl.Replicas) != int(cfg.Partitions) {
		t.Fatalf("%d partitions placed, want %d", len(pl.Replicas), cfg.Partitions)
	}
	n := len(members)
	rf := min(cfg.ReplicationFactor, n)
	owners := consistentOwners(cfg, members)
	pos := map[string]int{}
	for i, m := range sorted {
		pos[m] = i
	}
	s := newScorer(sorted)
	for p, r := range pl.Replicas {
		if len(r) != rf {
			t.Fatalf("partition %d has %d replicas %v, want %d", p, len(r), r, rf)
		}
		if r[0] != owners[p] {
			t.Fatalf("partition %d leader %s, want consistent's owner %s", p, r[0], owners[p])
		}
		for i, m := range r {
			if _, ok := pos[m]; !ok {
				t.Fatalf("partition %d replica %q is not a member", p, m)
			}
			if slices.Index(r, m) != i {
				t.Fatalf("partition %d has %s twice: %v", p, m, r)
			}
			if i >= 2 && s.score(uint32(p), pos[r[i-1]]) < s.score(uint32(p), pos[m]) {
				t.Fatalf("partition %d followers %v are not in rendezvous order", p, r[1:])
			}
		}
	}
	leaderBound := int(math.Ceil(float64(cfg.Partitions) / float64(n) * cfg.Load))
	sp := pl.Spread()
	for _, l := range sp {
		if l.Leaders > leaderBound {
			t.Fatalf("%s leads %d partitions, over ceil(%d/%d*%v) = %d", l.Member, l.Leaders, cfg.Partitions, n, cfg.Load, leaderBound)
		}
	}
	// The replica bound, as a model: members whose leaderships exceed an
	// even share hold only those; the rest are within one of each other.
	total, sharing := int(cfg.Partitions)*rf, n
	alone := map[string]bool{}
	for changed := true; changed; {
		changed = false
		for _, l := range sp {
			if !alone[l.Member] && l.Leaders*sharing > total {
				alone[l.Member], changed = true, true
				total, sharing = total-l.Leaders, sharing-1
			}
		}
	}
	limit := total / sharing
	for _, l := range sp {
		if alone[l.Member] && l.Replicas != l.Leaders {
			t.Fatalf("%s leads %d partitions, more than its share, and holds %d replicas:\n%v", l.Member, l.Leaders, l.Replicas, sp)
		}
		if !alone[l.Member] && (l.Replicas < limit || l.Replicas > limit+1) {
			t.Fatalf("%s holds %d replicas, want %d or %d:\n%v", l.Member, l.Replicas, limit, limit+1, sp)
		}
	}
}

// consistentOwners is the model for preferred leaders: consistent itself.
func consistentOwners(cfg PlaceConfig, members []string) []string {
	c := newConsistent(cfg, members)
	out := make([]string, cfg.Partitions)
	for p := range out {
		out[p] = c.GetPartitionOwner(p).String()
	}
	return out
}

func newConsistent(cfg PlaceConfig, members []string) *consistent.Consistent {
	ms := make([]consistent.Member, 0, len(members))
	for _, m := range slices.Sorted(slices.Values(members)) {
		ms = append(ms, member(m))
	}
	return consistent.New(ms, consistent.Config{
		Hasher: hasher{}, PartitionCount: int(cfg.Partitions), ReplicationFactor: virtualNodes, Load: cfg.Load,
	})
}

func randomMembers(r *rand.Rand, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%016x", r.Uint64())
	}
	return out
}

// TestPlaceProperties checks random configurations and member sets against
// checkPlacement and for independence from the member order.
func TestPlaceProperties(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	loads := []float64{1, 1.05, 1.25, 1.5, 3}
	for i := range 400 {
		cfg := PlaceConfig{
			Partitions:        uint32(1 + r.IntN(300)),
			ReplicationFactor: 1 + r.IntN(5),
			Load:              loads[r.IntN(len(loads))],
		}
		if i%50 == 0 {
			cfg.Partitions = MaxPartitions
		}
		members := randomMembers(r, 1+r.IntN(12))
		t.Run(fmt.Sprintf("%d/%+v/n=%d", i, cfg, len(members)), func(t *testing.T) {
			pl, err := Place(cfg, members)
			if err != nil {
				t.Fatal(err)
			}
			checkPlacement(t, cfg, members, pl)
			shuffled := slices.Clone(members)
			r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
			again, err := Place(cfg, shuffled)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(pl, again) {
				t.Fatalf("placement depends on member order: %v then %v", members, shuffled)
			}
		})
	}
}

// TestPlaceChurn measures what a leave and a join move beyond what they must
// and bounds it. A leave must re-home the replicas the leaving member held
// (when the replica count stays); a join must give the new member its
// share. Moves beyond that go between two members present before and after:
// some follow leaderships that consistent moves between them, the rest keep
// replica counts within one of each other.
func TestPlaceChurn(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	cfg := DefaultPlaceConfig()
	for _, n := range []int{3, 4, 5, 7, 10, 16} {
		var leaveExtra, joinExtra, leaveMax, joinMax int
		sets := 100
		if testing.Short() {
			sets = 20
		}
		for range sets {
			ms := randomMembers(r, n+1)
			base, _ := Place(cfg, ms[:n])
			joined, _ := Place(cfg, ms)
			left, _ := Place(cfg, ms[1:n])
			moved, _ := base.Moves(left)
			extra := moved - mustMoveOnLeave(base, ms[0], n, cfg.ReplicationFactor)
			leaveExtra, leaveMax = leaveExtra+extra, max(leaveMax, extra)
			moved, _ = base.Moves(joined)
			extra = moved - holds(joined, ms[n])
			joinExtra, joinMax = joinExtra+extra, max(joinMax, extra)
		}
		slots := int(cfg.Partitions) * min(cfg.ReplicationFactor, n)
		t.Logf("n=%d: moves between surviving members per leave: mean %.1f, max %d; per join: mean %.1f, max %d (of %d replicas)",
			n, float64(leaveExtra)/float64(sets), leaveMax, float64(joinExtra)/float64(sets), joinMax, slots)
		// Measured up to 16 nodes: at most 6% of the replicas on average, 11% at
		// worst.
		if leaveExtra > slots*sets/10 || joinExtra > slots*sets/10 || leaveMax > slots/5 || joinMax > slots/5 {
			t.Errorf("n=%d: churn moves too many replicas between surviving members", n)
		}
	}
}

// mustMoveOnLeave is the number of replicas that must be rebuilt when gone
// leaves a placement over n members: one for every replica it held, unless
// the replica count drops with it.
func mustMoveOnLeave(pl Placement, gone string, n, rf int) int {
	if n-1 < rf {
		return 0
	}
	return holds(pl, gone)
}

func holds(pl Placement, m string) int {
	c := 0
	for _, r := range pl.Replicas {
		if slices.Contains(r, m) {
			c++
		}
	}
	return c
}

// TestPlaceGolden pins a small placement: Place is a contract between
// versions of the coordinator, and a change to it moves data in every
// cluster that upgrades. Run with -update only for an intended change, and
// say so in DESIGN.md.
func TestPlaceGolden(t *testing.T) {
	cfg := PlaceConfig{Partitions: 16, ReplicationFactor: 3, Load: 1.25}
	var b strings.Builder
	members := []string{"node-a", "node-b", "node-c", "node-d", "node-e"}
	pl, err := Place(cfg, members)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(&b, "# %+v members %v\n%v", cfg, members, pl)
	left, err := Place(cfg, slices.Delete(slices.Clone(members), 2, 3))
	if err != nil {
		t.Fatal(err)
	}
	moved, leaders := pl.Moves(left)
	fmt.Fprintf(&b, "# without node-c: %d replicas moved, %d leaders moved\n%v", moved, leaders, left)
	got := b.String()

	path := filepath.Join("testdata", "placement.golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("placement changed; got:\n%s\nwant:\n%s", got, want)
	}
}

// placeFunc computes a placement; the measurement compares three.
type placeFunc func(cfg PlaceConfig, members []string) Placement

func placeBounded(cfg PlaceConfig, members []string) Placement {
	pl, err := Place(cfg, members)
	if err != nil {
		panic(err)
	}
	return pl
}

// placeClosestN is consistent's own answer: the owner, then the members
// after it on a ring of member name hashes.
func placeClosestN(cfg PlaceConfig, members []string) Placement {
	c := newConsistent(cfg, members)
	rf := min(cfg.ReplicationFactor, len(members))
	pl := Placement{Members: slices.Sorted(slices.Values(members)), Replicas: make([][]string, cfg.Partitions)}
	for p := range pl.Replicas {
		ms, err := c.GetClosestNForPartition(p, rf)
		if err != nil {
			panic(err)
		}
		for _, m := range ms {
			pl.Replicas[p] = append(pl.Replicas[p], m.String())
		}
	}
	return pl
}

// placeRendezvous is rendezvous hashing without the bound: every partition
// takes the best-weighted members after its owner.
func placeRendezvous(cfg PlaceConfig, members []string) Placement {
	sorted := slices.Sorted(slices.Values(members))
	owners := consistentOwners(cfg, members)
	s := newScorer(sorted)
	rf := min(cfg.ReplicationFactor, len(members))
	pl := Placement{Members: sorted, Replicas: make([][]string, cfg.Partitions)}
	for p := range pl.Replicas {
		ms := make([]int, len(sorted))
		for i := range ms {
			ms[i] = i
		}
		slices.SortFunc(ms, func(x, y int) int { return cmpDesc(s.score(uint32(p), x), s.score(uint32(p), y)) })
		pl.Replicas[p] = []string{owners[p]}
		for _, m := range ms {
			if len(pl.Replicas[p]) < rf && sorted[m] != owners[p] {
				pl.Replicas[p] = append(pl.Replicas[p], sorted[m])
			}
		}
	}
	return pl
}

// stats accumulates measurements over member sets.
type stats struct {
	sets                                         int
	leadMin, leadMax, repMin, repMax             int // worst over sets
	sumLeadMin, sumLeadMax, sumRepMin, sumRepMax float64
	sumStd                                       float64
	sumSets                                      float64 // distinct follower sets per leader
	joinRep, joinLead, joinExtra                 float64
	leaveRep, leaveLead, leaveXtra               float64
}

func (s *stats) add(base, joined, left Placement, gone, added string, n, rf int) {
	if s.sets == 0 {
		s.leadMin, s.repMin = math.MaxInt, math.MaxInt
	}
	s.sets++
	lmin, lmax, rmin, rmax := math.MaxInt, 0, math.MaxInt, 0
	var sum, sq float64
	sp := base.Spread()
	for _, l := range sp {
		lmin, lmax = min(lmin, l.Leaders), max(lmax, l.Leaders)
		rmin, rmax = min(rmin, l.Replicas), max(rmax, l.Replicas)
		sum += float64(l.Replicas)
		sq += float64(l.Replicas) * float64(l.Replicas)
	}
	mean := sum / float64(len(sp))
	s.sumStd += math.Sqrt(sq/float64(len(sp)) - mean*mean)
	s.leadMin, s.leadMax = min(s.leadMin, lmin), max(s.leadMax, lmax)
	s.repMin, s.repMax = min(s.repMin, rmin), max(s.repMax, rmax)
	s.sumLeadMin += float64(lmin)
	s.sumLeadMax += float64(lmax)
	s.sumRepMin += float64(rmin)
	s.sumRepMax += float64(rmax)

	followerSets := map[string]map[string]bool{}
	for _, r := range base.Replicas {
		f := slices.Sorted(slices.Values(r[1:]))
		if followerSets[r[0]] == nil {
			followerSets[r[0]] = map[string]bool{}
		}
		followerSets[r[0]][strings.Join(f, ",")] = true
	}
	per := 0
	for _, fs := range followerSets {
		per += len(fs)
	}
	s.sumSets += float64(per) / float64(len(followerSets))

	rep, lead := base.Moves(joined)
	s.joinRep += float64(rep)
	s.joinLead += float64(lead)
	s.joinExtra += float64(rep - holds(joined, added))
	rep, lead = base.Moves(left)
	s.leaveRep += float64(rep)
	s.leaveLead += float64(lead)
	s.leaveXtra += float64(rep - mustMoveOnLeave(base, gone, n, rf))
}

// TestPlacementSpread measures, over random member sets, how evenly 64
// partitions with 3 replicas spread and how much a join and a leave move,
// for the bounded rendezvous placement (Place), unbounded rendezvous and
// consistent's GetClosestN. Run with -v to see the table; DESIGN.md quotes
// it. It fails if Place breaks its bounds.
func TestPlacementSpread(t *testing.T) {
	cfg := DefaultPlaceConfig()
	sets := 200
	if testing.Short() {
		sets = 40
	}
	methods := []struct {
		name  string
		place placeFunc
	}{
		{"bounded rendezvous (Place)", placeBounded},
		{"rendezvous, no bound", placeRendezvous},
		{"consistent GetClosestN", placeClosestN},
	}
	var b strings.Builder
	b.WriteString("| nodes | followers | leaders/node min-max | replicas/node min-max | replicas stddev | follower sets per leader | join: replicas moved (ideal) | join: leaders moved (ideal) | join: moves between old members | leave: replicas moved (ideal) | leave: leaders moved (ideal) | leave: moves between survivors |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, n := range []int{3, 5, 7} {
		rf := min(cfg.ReplicationFactor, n)
		var all []stats
		for _, m := range methods {
			var s stats
			r := rand.New(rand.NewPCG(5, uint64(n))) // the same member sets for every method
			for range sets {
				ms := randomMembers(r, n+1)
				base := m.place(cfg, ms[:n])
				s.add(base, m.place(cfg, ms), m.place(cfg, ms[1:n]), ms[0], ms[n], n, cfg.ReplicationFactor)
				if m.name == methods[0].name {
					checkPlacement(t, cfg, ms[:n], base) // the leader and replica bounds
				}
			}
			all = append(all, s)
			f := float64(s.sets)
			p := float64(cfg.Partitions)
			idealLeave := 0.0
			if n-1 >= cfg.ReplicationFactor {
				idealLeave = p * float64(rf) / float64(n)
			}
			fmt.Fprintf(&b, "| %d | %s | %.1f-%.1f (%d-%d) | %.1f-%.1f (%d-%d) | %.2f | %.1f | %.1f (%.1f) | %.1f (%.1f) | %.1f | %.1f (%.1f) | %.1f (%.1f) | %.1f |\n",
				n, m.name,
				s.sumLeadMin/f, s.sumLeadMax/f, s.leadMin, s.leadMax,
				s.sumRepMin/f, s.sumRepMax/f, s.repMin, s.repMax,
				s.sumStd/f, s.sumSets/f,
				s.joinRep/f, p*float64(min(cfg.ReplicationFactor, n+1))/float64(n+1),
				s.joinLead/f, p/float64(n+1), s.joinExtra/f,
				s.leaveRep/f, idealLeave, s.leaveLead/f, p/float64(n), s.leaveXtra/f)
		}
		bounded, closest := all[0], all[2]
		f, p := float64(sets), float64(cfg.Partitions)
		if n > cfg.ReplicationFactor && bounded.sumSets <= 2*closest.sumSets {
			t.Errorf("n=%d: %.1f follower sets per leader, want well above GetClosestN's %.1f", n, bounded.sumSets/f, closest.sumSets/f)
		}
		// Measured: at most 1.3 times the ideal; fail well before 2.
		if ideal := p * float64(rf) / float64(n+1); bounded.joinRep/f > 1.6*ideal {
			t.Errorf("n=%d: a join moves %.1f replicas, ideal %.1f", n, bounded.joinRep/f, ideal)
		}
		if ideal := p * float64(rf) / float64(n); n > cfg.ReplicationFactor && bounded.leaveRep/f > 1.6*ideal {
			t.Errorf("n=%d: a leave moves %.1f replicas, ideal %.1f", n, bounded.leaveRep/f, ideal)
		}
	}
	t.Logf("%d partitions, %d replicas, Load %v; means over %d random member sets, worst in parentheses\n%s",
		cfg.Partitions, cfg.ReplicationFactor, cfg.Load, sets, b.String())
}

func BenchmarkPlace(b *testing.B) {
	for _, bm := range []struct {
		partitions uint32
		nodes      int
	}{{64, 3}, {64, 7}, {4096, 7}, {4096, 50}} {
		b.Run(fmt.Sprintf("partitions=%d/nodes=%d", bm.partitions, bm.nodes), func(b *testing.B) {
			cfg := DefaultPlaceConfig()
			cfg.Partitions = bm.partitions
			members := randomMembers(rand.New(rand.NewPCG(6, 7)), bm.nodes)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Place(cfg, members); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

package bench

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
)

// Workload mixes, as YCSB's core workloads: the share of operations that
// are reads; the rest are updates (a Put of an existing key).
var readProportions = map[string]float64{
	"A": 0.50, // update heavy: session store recording recent actions
	"B": 0.95, // read mostly: photo tagging
	"C": 1.00, // read only: user profile cache
	"W": 0.05, // write heavy (not in YCSB's core set)
}

// Key distributions.
const (
	DistUniform = "uniform"
	DistZipfian = "zipfian"
)

// zipfianTheta is YCSB's ZipfianGenerator.ZIPFIAN_CONSTANT.
const zipfianTheta = 0.99

// keyspace holds the names of all keys, "user" followed by the index
// zero-padded to a fixed width, in one string: key i is a substring, so
// naming a key neither formats nor allocates.
type keyspace struct {
	all   string
	width int // bytes per key
	n     int
}

func newKeyspace(n int) *keyspace {
	digits := len(strconv.Itoa(max(n-1, 0)))
	width := len("user") + digits
	var b strings.Builder
	b.Grow(n * width)
	for i := range n {
		b.WriteString("user")
		s := strconv.Itoa(i)
		for range digits - len(s) {
			b.WriteByte('0')
		}
		b.WriteString(s)
	}
	return &keyspace{all: b.String(), width: width, n: n}
}

// key returns the name of key i, 0 <= i < n.
func (k *keyspace) key(i int) string {
	return k.all[i*k.width : (i+1)*k.width]
}

// keyChooser picks a key index in [0, n) with r. Implementations are
// immutable after construction and shared by all workers; each worker
// passes its own rand.
type keyChooser interface {
	next(r *rand.Rand) int
}

type uniformChooser struct{ n int }

func (u uniformChooser) next(r *rand.Rand) int { return r.IntN(u.n) }

// zipfian is YCSB's ZipfianGenerator over items 0..n-1 (Gray et al.,
// "Quickly Generating Billion-Record Synthetic Databases", SIGMOD 1994):
// item i has probability (1/(i+1)^theta) / zeta(n, theta), so item 0 is
// the most popular. zeta is computed once, in O(n).
type zipfian struct {
	n          int
	theta      float64
	alpha      float64 // 1 / (1 - theta)
	zetan      float64 // zeta(n, theta)
	zeta2theta float64 // zeta(2, theta)
	eta        float64
}

func newZipfian(n int, theta float64) *zipfian {
	z := &zipfian{n: n, theta: theta}
	z.zeta2theta = zeta(2, theta)
	z.alpha = 1 / (1 - theta)
	z.zetan = zeta(n, theta)
	z.eta = (1 - math.Pow(2/float64(n), 1-theta)) / (1 - z.zeta2theta/z.zetan)
	return z
}

// zeta returns the sum over i in 1..n of 1/i^theta.
func zeta(n int, theta float64) float64 {
	var sum float64
	for i := 1; i <= n; i++ {
		sum += 1 / math.Pow(float64(i), theta)
	}
	return sum
}

// rank returns an item, 0 the most popular (YCSB nextLong).
func (z *zipfian) rank(r *rand.Rand) int {
	u := r.Float64()
	uz := u * z.zetan
	if uz < 1 {
		return 0
	}
	if uz < 1+math.Pow(0.5, z.theta) {
		return 1
	}
	ret := int(float64(z.n) * math.Pow(z.eta*u-z.eta+1, z.alpha))
	return min(ret, z.n-1)
}

// scrambledZipfian is YCSB's ScrambledZipfianGenerator: a zipfian rank
// hashed with FNV-64 modulo the key count, so that the popular keys are
// spread over the keyspace instead of clustering at its start.
type scrambledZipfian struct{ z *zipfian }

func (s scrambledZipfian) next(r *rand.Rand) int {
	return int(fnvHash64(uint64(s.z.rank(r))) % uint64(s.z.n))
}

// fnvHash64 is YCSB's Utils.fnvhash64: FNV-1a over the 8 little-endian
// bytes of v, made non-negative as a Java long.
func fnvHash64(v uint64) uint64 {
	const (
		offsetBasis = 0xCBF29CE484222325
		prime       = 1099511628211
	)
	h := uint64(offsetBasis)
	for range 8 {
		h ^= v & 0xff
		v >>= 8
		h *= prime
	}
	if int64(h) < 0 { // Math.abs of a Java long
		h = uint64(-int64(h))
	}
	return h
}

func newKeyChooser(dist string, n int) (keyChooser, error) {
	switch dist {
	case DistUniform:
		return uniformChooser{n: n}, nil
	case DistZipfian:
		return scrambledZipfian{z: newZipfian(n, zipfianTheta)}, nil
	}
	return nil, fmt.Errorf("unknown distribution %q (want %s or %s)", dist, DistUniform, DistZipfian)
}

// opKind is the kind of an operation.
type opKind int

const (
	opRead opKind = iota
	opUpdate
	numOpKinds
)

func (k opKind) String() string {
	if k == opRead {
		return "read"
	}
	return "update"
}

// workload is what the workers share: the keys, how to pick them and the
// read share. It is immutable.
type workload struct {
	keys      *keyspace
	chooser   keyChooser
	readShare float64
	valueSize int
}

func newWorkload(cfg RunConfig) (*workload, error) {
	share, ok := readProportions[cfg.Workload]
	if !ok {
		return nil, fmt.Errorf("unknown workload %q", cfg.Workload)
	}
	ch, err := newKeyChooser(cfg.Distribution, cfg.Keys)
	if err != nil {
		return nil, err
	}
	return &workload{keys: newKeyspace(cfg.Keys), chooser: ch, readShare: share, valueSize: cfg.ValueSize}, nil
}

// opGen generates one worker's operations. It is not safe for concurrent
// use: each worker has its own, seeded with the run's seed plus the
// worker's id, so a run is reproducible.
type opGen struct {
	w     *workload
	r     *rand.Rand
	value []byte // reused by every write; see nextValue
}

func (w *workload) gen(seed int64, worker int) *opGen {
	r := rand.New(rand.NewPCG(uint64(seed+int64(worker)), 0x656c6361636865)) // "elcache"
	v := make([]byte, w.valueSize)
	for i := range v {
		v[i] = 'a' + byte(r.IntN(26))
	}
	return &opGen{w: w, r: r, value: v}
}

// next returns the next operation and its key's index.
func (g *opGen) next() (opKind, int) {
	k := opUpdate
	if g.w.readShare >= 1 || g.r.Float64() < g.w.readShare {
		k = opRead
	}
	return k, g.w.chooser.next(g.r)
}

// nextValue changes a few bytes of the worker's value buffer and returns
// it, so successive writes differ without allocating. The buffer is
// reused: a Target must not keep it after Put returns.
func (g *opGen) nextValue() []byte {
	v := g.value
	if len(v) == 0 {
		return v
	}
	for range min(4, len(v)) {
		v[g.r.IntN(len(v))] = 'a' + byte(g.r.IntN(26))
	}
	return v
}

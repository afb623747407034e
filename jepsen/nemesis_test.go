package jepsen

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// TestNemesisEarly: the first round of a schedule draws the early kinds
// within its first half, and is still an order of every kind.
func TestNemesisEarly(t *testing.T) {
	first := []string{KindKillAll, KindKill}
	for seed := range uint64(200) {
		n := &nemesis{rng: rand.New(rand.NewPCG(seed, 1))}
		order := n.shuffled(AllKinds)
		n.early(order, first)
		if got, want := slices.Sorted(slices.Values(order)), slices.Sorted(slices.Values(AllKinds)); !slices.Equal(got, want) {
			t.Fatalf("seed %d: order %v is not a permutation of %v", seed, order, AllKinds)
		}
		half := (len(order) + 1) / 2
		for _, k := range first {
			if i := slices.Index(order, k); i >= half {
				t.Errorf("seed %d: %s at %d of %d: %v", seed, k, i, len(order), order)
			}
		}
	}
}

package ring

import (
	"fmt"
	"slices"
	"testing"
)

func TestBalanceLeaders(t *testing.T) {
	for _, n := range []int{1, 2, 3, 5, 7, 16} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			var members []string
			for i := 0; i < n; i++ {
				members = append(members, fmt.Sprintf("node-%d", i))
			}
			p, err := Place(DefaultPlaceConfig(), members)
			if err != nil {
				t.Fatal(err)
			}
			b := p.BalanceLeaders()
			limit := (64 + n - 1) / n
			for _, m := range b.Spread() {
				if m.Leaders > limit+1 {
					t.Errorf("member %s leads %d partitions, over ceil(64/%d)+1 = %d", m.Member, m.Leaders, n, limit+1)
				}
			}
			for i := range p.Replicas {
				a, c := slices.Clone(p.Replicas[i]), slices.Clone(b.Replicas[i])
				slices.Sort(a)
				slices.Sort(c)
				if !slices.Equal(a, c) {
					t.Fatalf("partition %d: replica set changed from %v to %v", i, p.Replicas[i], b.Replicas[i])
				}
			}
			if again := p.BalanceLeaders(); !slices.EqualFunc(again.Replicas, b.Replicas, slices.Equal[[]string]) {
				t.Fatal("BalanceLeaders is not deterministic")
			}
			var before, after []int
			for _, m := range p.Spread() {
				before = append(before, m.Leaders)
			}
			for _, m := range b.Spread() {
				after = append(after, m.Leaders)
			}
			t.Logf("%d nodes: leaders %v -> %v", n, before, after)
		})
	}
}

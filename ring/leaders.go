package ring

import "slices"

// BalanceLeaders returns p with the preferred leader of some partitions
// moved to another of their replicas, so that no member is the preferred
// leader of more than ceil(partitions/members) partitions where the replica
// sets allow it. Replica sets do not change, so no data moves: only which
// replica leads. Consistent hashing's bounded load alone leaves leader
// counts far apart (15 to 27 of 64 on 3 nodes); leaders carry the writes
// and the linearizable reads, so their spread is the load spread.
//
// Partitions keep their consistent-hash owner while it is under the cap;
// the others take their least-loaded follower, first in follower order on
// ties. It is deterministic.
func (p Placement) BalanceLeaders() Placement {
	members := len(p.Members)
	if members == 0 || len(p.Replicas) == 0 {
		return p
	}
	limit := (len(p.Replicas) + members - 1) / members
	out := Placement{Members: p.Members, Replicas: make([][]string, len(p.Replicas))}
	leads := make(map[string]int, members)
	var over []int
	for i, r := range p.Replicas {
		out.Replicas[i] = r
		if len(r) == 0 {
			continue
		}
		if leads[r[0]] < limit {
			leads[r[0]]++
		} else {
			over = append(over, i)
		}
	}
	for _, i := range over {
		r := p.Replicas[i]
		best := 0
		for j := 1; j < len(r); j++ {
			if leads[r[j]] < leads[r[best]] {
				best = j
			}
		}
		leads[r[best]]++
		if best != 0 {
			nr := slices.Clone(r)
			nr[0], nr[best] = nr[best], nr[0]
			out.Replicas[i] = nr
		}
	}
	// A member left over the cap gives partitions to followers under it.
	for i, r := range out.Replicas {
		if len(r) == 0 || leads[r[0]] <= limit {
			continue
		}
		for j := 1; j < len(r); j++ {
			if leads[r[j]] < limit {
				leads[r[0]]--
				leads[r[j]]++
				nr := slices.Clone(r)
				nr[0], nr[j] = nr[j], nr[0]
				out.Replicas[i] = nr
				break
			}
		}
	}
	return out
}

package plan

import (
	"slices"
	"sync"

	"github.com/elcache/elcache/ring"
)

// memo remembers the latest placement computed: ring.Place is pure but
// builds a consistent-hash ring per call (a tenth of an idle node's CPU
// when the cluster leader asked every reconcile interval), and its inputs
// change only when the active nodes do.
type memo struct {
	mu      sync.Mutex
	cfg     ring.PlaceConfig
	members []string // nil until the first placement
	pl      ring.Placement
}

// place returns ring.Place(cfg, members) with its leaders balanced, from
// the memo when the inputs are those of the latest call. The result is
// shared: callers must not change it.
func (m *memo) place(cfg ring.PlaceConfig, members []string) (ring.Placement, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.members != nil && m.cfg == cfg && slices.Equal(m.members, members) {
		return m.pl, nil
	}
	pl, err := ring.Place(cfg, members)
	if err != nil {
		return ring.Placement{}, err
	}
	m.cfg, m.members, m.pl = cfg, slices.Clone(members), pl.BalanceLeaders()
	return m.pl, nil
}

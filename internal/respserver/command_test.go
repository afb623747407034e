package respserver

import (
	"slices"
	"testing"

	"github.com/elcache/elcache/internal/metrics"
)

// TestMetricsKnowEveryCommand: the metrics count every command of the
// table under its own name, not as "unknown".
func TestMetricsKnowEveryCommand(t *testing.T) {
	known := metrics.RESPCommands()
	for name := range buildTable() {
		if !slices.Contains(known, name) {
			t.Errorf("command %q is missing from internal/metrics' RESP command list", name)
		}
	}
}

// TestCommandTable: every command's arity and key positions are
// consistent, and single-key commands take their key first.
func TestCommandTable(t *testing.T) {
	for name, c := range buildTable() {
		if c.name != name || c.arity == 0 {
			t.Errorf("%s: name %q arity %d", name, c.name, c.arity)
		}
		if c.parallel && (c.firstKey != 1 || c.lastKey != 1 || c.arity > 0 && c.arity < 2 || c.arity < 0 && -c.arity < 2) {
			t.Errorf("%s: parallel commands need one key at position 1", name)
		}
	}
}

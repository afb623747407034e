package node_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests (internal and external: they share one
// binary) if any goroutine outlives them: every node, partition and client a
// test starts must be stopped by the time it ends.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

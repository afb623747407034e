package readround

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them: every
// round and call a test starts must have ended by the time it ends.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

package pipeline

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them: every
// stream, worker and sender a test starts must have ended by the time it
// ends.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

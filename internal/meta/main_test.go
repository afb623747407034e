package meta_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them: every
// raft replica, transport and database a test opens must be closed by the
// time it ends.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

package version

import (
	"strings"
	"testing"
)

func TestString(t *testing.T) {
	if !strings.HasPrefix(String, Release) {
		t.Errorf("version %q does not start with the release %q", String, Release)
	}
	if rest := strings.TrimPrefix(String, Release); rest != "" && !strings.HasPrefix(rest, "+") {
		t.Errorf("version %q: %q after the release, want +COMMIT", String, rest)
	}
}

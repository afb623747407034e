package gossip

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

func TestMembershipLogLevels(t *testing.T) {
	for _, tc := range []struct {
		line  string
		level slog.Level
		msg   string
	}{
		{"[DEBUG] memberlist: Stream connection from=1.2.3.4:5", slog.LevelDebug, "Stream connection from=1.2.3.4:5"},
		{"[INFO] memberlist: Suspect b has failed, no acks received", slog.LevelDebug, "Suspect b has failed, no acks received"},
		{"[WARN] memberlist: Refuting a suspect message (from: a)", slog.LevelInfo, "Refuting a suspect message (from: a)"},
		{"[ERR] memberlist: Failed fallback TCP ping: EOF", slog.LevelWarn, "Failed fallback TCP ping: EOF"},
		{"[ERROR] memberlist: x", slog.LevelWarn, "x"},
		{"Err: Could not set the deadline", slog.LevelInfo, "Err: Could not set the deadline"},
	} {
		level, msg := memberlistLevel(tc.line)
		if level != tc.level || msg != tc.msg {
			t.Errorf("%q: %v %q, want %v %q", tc.line, level, msg, tc.level, tc.msg)
		}
	}

	var buf bytes.Buffer
	w := &memberlistLog{l: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))}
	_, _ = w.Write([]byte("[DEBUG] memberlist: hidden\n[ERR] memberlist: shown\n"))
	w.quiet.Store(true)
	_, _ = w.Write([]byte("[ERR] memberlist: after close\n"))
	if out := buf.String(); !strings.Contains(out, "level=WARN msg=shown") || strings.Contains(out, "hidden") || strings.Contains(out, "after close") {
		t.Errorf("log output:\n%s", out)
	}
}

package gossip

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync/atomic"
)

// memberlistLog bridges memberlist's *log.Logger to slog. memberlist tags
// each line with a level and is chatty: every level goes one step down
// (DEBUG and INFO to debug, WARN to info, ERR to warn). After Close starts,
// everything is debug: it is shutdown noise.
type memberlistLog struct {
	l     *slog.Logger
	quiet atomic.Bool
}

func (w *memberlistLog) Write(p []byte) (int, error) {
	for _, line := range bytes.Split(bytes.TrimRight(p, "\n"), []byte("\n")) {
		level, msg := memberlistLevel(string(line))
		if w.quiet.Load() {
			level = slog.LevelDebug
		}
		if w.l.Enabled(context.Background(), level) {
			w.l.Log(context.Background(), level, msg)
		}
	}
	return len(p), nil
}

// memberlistLevel maps a memberlist log line to a slog level and message.
func memberlistLevel(line string) (slog.Level, string) {
	level := slog.LevelInfo // untagged lines are rare; keep them visible
	for _, t := range []struct {
		tag   string
		level slog.Level
	}{
		{"[DEBUG]", slog.LevelDebug},
		{"[INFO]", slog.LevelDebug},
		{"[WARN]", slog.LevelInfo},
		{"[ERR]", slog.LevelWarn},
		{"[ERROR]", slog.LevelWarn},
	} {
		if rest, ok := strings.CutPrefix(line, t.tag); ok {
			level, line = t.level, rest
			break
		}
	}
	line = strings.TrimSpace(line)
	line = strings.TrimPrefix(line, "memberlist: ")
	if strings.HasPrefix(line, "Conflicting address for ") {
		// Expected, and repeated on every alive message, while a node that
		// restarted at a new address waits for its old entry to fail; the
		// membership layer reports what matters about it.
		level = slog.LevelDebug
	}
	return level, line
}

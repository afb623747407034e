package node

import (
	"bytes"
	"context"
	"log/slog"
	"strings"

	"github.com/hashicorp/go-hclog"
)

// newRaftLogger bridges hashicorp/raft's hclog output into slog: hclog
// formats each line, and slogWriter re-emits it one level lower than raft
// gave it, because raft reports routine events (an election at start-up, a
// leader change) as INFO and WARN. Errors stay errors.
func newRaftLogger(l *slog.Logger, partition uint32) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{
		Name:            "raft",
		Level:           hclog.Info,
		Output:          slogWriter{l: l.With("component", "raft", "partition", partition)},
		DisableTime:     true,
		IncludeLocation: false,
	})
}

type slogWriter struct{ l *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	for _, line := range bytes.Split(bytes.TrimRight(p, "\n"), []byte("\n")) {
		msg := string(line)
		level := slog.LevelDebug
		switch {
		case strings.HasPrefix(msg, "[ERROR]"):
			level = slog.LevelError
		case strings.HasPrefix(msg, "[WARN]"):
			level = slog.LevelInfo
		}
		if i := strings.IndexByte(msg, ']'); i >= 0 && strings.HasPrefix(msg, "[") {
			msg = strings.TrimSpace(msg[i+1:])
		}
		w.l.Log(context.Background(), level, msg)
	}
	return len(p), nil
}

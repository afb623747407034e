// Package raftlog bridges hashicorp/raft's hclog logger into log/slog, so
// that every Raft group of a node logs through the node's logger, with
// raft's routine noise (elections at start-up, failed sends to a peer
// that restarted) one level down.
package raftlog

import (
	"bytes"
	"context"
	"log/slog"
	"strings"

	"github.com/hashicorp/go-hclog"
)

// New bridges hashicorp/raft's hclog output into l: hclog formats each
// line, and the writer re-emits it one level lower than raft gave it,
// because raft reports routine events (an election at start-up, a leader
// change) as INFO and WARN. Errors stay errors, except those a cluster
// sees every time a peer restarts or is cut off, which are INFO. Every
// line carries component=raft and attrs.
func New(l *slog.Logger, attrs ...any) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{
		Name:            "raft",
		Level:           hclog.Info,
		Output:          slogWriter{l: l.With("component", "raft").With(attrs...)},
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
		case strings.HasPrefix(msg, "[ERROR]") && routine(msg):
			level = slog.LevelInfo
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

// routineRaftErrors are what raft logs as errors but a cluster sees every
// time a peer restarts, is partitioned away or loses an election: the
// node's own view of that comes from gossip and the controller.
var routineRaftErrors = []string{
	"failed to heartbeat to",
	"failed to appendEntries to",
	"failed to make requestVote RPC",
	"failed to make requestPreVote RPC",
	"peer has newer term, stopping replication",
	"failed to contact",
}

func routine(msg string) bool {
	for _, r := range routineRaftErrors {
		if strings.Contains(msg, r) {
			return true
		}
	}
	return false
}

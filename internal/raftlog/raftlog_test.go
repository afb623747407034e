package raftlog

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"testing"
)

// TestLevels: raft's lines come out one level down, routine errors as
// INFO, real errors as ERROR, with raft's level tag stripped and the
// component and caller's attributes on every line.
func TestLevels(t *testing.T) {
	var buf bytes.Buffer
	l := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h := New(l, "partition", 7)
	h.Info("entering follower state")
	h.Warn("heartbeat timeout reached, starting election")
	h.Error("failed to appendEntries to", "peer", "b")
	h.Error("failed to take snapshot")
	want := []struct{ level, msg string }{
		{"DEBUG", "raft: entering follower state"},
		{"INFO", "raft: heartbeat timeout reached, starting election"},
		{"INFO", "raft: failed to appendEntries to: peer=b"},
		{"ERROR", "raft: failed to take snapshot"},
	}
	dec := json.NewDecoder(&buf)
	for i, w := range want {
		var line map[string]any
		if err := dec.Decode(&line); err != nil {
			t.Fatalf("line %d: %v", i, err)
		}
		if line["level"] != w.level || line["msg"] != w.msg {
			t.Errorf("line %d: level %v msg %q, want %s %q", i, line["level"], line["msg"], w.level, w.msg)
		}
		if line["component"] != "raft" || line["partition"] != float64(7) {
			t.Errorf("line %d: attributes %v", i, line)
		}
	}
	if dec.More() {
		t.Error("more lines than logged")
	}
}

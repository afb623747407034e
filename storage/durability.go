package storage

import "github.com/hashicorp/raft"

// extReplicated is the one-byte raft.Log.Extensions value that marks a
// command entry as REPLICATED: the log stores of the leader and the
// followers acknowledge it once it is written to the operating system,
// and sync it within the engine's sync interval. Every other entry
// (commands without the mark, configuration changes, no-ops, barriers) is
// synced before StoreLogs returns.
const extReplicated byte = 'R'

// ReplicatedExtensions returns the raft.Log.Extensions that mark a command
// entry as REPLICATED (see extReplicated). Pass them to raft.ApplyLog.
func ReplicatedExtensions() []byte { return []byte{extReplicated} }

// IsReplicated reports whether l is a command entry marked REPLICATED.
func IsReplicated(l *raft.Log) bool {
	return l.Type == raft.LogCommand && len(l.Extensions) == 1 && l.Extensions[0] == extReplicated
}

// allReplicated reports whether every entry of logs is marked REPLICATED,
// so that storing them need not wait for a sync.
func allReplicated(logs []*raft.Log) bool {
	for _, l := range logs {
		if !IsReplicated(l) {
			return false
		}
	}
	return true
}

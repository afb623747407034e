package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/elcache/elcache/client"
)

// emit prints v as one JSON object in JSON mode, else calls text.
func (e *env) emit(v any, text func(w io.Writer)) error {
	if !e.json {
		text(e.stdout)
		return nil
	}
	enc := json.NewEncoder(e.stdout)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("elcachectl: %w", err)
	}
	return nil
}

// bytesJSON is a byte string as JSON: a string if it is valid UTF-8, else
// base64 in a field of the same name with a _b64 suffix.
func bytesJSON(b []byte) (text *string, b64 []byte) {
	if utf8.Valid(b) {
		s := string(b)
		return &s, nil
	}
	return nil, b // encoding/json writes []byte as base64
}

type keyJSON struct {
	Key    *string `json:"key,omitempty"`
	KeyB64 []byte  `json:"key_b64,omitempty"`
}

func newKeyJSON(k []byte) keyJSON {
	var j keyJSON
	j.Key, j.KeyB64 = bytesJSON(k)
	return j
}

type entryJSON struct {
	keyJSON
	Found     *bool      `json:"found,omitempty"`
	Value     *string    `json:"value,omitempty"`
	ValueB64  []byte     `json:"value_b64,omitempty"`
	Version   uint64     `json:"version,omitempty"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	Dirty     bool       `json:"dirty,omitempty"`
	Meta      *metaJSON  `json:"meta,omitempty"`
}

// newEntryJSON converts e; found is nil for scans, which have no misses.
func newEntryJSON(e client.Entry, found *bool, withValue bool) entryJSON {
	j := entryJSON{keyJSON: newKeyJSON(e.Key), Found: found, Version: e.Version, Dirty: e.Dirty}
	if found != nil && !*found {
		withValue = false
	}
	if withValue {
		j.Value, j.ValueB64 = bytesJSON(e.Value)
	}
	if !e.ExpiresAt.IsZero() {
		j.ExpiresAt = &e.ExpiresAt
	}
	if found != nil {
		j.Meta = newMetaJSON(e.Meta)
	}
	return j
}

type metaJSON struct {
	Partition         uint32 `json:"partition"`
	ServedBy          string `json:"served_by,omitempty"`
	Role              string `json:"role,omitempty"`
	Consistency       string `json:"consistency,omitempty"`
	AppliedIndex      uint64 `json:"applied_index"`
	LeaderCommitIndex uint64 `json:"leader_commit_index,omitempty"`
	Staleness         string `json:"staleness"`
}

func newMetaJSON(m client.ReadMeta) *metaJSON {
	return &metaJSON{
		Partition:         m.Partition,
		ServedBy:          m.ServedBy,
		Role:              enumName(m.Role.String(), "ROLE_"),
		Consistency:       enumName(m.Consistency.String(), "CONSISTENCY_"),
		AppliedIndex:      m.AppliedIndex,
		LeaderCommitIndex: m.LeaderCommitIndex,
		Staleness:         m.Staleness.String(),
	}
}

type writeJSON struct {
	keyJSON
	Version      uint64 `json:"version"`
	Partition    uint32 `json:"partition"`
	ServedBy     string `json:"served_by,omitempty"`
	RaftIndex    uint64 `json:"raft_index,omitempty"`
	Mode         string `json:"mode,omitempty"`
	Durability   string `json:"durability,omitempty"`
	Deduplicated bool   `json:"deduplicated,omitempty"`
}

func newWriteJSON(key []byte, w client.WriteResult) writeJSON {
	return writeJSON{
		keyJSON:      newKeyJSON(key),
		Version:      w.Version,
		Partition:    w.Meta.Partition,
		ServedBy:     w.Meta.ServedBy,
		RaftIndex:    w.Meta.RaftIndex,
		Mode:         enumName(w.Meta.Mode.String(), "WRITE_MODE_"),
		Durability:   durabilityName(w.Meta.Durability),
		Deduplicated: w.Meta.Deduplicated,
	}
}

// enumName turns a proto enum name into the CLI's spelling:
// WRITE_MODE_WRITE_BACK is write-back; UNSPECIFIED is "".
func enumName(s, prefix string) string {
	s = strings.TrimPrefix(s, prefix)
	if s == "UNSPECIFIED" {
		return ""
	}
	return strings.ReplaceAll(strings.ToLower(s), "_", "-")
}

// durabilityName is d as --durability spells it; the default is "".
func durabilityName(d client.Durability) string {
	if d == client.DurabilityDefault {
		return ""
	}
	return d.String()
}

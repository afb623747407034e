package main

import (
	"fmt"
	"io"
	"text/tabwriter"

	cachev1 "github.com/elcache/elcache/proto/cache/v1"
)

// statsJSON is a StatsResponse for output: numbers as JSON numbers,
// durations as Go duration strings, enums in the CLI's spelling.
type statsJSON struct {
	NodeName       string          `json:"node_name"`
	NodeID         string          `json:"node_id"`
	Version        string          `json:"version"`
	Uptime         string          `json:"uptime"`
	PartitionCount uint32          `json:"partition_count"`
	BytesUsed      uint64          `json:"bytes_used"`
	CapacityBytes  uint64          `json:"capacity_bytes"`
	Keys           uint64          `json:"keys"`
	Gets           uint64          `json:"gets"`
	Hits           uint64          `json:"hits"`
	Misses         uint64          `json:"misses"`
	Puts           uint64          `json:"puts"`
	Deletes        uint64          `json:"deletes"`
	Evictions      uint64          `json:"evictions"`
	Expirations    uint64          `json:"expirations"`
	DirtyKeys      uint64          `json:"dirty_keys"`
	FlushLag       string          `json:"flush_lag"`
	DiskBytes      uint64          `json:"disk_bytes"`
	Partitions     []partitionJSON `json:"partitions"`
}

type partitionJSON struct {
	Partition    uint32 `json:"partition"`
	Role         string `json:"role"`
	Leader       string `json:"leader"`
	AppliedIndex uint64 `json:"applied_index"`
	CommitIndex  uint64 `json:"commit_index"`
	Keys         uint64 `json:"keys"`
	Bytes        uint64 `json:"bytes"`
	DirtyKeys    uint64 `json:"dirty_keys"`
}

func newStatsJSON(s *cachev1.StatsResponse) statsJSON {
	j := statsJSON{
		NodeName:       s.GetNodeName(),
		NodeID:         s.GetNodeId(),
		Version:        s.GetVersion(),
		Uptime:         s.GetUptime().AsDuration().String(),
		PartitionCount: s.GetPartitionCount(),
		BytesUsed:      s.GetBytesUsed(),
		CapacityBytes:  s.GetCapacityBytes(),
		Keys:           s.GetKeys(),
		Gets:           s.GetGets(),
		Hits:           s.GetHits(),
		Misses:         s.GetMisses(),
		Puts:           s.GetPuts(),
		Deletes:        s.GetDeletes(),
		Evictions:      s.GetEvictions(),
		Expirations:    s.GetExpirations(),
		DirtyKeys:      s.GetDirtyKeys(),
		FlushLag:       s.GetFlushLag().AsDuration().String(),
		DiskBytes:      s.GetDiskBytes(),
		Partitions:     []partitionJSON{},
	}
	for _, p := range s.GetPartitions() {
		j.Partitions = append(j.Partitions, partitionJSON{
			Partition:    p.GetPartition(),
			Role:         enumName(p.GetRole().String(), "ROLE_"),
			Leader:       p.GetLeader(),
			AppliedIndex: p.GetAppliedIndex(),
			CommitIndex:  p.GetCommitIndex(),
			Keys:         p.GetKeys(),
			Bytes:        p.GetBytes(),
			DirtyKeys:    p.GetDirtyKeys(),
		})
	}
	return j
}

// writeText prints the node's stats as name/value lines, then a table of
// its partitions.
func (j statsJSON) writeText(out io.Writer) {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "node\t%s (%s)\n", j.NodeName, j.NodeID)
	fmt.Fprintf(tw, "version\t%s\n", j.Version)
	fmt.Fprintf(tw, "uptime\t%s\n", j.Uptime)
	fmt.Fprintf(tw, "partitions\t%d\n", j.PartitionCount)
	fmt.Fprintf(tw, "keys\t%d\n", j.Keys)
	fmt.Fprintf(tw, "bytes\t%d of %d\n", j.BytesUsed, j.CapacityBytes)
	fmt.Fprintf(tw, "disk bytes\t%d\n", j.DiskBytes)
	fmt.Fprintf(tw, "gets\t%d (%d hits, %d misses)\n", j.Gets, j.Hits, j.Misses)
	fmt.Fprintf(tw, "puts\t%d\n", j.Puts)
	fmt.Fprintf(tw, "deletes\t%d\n", j.Deletes)
	fmt.Fprintf(tw, "evictions\t%d\n", j.Evictions)
	fmt.Fprintf(tw, "expirations\t%d\n", j.Expirations)
	fmt.Fprintf(tw, "dirty keys\t%d (flush lag %s)\n", j.DirtyKeys, j.FlushLag)
	tw.Flush()
	if len(j.Partitions) == 0 {
		return
	}
	fmt.Fprintln(out)
	tw = tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PARTITION\tROLE\tLEADER\tAPPLIED\tCOMMIT\tKEYS\tBYTES\tDIRTY")
	for _, p := range j.Partitions {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%d\t%d\t%d\t%d\n",
			p.Partition, p.Role, p.Leader, p.AppliedIndex, p.CommitIndex, p.Keys, p.Bytes, p.DirtyKeys)
	}
	tw.Flush()
}

package main

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/elcache/elcache/node/nodetest"
)

// clusterPartitions is nodetest's partition count; with three nodes and
// the default replication factor every node holds every partition.
const clusterPartitions = 8

func TestMembersCLI(t *testing.T) {
	c := nodetest.StartCluster(t, 3)
	addr := c.Nodes[2].Addr() // any node answers

	out, _ := cli(t, addr, 0, "members")
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 5 || !strings.HasPrefix(lines[0], "NAME ") || !strings.HasPrefix(lines[4], "map version ") {
		t.Fatalf("members: want a header, 3 rows and the map version line, got\n%s", out)
	}
	for i, n := range c.Nodes { // nodetest names them n0, n1, n2: the table's order
		row := strings.Fields(lines[i+1])
		want := []string{c.Configs[i].NodeName, n.ID(), n.Addr(), "alive", "active", "8"}
		if len(row) != 7 || !slices.Equal(row[:6], want) {
			t.Errorf("members row %d = %q, want %q and a leader count", i, row, want)
		}
	}
	if !strings.Contains(lines[4], "meta leader n") {
		t.Errorf("members: %q does not name the meta leader", lines[4])
	}

	// Leaders move to their preferred nodes right after the cluster forms;
	// a partition in the middle of a hand-over has no leader for a moment.
	var (
		j       map[string]any
		members []any
		leaders float64
		ids     map[any]bool
	)
	for deadline := time.Now().Add(10 * time.Second); ; {
		j = cliJSON(t, addr, 0, "members")
		members = j["members"].([]any)
		leaders, ids = 0, map[any]bool{}
		for _, m := range members {
			m := m.(map[string]any)
			if m["gossip_state"] != "alive" || m["placement_state"] != "active" || m["replicas"] != float64(clusterPartitions) || m["gossip_addr"] == "" {
				t.Errorf("members -o json: member %v", m)
			}
			leaders += m["leaders"].(float64)
			ids[m["id"]] = true
		}
		if leaders == clusterPartitions || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(members) != 3 || leaders != clusterPartitions || !ids[j["meta_leader"]] || j["map_version"].(float64) < 1 {
		t.Errorf("members -o json: %d members leading %v partitions, meta leader %v, map version %v",
			len(members), leaders, j["meta_leader"], j["map_version"])
	}
}

func TestPartitionsCLI(t *testing.T) {
	c := nodetest.StartCluster(t, 3)
	addr := c.Nodes[0].Addr()

	out, _ := cli(t, addr, 0, "partitions")
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != clusterPartitions+2 || lines[len(lines)-1] != "map version "+mapVersion(t, addr)+", 8 partitions on 3 nodes" {
		t.Fatalf("partitions: want a header, 8 rows and the map version line, got\n%s", out)
	}
	for _, l := range lines[1 : clusterPartitions+1] {
		row := strings.Fields(l)
		if reps := strings.Split(row[2], ","); len(row) != 3 || len(reps) != 3 || !slices.Contains(reps, row[1]) {
			t.Errorf("partitions row %q: want PARTITION LEADER REPLICAS, by name, leader among three replicas", l)
		}
	}

	j := cliJSON(t, addr, 0, "partitions")
	parts := j["partitions"].([]any)
	if len(parts) != clusterPartitions || j["partition_count"] != float64(clusterPartitions) || len(j["nodes"].([]any)) != 3 {
		t.Fatalf("partitions -o json: %v", j)
	}
	for i, p := range parts {
		p := p.(map[string]any)
		reps, names := p["replicas"].([]any), p["replica_names"].([]any)
		if p["partition"] != float64(i) || len(reps) != 3 || len(names) != 3 ||
			c.Index(p["leader"].(string)) < 0 || !strings.HasPrefix(p["leader_name"].(string), "n") {
			t.Errorf("partitions -o json: partition %d: %v", i, p)
		}
	}
}

// mapVersion returns the map version members reports, as text.
func mapVersion(t *testing.T, addr string) string {
	t.Helper()
	return fmt.Sprint(uint64(cliJSON(t, addr, 0, "members")["map_version"].(float64)))
}

func TestDrainCLI(t *testing.T) {
	c := nodetest.StartCluster(t, 3)
	addr := c.Nodes[0].Addr()
	target := c.Nodes[1]
	name := c.Configs[1].NodeName

	// The cluster refuses names it does not know: exit 1, with the reason.
	_, errOut := cli(t, addr, 1, "drain", "no-such-node")
	if errOut != "elcachectl: drain: node \"no-such-node\" is not in the cluster; elcachectl members lists the nodes\n" {
		t.Errorf("drain unknown node: stderr %q", errOut)
	}

	// --wait=false records the drain and returns.
	if out, _ := cli(t, addr, 0, "drain", name, "--wait=false"); !strings.HasPrefix(out, "node "+name+" is draining (map version ") {
		t.Errorf("drain --wait=false: %q", out)
	}
	// Draining again (here by id) waits until the node can be stopped.
	out, _ := cli(t, addr, 0, "drain", target.ID(), "--timeout", "60s")
	t.Logf("drain:\n%s", out)
	// A last line may follow: a replica its group no longer reaches that
	// the node drops by itself.
	if !strings.Contains(out, "node "+name+" drained: it holds no replicas; stop it now\n") {
		t.Errorf("drain: stdout\n%s", out)
	}

	// The map and the node agree: no replica, no leadership, and the node
	// runs no replica that its group still counts.
	for _, p := range cliJSON(t, addr, 0, "partitions")["partitions"].([]any) {
		p := p.(map[string]any)
		if p["leader"] == target.ID() || slices.Contains(p["replicas"].([]any), any(target.ID())) || len(p["replicas"].([]any)) != 2 {
			t.Errorf("after drain, partition %v still has %s", p, name)
		}
	}
	for _, m := range cliJSON(t, addr, 0, "members")["members"].([]any) {
		m := m.(map[string]any)
		if m["id"] == target.ID() && (m["placement_state"] != "draining" || m["replicas"] != 0.0 || m["leaders"] != 0.0) {
			t.Errorf("after drain, members shows %v", m)
		}
	}
	j := cliJSON(t, addr, 0, "drain", name)
	if j["drained"] != true || j["node_id"] != target.ID() || j["name"] != name || j["replicas"] != 0.0 || j["leaders"] != 0.0 || j["hosted"] != 0.0 {
		t.Errorf("drain of a drained node -o json: %v", j)
	}

	// Stopping it now costs the cluster nothing.
	c.Stop(1)
	cli(t, addr, 0, "put", "after-drain", "v")
	if out, _ := cli(t, c.Nodes[2].Addr(), 0, "get", "after-drain"); out != "v\n" {
		t.Errorf("get after stopping the drained node: %q", out)
	}
}

// A single node is the last active node: draining it is refused.
func TestDrainLastNode(t *testing.T) {
	n := nodetest.Start(t)
	_, errOut := cli(t, n.Addr(), 1, "drain", n.Config.NodeName)
	if !strings.HasPrefix(errOut, "elcachectl: drain: node "+n.Config.NodeName+" is the last active node") {
		t.Errorf("drain last node: stderr %q", errOut)
	}
	// The node did not move: it still serves.
	cli(t, n.Addr(), 0, "put", "k", "v")
}

// TestGetConsistencyCLI reads through a follower at every level: each
// answers with the value, and -o json shows the level served and its proof.
func TestGetConsistencyCLI(t *testing.T) {
	c := nodetest.StartCluster(t, 3)
	addr := c.Nodes[1].Addr()
	cli(t, addr, 0, "put", "levels", "v1")
	for _, level := range []string{"linearizable", "lease", "bounded=2s", "session", "eventual"} {
		if out, _ := cli(t, addr, 0, "get", "levels", "--consistency", level); out != "v1\n" {
			t.Errorf("get --consistency %s: %q, want v1", level, out)
		}
		j := cliJSON(t, addr, 0, "get", "levels", "--consistency", level)
		meta, _ := j["meta"].(map[string]any)
		want := strings.TrimSuffix(level, "=2s")
		if j["value"] != "v1" || meta == nil || meta["consistency"] != want || meta["served_by"] == "" || meta["staleness"] == nil {
			t.Errorf("get --consistency %s -o json: %v; want the value and a %s proof", level, j, want)
		}
	}
}

package jepsen

import (
	"bytes"
	"fmt"
	"os/exec"
	"strings"
)

// Network is the test network: a bridge on the host and one network
// namespace per node, joined to the bridge by a veth pair, so that every
// node has its own address and its own firewall and queueing rules. The
// harness (clients and the database proxies) stays on the host side of the
// bridge, at HostIP; partitions cut only traffic between nodes.
//
// Loopback addresses would not do: processes on one host reach each other
// over lo whatever their addresses, so a rule cannot cut n1 from n2 and
// leave n1 reachable by a client.
type Network struct {
	// Prefix names the bridge (Prefix+"br"), the namespaces (Prefix+name)
	// and the host ends of the veth pairs.
	Prefix string
	// Subnet is the first three octets of the /24 the nodes live in.
	Subnet string
	HostIP string

	nodes map[string]int // name -> host octet
	// netem tells whether the kernel has the netem qdisc; without it a
	// slow link is made with tbf (rate limiting) instead of a delay.
	netem bool
}

// chain is the iptables chain, in every namespace, that holds the faults;
// healing flushes it.
const chain = "JEPSEN"

func run(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// NewNetwork removes what a previous run with the same prefix left behind
// and creates the bridge. It needs root (CAP_NET_ADMIN).
func NewNetwork(prefix, subnet string) (*Network, error) {
	for _, tool := range []string{"ip", "iptables", "tc"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, fmt.Errorf("jepsen: %s not found (install iproute2 and iptables): %w", tool, err)
		}
	}
	n := &Network{Prefix: prefix, Subnet: subnet, HostIP: subnet + ".1", nodes: make(map[string]int)}
	n.Cleanup()
	br := n.bridge()
	for _, args := range [][]string{
		{"link", "add", br, "type", "bridge"},
		{"addr", "add", n.HostIP + "/24", "dev", br},
		{"link", "set", br, "up"},
	} {
		if err := run("ip", args...); err != nil {
			n.Cleanup()
			return nil, fmt.Errorf("jepsen: creating the bridge (are you root?): %w", err)
		}
	}
	// Bridged traffic must not go through the host's iptables (Docker
	// sets FORWARD to DROP); ignore failure if br_netfilter is absent.
	_ = run("sysctl", "-q", "-w", "net.bridge.bridge-nf-call-iptables=0")
	n.netem = exec.Command("tc", "qdisc", "add", "dev", br, "root", "netem", "delay", "1ms").Run() == nil
	if n.netem {
		_ = run("tc", "qdisc", "del", "dev", br, "root")
	}
	return n, nil
}

func (n *Network) bridge() string { return n.Prefix + "br" }

// NS is the namespace of node name.
func (n *Network) NS(name string) string { return n.Prefix + name }

// IP is the address of node name.
func (n *Network) IP(name string) string { return fmt.Sprintf("%s.%d", n.Subnet, n.nodes[name]) }

// HasNetem tells whether packet delay uses netem (else tbf).
func (n *Network) HasNetem() bool { return n.netem }

// AddNode creates node name's namespace with address Subnet.octet, its
// loopback up, and the fault chain hooked into INPUT and OUTPUT.
func (n *Network) AddNode(name string, octet int) error {
	ns, host := n.NS(name), fmt.Sprintf("%sv%d", n.Prefix, octet)
	n.nodes[name] = octet
	for _, args := range [][]string{
		{"netns", "add", ns},
		{"link", "add", host, "type", "veth", "peer", "name", "eth0", "netns", ns},
		{"link", "set", host, "master", n.bridge()},
		{"link", "set", host, "up"},
		{"-n", ns, "link", "set", "lo", "up"},
		{"-n", ns, "addr", "add", n.IP(name) + "/24", "dev", "eth0"},
		{"-n", ns, "link", "set", "eth0", "up"},
		{"-n", ns, "route", "add", "default", "via", n.HostIP},
	} {
		if err := run("ip", args...); err != nil {
			return fmt.Errorf("jepsen: node %s: %w", name, err)
		}
	}
	for _, args := range [][]string{
		{"-N", chain},
		{"-A", "INPUT", "-j", chain},
		{"-A", "OUTPUT", "-j", chain},
	} {
		if err := n.iptables(name, args...); err != nil {
			return err
		}
	}
	return nil
}

func (n *Network) iptables(name string, args ...string) error {
	if err := run("ip", append([]string{"netns", "exec", n.NS(name), "iptables", "-w"}, args...)...); err != nil {
		return fmt.Errorf("jepsen: node %s: %w", name, err)
	}
	return nil
}

// Cut drops all traffic between nodes a and b, both ways, on both sides.
func (n *Network) Cut(a, b string) error {
	for _, p := range [][2]string{{a, b}, {b, a}} {
		if err := n.iptables(p[0], "-A", chain, "-s", n.IP(p[1]), "-j", "DROP"); err != nil {
			return err
		}
		if err := n.iptables(p[0], "-A", chain, "-d", n.IP(p[1]), "-j", "DROP"); err != nil {
			return err
		}
	}
	return nil
}

// Partition cuts every node of each group from every node of the others.
// Nodes in no group keep all their links (a bridge node, say).
func (n *Network) Partition(groups ...[]string) error {
	for i, g := range groups {
		for _, h := range groups[i+1:] {
			for _, a := range g {
				for _, b := range h {
					if err := n.Cut(a, b); err != nil {
						return err
					}
				}
			}
		}
	}
	return nil
}

// Lose drops a share p of the packets node name exchanges with the other
// nodes (not with the harness), with iptables' statistic match.
func (n *Network) Lose(name string, p float64, peers []string) error {
	for _, peer := range peers {
		for _, dir := range []string{"-s", "-d"} {
			if err := n.iptables(name, "-A", chain, dir, n.IP(peer), "-m", "statistic", "--mode", "random",
				"--probability", fmt.Sprintf("%.3f", p), "-j", "DROP"); err != nil {
				return err
			}
		}
	}
	return nil
}

// Slow delays node name's outgoing packets: by delay (with jitter) where
// the kernel has netem, else by limiting its link to a low rate with tbf,
// which queues packets (up to 200ms) instead. It returns what it did.
func (n *Network) Slow(name string, delay string) (string, error) {
	args := []string{"netns", "exec", n.NS(name), "tc", "qdisc", "replace", "dev", "eth0", "root"}
	var what string
	if n.netem {
		args = append(args, "netem", "delay", delay, "10ms", "distribution", "normal")
		what = "netem delay " + delay
	} else {
		args = append(args, "tbf", "rate", "512kbit", "burst", "4kb", "latency", "200ms")
		what = "tbf 512kbit, 200ms queue (no netem in this kernel)"
	}
	if err := run("ip", args...); err != nil {
		return "", fmt.Errorf("jepsen: node %s: %w", name, err)
	}
	return what, nil
}

// Heal removes every fault rule and qdisc of node name.
func (n *Network) Heal(name string) error {
	err := n.iptables(name, "-F", chain)
	_ = run("ip", "netns", "exec", n.NS(name), "tc", "qdisc", "del", "dev", "eth0", "root")
	return err
}

// HealAll heals every node.
func (n *Network) HealAll() error {
	var first error
	for name := range n.nodes {
		if err := n.Heal(name); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// Cleanup removes the namespaces and the bridge (and with them the veth
// pairs). Errors are ignored: there may be nothing to remove.
func (n *Network) Cleanup() {
	out, _ := exec.Command("ip", "netns", "list").Output()
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 0 && strings.HasPrefix(f[0], n.Prefix) {
			_ = run("ip", "netns", "del", f[0])
		}
	}
	_ = run("ip", "link", "del", n.bridge())
}

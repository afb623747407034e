package main

import (
	"crypto/tls"
	"fmt"
	"google.golang.org/grpc/credentials"
	"io"
	"strings"
	"text/tabwriter"
	"unicode"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"

	"github.com/elcache/elcache/client"
	cachev1 "github.com/elcache/elcache/proto/cache/v1"
)

// conn returns the connection for the calls the client package does not
// offer (topology and admin), dialled on first use.
func (e *env) conn() (*grpc.ClientConn, error) {
	if e.cc == nil {
		first, _, _ := strings.Cut(e.addr, ",")
		cc, err := dial(first, e.token, e.tls)
		if err != nil {
			return nil, err
		}
		e.cc = cc
	}
	return e.cc, nil
}

// dial connects to addr with the client package's default dial options. It
// does not wait: a dead address fails the first call.
func dial(addr, token string, tlsCfg *tls.Config) (*grpc.ClientConn, error) {
	cfg := client.DefaultConfig()
	cfg.Seeds = []string{addr}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	creds := insecure.NewCredentials()
	if tlsCfg != nil {
		creds = credentials.NewTLS(tlsCfg)
	}
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(cfg.MaxRecvMsgSize)),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: cfg.KeepaliveTime}),
	}
	if token != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(client.TokenCredentials(token, false)))
	}
	cc, err := grpc.NewClient(addr, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", addr, err)
	}
	return cc, nil
}

// rpcError words the error of a direct gRPC call as the client package
// words its own: "what: not found: message".
func rpcError(what string, err error) error {
	st, ok := status.FromError(err)
	if !ok {
		st = status.FromContextError(err)
	}
	return fmt.Errorf("%s: %s: %s", what, codeName(st.Code().String()), st.Message())
}

// codeName turns a gRPC code name into words: FailedPrecondition is
// "failed precondition".
func codeName(s string) string {
	var b strings.Builder
	prev := ' '
	for _, r := range s {
		if unicode.IsUpper(r) && unicode.IsLower(prev) {
			b.WriteByte(' ')
		}
		b.WriteRune(unicode.ToLower(r))
		prev = r
	}
	return b.String()
}

// topology fetches the partition map from the node at e.addr.
func (e *env) topology() (*cachev1.Topology, error) {
	cc, err := e.conn()
	if err != nil {
		return nil, err
	}
	t, err := cachev1.NewCacheClient(cc).Topology(e.ctx, &cachev1.TopologyRequest{})
	if err != nil {
		return nil, rpcError("topology", err)
	}
	return t, nil
}

// names maps node ids to names; ids it does not know map to themselves.
type names map[string]string

func topologyNames(t *cachev1.Topology) names {
	m := make(names, len(t.GetNodes()))
	for _, n := range t.GetNodes() {
		if n.GetName() != "" {
			m[n.GetId()] = n.GetName()
		}
	}
	return m
}

func (m names) of(id string) string {
	if n, ok := m[id]; ok {
		return n
	}
	return id
}

type memberJSON struct {
	ID             string `json:"id"`
	Name           string `json:"name"`
	GRPCAddr       string `json:"grpc_addr"`
	GossipAddr     string `json:"gossip_addr"`
	GossipState    string `json:"gossip_state"`
	PlacementState string `json:"placement_state"`
	Replicas       uint32 `json:"replicas"`
	Leaders        uint32 `json:"leaders"`
}

type membersJSON struct {
	Members    []memberJSON `json:"members"`
	MapVersion uint64       `json:"map_version"`
	MetaLeader string       `json:"meta_leader"`
}

func cmdMembers(e *env, args []string) error {
	fs := e.flagSet("members")
	if _, err := parseExact(fs, args, 0, ""); err != nil {
		return err
	}
	cc, err := e.conn()
	if err != nil {
		return err
	}
	resp, err := cachev1.NewAdminClient(cc).Members(e.ctx, &cachev1.MembersRequest{})
	if err != nil {
		return rpcError("members", err)
	}
	j := membersJSON{Members: []memberJSON{}, MapVersion: resp.GetMapVersion(), MetaLeader: resp.GetMetaLeader()}
	nm := names{}
	for _, m := range resp.GetMembers() {
		j.Members = append(j.Members, memberJSON{
			ID: m.GetId(), Name: m.GetName(), GRPCAddr: m.GetGrpcAddr(), GossipAddr: m.GetGossipAddr(),
			GossipState: m.GetGossipState(), PlacementState: m.GetPlacementState(),
			Replicas: m.GetReplicas(), Leaders: m.GetLeaders(),
		})
		if m.GetName() != "" {
			nm[m.GetId()] = m.GetName()
		}
	}
	return e.emit(j, func(out io.Writer) {
		tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tID\tADDRESS\tGOSSIP\tPLACEMENT\tREPLICAS\tLEADERS")
		for _, m := range j.Members {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\n", dash(m.Name), m.ID, dash(m.GRPCAddr),
				dash(m.GossipState), dash(m.PlacementState), m.Replicas, m.Leaders)
		}
		tw.Flush()
		leader := "unknown"
		if j.MetaLeader != "" {
			leader = nm.of(j.MetaLeader)
		}
		fmt.Fprintf(out, "map version %d, meta leader %s\n", j.MapVersion, leader)
	})
}

type routeJSON struct {
	Partition    uint32   `json:"partition"`
	Leader       string   `json:"leader"`
	LeaderName   string   `json:"leader_name"`
	Replicas     []string `json:"replicas"`
	ReplicaNames []string `json:"replica_names"`
}

type nodeJSON struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Address string `json:"address"`
	State   string `json:"state"`
}

type partitionsJSON struct {
	MapVersion     uint64      `json:"map_version"`
	PartitionCount uint32      `json:"partition_count"`
	Nodes          []nodeJSON  `json:"nodes"`
	Partitions     []routeJSON `json:"partitions"`
}

func cmdPartitions(e *env, args []string) error {
	fs := e.flagSet("partitions")
	if _, err := parseExact(fs, args, 0, ""); err != nil {
		return err
	}
	t, err := e.topology()
	if err != nil {
		return err
	}
	nm := topologyNames(t)
	j := partitionsJSON{MapVersion: t.GetMapVersion(), PartitionCount: t.GetPartitionCount(),
		Nodes: []nodeJSON{}, Partitions: []routeJSON{}}
	for _, n := range t.GetNodes() {
		j.Nodes = append(j.Nodes, nodeJSON{ID: n.GetId(), Name: n.GetName(), Address: n.GetAddress(), State: n.GetState()})
	}
	for _, p := range t.GetPartitions() {
		r := routeJSON{Partition: p.GetPartition(), Leader: p.GetLeader(),
			Replicas: append([]string{}, p.GetReplicas()...), ReplicaNames: []string{}}
		if r.Leader != "" {
			r.LeaderName = nm.of(r.Leader)
		}
		for _, id := range r.Replicas {
			r.ReplicaNames = append(r.ReplicaNames, nm.of(id))
		}
		j.Partitions = append(j.Partitions, r)
	}
	return e.emit(j, func(out io.Writer) {
		tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "PARTITION\tLEADER\tREPLICAS")
		for _, r := range j.Partitions {
			fmt.Fprintf(tw, "%d\t%s\t%s\n", r.Partition, dash(r.LeaderName), dash(strings.Join(r.ReplicaNames, ",")))
		}
		tw.Flush()
		fmt.Fprintf(out, "map version %d, %d partitions on %d nodes\n", j.MapVersion, j.PartitionCount, len(j.Nodes))
	})
}

// dash stands in for an empty table cell.
func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

package node_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/elcache/elcache/node"
	"github.com/elcache/elcache/node/nodetest"
	cachev1 "github.com/elcache/elcache/proto/cache/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
)

// grpcurl works: reflection lists the services and health says SERVING.
func TestHealthAndReflection(t *testing.T) {
	n := nodetest.Start(t)
	conn, err := grpc.NewClient(n.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx := ctxT(t)
	for _, svc := range []string{"", cachev1.Cache_ServiceDesc.ServiceName} {
		r, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: svc})
		if err != nil || r.Status != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("health(%q) = %v, %v", svc, r, err)
		}
	}
	stream, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range resp.GetListServicesResponse().GetService() {
		names = append(names, s.Name)
	}
	for _, want := range []string{"elcache.cache.v1.Cache", "grpc.health.v1.Health"} {
		if !slices.Contains(names, want) {
			t.Fatalf("reflection lists %v, missing %s", names, want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	if err := node.DefaultConfig().Validate(); err != nil {
		t.Fatalf("default config invalid: %v", err)
	}
	tests := []struct {
		name   string
		change func(*node.Config)
		want   string
	}{
		{"no data dir", func(c *node.Config) { c.DataDir = "" }, "DataDir is required"},
		{"key limit over postgres's index limit", func(c *node.Config) {
			c.Backend = "postgres://u@localhost/db"
			c.Limits.MaxKeyBytes = 4096
		}, "Limits.MaxKeyBytes 4096 is over the 2560 bytes a postgres backing table can index"},
		{"bad addr", func(c *node.Config) { c.GRPCAddr = "nope" }, "GRPCAddr"},
		{"join address", func(c *node.Config) { c.Join = []string{"nohost"} }, `Join address "nohost"`},
		{"bootstrap-expect negative", func(c *node.Config) { c.BootstrapExpect = -1 }, "BootstrapExpect must not be negative"},
		{"replication factor", func(c *node.Config) { c.Cluster.ReplicationFactor = 0 }, "Cluster.ReplicationFactor must be in [1, 7]"},
		{"gossip key", func(c *node.Config) { c.Cluster.GossipKey = []byte("short") }, "Cluster.GossipKey must be 16, 24 or 32 bytes"},
		{"write mode without backend", func(c *node.Config) { c.DefaultWriteMode = cachev1.WriteMode_WRITE_MODE_WRITE_BACK }, "needs a Backend"},
		{"metrics address", func(c *node.Config) { c.MetricsAddr = "9090" }, `MetricsAddr "9090"`},
		{"admin address", func(c *node.Config) { c.AdminAddr = "localhost:http-ish" }, `AdminAddr "localhost:http-ish"`},
		{"zero partitions", func(c *node.Config) { c.Partitions = 0 }, "Partitions must be in [1, 4096]"},
		{"tiny capacity", func(c *node.Config) { c.CapacityBytes = 10 }, "CapacityBytes must be at least 1 MiB"},
		{"bounded default", func(c *node.Config) { c.DefaultConsistency = cachev1.Consistency_CONSISTENCY_BOUNDED }, "cannot be BOUNDED"},
		{"unknown durability", func(c *node.Config) { c.DefaultDurability = 7 }, "DefaultDurability: unknown value 7"},
		{"lease over heartbeat", func(c *node.Config) { c.Raft.LeaderLeaseTimeout = 2 * c.Raft.HeartbeatTimeout }, "LeaderLeaseTimeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := node.DefaultConfig()
			tt.change(&cfg)
			err := cfg.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate() = %v, want error containing %q", err, tt.want)
			}
		})
	}
	// Every problem is reported, not just the first.
	cfg := node.DefaultConfig()
	cfg.DataDir, cfg.Partitions = "", 0
	if err := cfg.Validate(); !strings.Contains(err.Error(), "DataDir") || !strings.Contains(err.Error(), "Partitions") {
		t.Fatalf("Validate() = %v, want both problems", err)
	}
}

// A data directory keeps its partition count.
func TestPartitionCountIsFixed(t *testing.T) {
	cfg := nodetest.Config(t)
	n, err := node.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	n.Close()
	cfg.Partitions = 16
	if n, err := node.New(cfg); err == nil {
		n.Close()
		t.Fatal("node opened a data dir created with another partition count")
	} else if !strings.Contains(err.Error(), "created with 8 partitions, configured 16") {
		t.Fatalf("error = %v", err)
	}
}

// Package elcache_test holds repository-wide tests: the direction of imports
// between the project's packages.
package elcache_test

import (
	"bufio"
	"bytes"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/elcache/elcache"

// go list templates for imports: a package's direct imports or the whole
// transitive closure of its non-test files, or the direct imports of its
// files and its tests.
const (
	listDirect    = `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`
	listDeps      = `{{.ImportPath}}{{range .Deps}} {{.}}{{end}}`
	listWithTests = `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}{{range .TestImports}} {{.}}{{end}}{{range .XTestImports}} {{.}}{{end}}`
)

// imports returns, for every package of the module, its imports as the
// go list template format lists them.
func imports(t *testing.T, format string) map[string][]string {
	t.Helper()
	out, err := exec.Command("go", "list", "-f", format, "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	m := map[string][]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		m[f[0]] = f[1:]
	}
	return m
}

func isStd(path string) bool {
	first, _, _ := strings.Cut(path, "/")
	return !strings.Contains(first, ".")
}

func TestImportDirection(t *testing.T) {
	all := imports(t, listDeps)
	direct := imports(t, listDirect)
	if len(all) < 5 {
		t.Fatalf("go list found only %d packages", len(all))
	}
	forbidden := []struct {
		pkg, must string
		not       []string
	}{
		{"storage", "must not depend on node, client or cmd", []string{"/node", "/client", "/cmd"}},
		{"ring", "must not depend on node, storage, client or cmd", []string{"/node", "/storage", "/client", "/cmd"}},
		{"proto", "must not depend on any other package of the module", []string{"/node", "/storage", "/ring", "/client", "/cmd"}},
		{"internal/raftnet", "must not depend on node, storage, ring, client or cmd (it is the transport node uses)", []string{"/node", "/storage", "/ring", "/client", "/cmd"}},
		{"internal/gossip", "must not depend on node, storage, ring, client or cmd (it is the membership node uses)", []string{"/node", "/storage", "/ring", "/client", "/cmd"}},
		{"internal/meta", "must not depend on node, ring, client or cmd (it is the meta Raft group node uses)", []string{"/node", "/ring", "/client", "/cmd"}},
		{"internal/readround", "must not depend on node, storage, ring, client or cmd (it is the leadership rounds node uses)", []string{"/node", "/storage", "/ring", "/client", "/cmd"}},
		{"internal/auth", "must not depend on node, storage, ring, client or cmd (it is the guard and TLS node uses)", []string{"/node", "/storage", "/ring", "/client", "/cmd"}},
		{"internal/pipeline", "must not depend on node, storage, ring, client or cmd (it is the Pipeline stream node serves)", []string{"/node", "/storage", "/ring", "/client", "/cmd"}},
		{"internal/plan", "must not depend on node, storage, client or cmd (it is the cluster planner node uses)", []string{"/node", "/storage", "/client", "/cmd"}},
		{"internal/metrics", "must not depend on node, storage, ring, client or cmd (it is the Prometheus metrics node serves)", []string{"/node", "/storage", "/ring", "/client", "/cmd"}},
		{"internal/raftlog", "must not depend on any other package of the module (it is the Raft log bridge node uses)", []string{"/node", "/storage", "/ring", "/client", "/cmd", "/internal", "/proto"}},
		{"internal/request", "must not depend on node, storage, ring, client or cmd (it is the request validation node uses)", []string{"/node", "/storage", "/ring", "/client", "/cmd"}},
		{"internal/backend", "must not depend on node, ring, client or cmd (it is the backing database client node uses; it may use storage/sqlstore)", []string{"/node", "/ring", "/client", "/cmd"}},
		{"internal/bench", "must not depend on node, storage, ring or cmd (it measures a cluster through the client)", []string{"/node", "/storage", "/ring", "/cmd"}},
		{"internal/respserver", "must not depend on node, storage, ring, client or cmd (it is the Redis listener node serves; it calls the node through an interface)", []string{"/node", "/storage", "/ring", "/client", "/cmd"}},
		{"internal/resp", "must not depend on any other package of the module (it is the Redis wire protocol the Redis listener speaks)", []string{"/"}},
	}
	for _, rule := range forbidden {
		for pkg, deps := range all {
			// The rule's package and those under it, not its namesakes
			// (internal/resp is not internal/respserver).
			if p := module + "/" + rule.pkg; pkg != p && !strings.HasPrefix(pkg, p+"/") {
				continue
			}
			for _, d := range deps {
				for _, bad := range rule.not {
					if strings.HasPrefix(d, module+bad) {
						t.Errorf("%s imports %s: %s %s", pkg, d, rule.pkg, rule.must)
					}
				}
			}
		}
	}
	// The client is what users embed: only the public API, gRPC, protobuf,
	// the standard library, the UUID package, xxhash (the partition
	// function), gRPC's status message (a pipelined call's error) and
	// otter (the near cache's eviction policy).
	allowed := []string{module + "/proto/cache/v1", "google.golang.org/grpc", "google.golang.org/protobuf", "github.com/google/uuid",
		"github.com/cespare/xxhash/v2", "google.golang.org/genproto/googleapis/rpc/status", "github.com/maypok86/otter/v2"}
	for pkg, deps := range direct {
		if !strings.HasPrefix(pkg, module+"/client") {
			continue
		}
	next:
		for _, d := range deps {
			if isStd(d) {
				continue
			}
			for _, a := range allowed {
				if d == a || strings.HasPrefix(d, a+"/") {
					continue next
				}
			}
			t.Errorf("%s imports %s: client may import only %v and the standard library", pkg, d, allowed)
		}
	}
	// hashicorp/memberlist stays behind internal/gossip, in code and tests.
	const memberlist = "github.com/hashicorp/memberlist"
	for pkg, deps := range imports(t, listWithTests) {
		if pkg == module+"/internal/gossip" {
			continue
		}
		for _, d := range deps {
			if d == memberlist || strings.HasPrefix(d, memberlist+"/") {
				t.Errorf("%s imports %s: only internal/gossip may", pkg, d)
			}
		}
	}
	// internal/readround knows nothing of raft: the node passes its terms in.
	const raft = "github.com/hashicorp/raft"
	readround, ok := all[module+"/internal/readround"]
	if !ok {
		t.Errorf("package %s/internal/readround not found", module)
	}
	for _, d := range readround {
		if d == raft || strings.HasPrefix(d, raft+"/") {
			t.Errorf("%s/internal/readround imports %s: it must not depend on hashicorp/raft", module, d)
		}
	}
	if _, ok := direct[module+"/internal/gossip"]; !ok {
		t.Errorf("package %s/internal/gossip not found", module)
	}
	if _, ok := direct[module+"/client"]; !ok {
		t.Errorf("package %s/client not found", module)
	}
}

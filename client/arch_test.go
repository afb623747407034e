package client

import (
	"go/build"
	"strings"
	"testing"
)

// TestImports keeps the client free of the server: it may import only the
// API package, gRPC, protobuf, google/uuid, xxhash and the standard
// library.
func TestImports(t *testing.T) {
	pkg, err := build.ImportDir(".", 0)
	if err != nil {
		t.Fatal(err)
	}
	allowed := []string{
		"github.com/elcache/elcache/proto/cache/v1",
		"google.golang.org/grpc",
		"google.golang.org/protobuf/types/known/",
		"github.com/google/uuid",
		// The partition function (package ring's), and the status
		// protocol buffer of a pipelined call's error.
		"github.com/cespare/xxhash/v2",
		// The near cache's eviction policy (W-TinyLFU, weighed by bytes).
		"github.com/maypok86/otter/v2",
		"google.golang.org/genproto/googleapis/rpc/status",
	}
	for _, imp := range pkg.Imports {
		if !strings.Contains(strings.Split(imp, "/")[0], ".") {
			continue // standard library
		}
		ok := false
		for _, a := range allowed {
			if imp == a || strings.HasPrefix(imp, strings.TrimSuffix(a, "/")+"/") {
				ok = true
				break
			}
		}
		if !ok {
			t.Errorf("client imports %s; allowed are the standard library and %v", imp, allowed)
		}
	}
}

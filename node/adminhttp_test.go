package node_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/elcache/elcache/node"
	"github.com/elcache/elcache/node/nodetest"
)

func TestAdminHTTPServesProfiles(t *testing.T) {
	n := nodetest.Start(t, func(c *node.Config) { c.AdminAddr = "127.0.0.1:0" })
	addr := n.AdminAddr()
	if addr == "" {
		t.Fatal("no admin address with AdminAddr set")
	}
	resp, err := http.Get("http://" + addr + "/debug/pprof/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), ".test") {
		t.Errorf("cmdline: %s %q", resp.Status, body)
	}
	if plain := nodetest.Start(t); plain.AdminAddr() != "" {
		t.Errorf("admin address %q without AdminAddr", plain.AdminAddr())
	}
}

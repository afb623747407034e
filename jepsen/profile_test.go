package jepsen

import (
	"slices"
	"testing"
)

// TestProfiles: every profile is named after its key, a self-test expects
// anomalies and is listed by SelfTests, and a near-cache profile has
// workloads that read through near caches.
func TestProfiles(t *testing.T) {
	selfTests := SelfTests()
	for name, p := range Profiles {
		if p.Name != name {
			t.Errorf("profile %q is named %q", name, p.Name)
		}
		if len(p.Break) > 0 && (len(p.Expect) == 0 || !slices.Contains(selfTests, name)) {
			t.Errorf("self-test %s: expects %v, listed %v", name, p.Expect, selfTests)
		}
		if p.NearCache && p.Set+p.Session+p.Bounded == 0 {
			t.Errorf("near-cache profile %s has no set, session or bounded processes", name)
		}
	}
	for _, name := range []string{"quick-near", "break-changes"} {
		if !Profiles[name].NearCache {
			t.Errorf("%s does not read through near caches", name)
		}
	}
}

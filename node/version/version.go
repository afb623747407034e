// Package version names this build of elcache, for the server and its
// tools alike.
package version

import "runtime/debug"

// Release is the version of this source tree.
const Release = "0.1.0-dev"

// String is the release and, when the build recorded it, the commit it was
// built from ("0.1.0-dev+3f2a9c1d0b7e", with "-dirty" for uncommitted
// changes), so that two builds can be told apart.
var String = build(Release)

func build(release string) string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return release
	}
	var rev, dirty string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "-dirty"
			}
		}
	}
	if rev == "" {
		return release
	}
	return release + "+" + rev[:min(12, len(rev))] + dirty
}

package catalogers_test

import (
	"testing"

	"github.com/drydockhq/drydock/internal/index/catalogers"
)

// TestDistinct checks that every cataloger has its own name (the layer
// cache key is built from names and versions) and that the OS package
// databases are claimed by exactly one cataloger each.
func TestDistinct(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range catalogers.All() {
		if seen[c.Name()] {
			t.Errorf("two catalogers are named %q", c.Name())
		}
		seen[c.Name()] = true
	}
	for _, p := range []string{"var/lib/dpkg/status", "lib/apk/db/installed", "var/lib/rpm/Packages", "usr/lib/sysimage/rpm/rpmdb.sqlite"} {
		n := 0
		for _, c := range catalogers.All() {
			if c.Wants(p, 0o644, 1000) {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%s is wanted by %d catalogers", p, n)
		}
	}
}

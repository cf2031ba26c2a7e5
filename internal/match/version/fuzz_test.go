package version

import (
	"os/exec"
	"testing"

	"github.com/drydockhq/drydock/internal/testutil"
)

// FuzzParse feeds untrusted version strings (from package databases and
// advisories) to every scheme: parsing must not panic, and the order must
// be reflexive and antisymmetric.
func FuzzParse(f *testing.F) {
	for _, v := range []string{"1:2.38.1-5+deb12u3", "1.0~rc1", "3.0.7-27.el9_4.alma.1", "1.0^git1", "1.1.1d-r2", "1.0_p1-r0",
		"v0.0.0-20210921155107-089bfa567519", "v2.0.0+incompatible", "1!2.0.post1.dev3+local.7", "2.0-beta9", "1.0.0.RELEASE",
		"4.0.0-Beta.2", "1.0.0.pre.1", "v1.0.0-RC1", "1.0.x-dev", "", "-", "1.", "~", "1:", "0000000000000000000000001"} {
		f.Add(v, "1.0")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		for s := Dpkg; s <= Composer; s++ {
			va, errA := s.Parse(a)
			vb, errB := s.Parse(b)
			if errA != nil || errB != nil {
				continue
			}
			if c := va.Compare(va); c != 0 {
				t.Fatalf("%s: Compare(%q, itself) = %d", s, a, c)
			}
			if x, y := va.Compare(vb), vb.Compare(va); x != -y {
				t.Fatalf("%s: Compare(%q, %q) = %d but reversed = %d", s, a, b, x, y)
			}
		}
	})
}

// TestDpkgOracleIsDpkg checks the batch oracle (Dpkg::Version) against
// dpkg --compare-versions itself on a sample of the property-test pairs.
func TestDpkgOracleIsDpkg(t *testing.T) {
	t.Parallel()
	dpkg := testutil.RequireTool(t, "dpkg")
	ps := pairs(dpkgStatusVersions(t), 150, 11)[:150]
	got := dpkgOracle.run(t, ps)
	for i, p := range ps {
		want := 0
		for _, op := range []struct {
			op string
			c  int
		}{{"lt", -1}, {"gt", 1}} {
			if exec.Command(dpkg, "--compare-versions", p[0], op.op, p[1]).Run() == nil {
				want = op.c
			}
		}
		if got[i].cmp != want || got[i].invalid {
			t.Errorf("Dpkg::Version says %+v for %q vs %q, dpkg says %d", got[i], p[0], p[1], want)
		}
	}
}

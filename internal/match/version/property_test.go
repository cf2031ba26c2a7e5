package version

import (
	"strings"
	"testing"

	xsemver "golang.org/x/mod/semver"
)

// The property tests compare Drydock's order with each ecosystem's own tool
// on real version strings from the fixtures, on variants of them carrying
// the pieces each scheme treats specially, and on random pairs of both.
// Each oracle runs once per test, over the whole batch.

func TestDpkgAgainstDpkg(t *testing.T) {
	t.Parallel()
	corpus := dpkgStatusVersions(t)
	corpus = append(corpus, recordVersions(t)...)
	corpus = mutate(corpus, []string{"~", "~rc1", "~~", "+b1", "+deb12u1", "-1", "-0.1", "1:", "2:", ".0", "a", "+", "-1~bpo12+1", "~dfsg", ".1", "0"}, 3000, 1)
	if n := agree(t, Dpkg, dpkgOracle, pairs(corpus, 20000, 1)); n < 10000 {
		t.Fatalf("only %d pairs judged", n)
	}
}

func TestRPMAgainstRPM(t *testing.T) {
	t.Parallel()
	corpus := osvVersions(t, "feeds/osv/AlmaLinux/sample.zip")
	corpus = append(corpus, amazonVersions(t)...)
	corpus = mutate(corpus, []string{"~rc1", "^git1", "^", "~", ".el9", ".el8_10", "_1", "-1", "1:", "2:", ".1", "a", "+", ".0", "0", "~~", "^^"}, 3000, 2)
	if n := agree(t, RPM, rpmOracle, pairs(corpus, 20000, 2)); n < 10000 {
		t.Fatalf("only %d pairs judged", n)
	}
}

func TestSemVerAgainstNodeSemver(t *testing.T) {
	t.Parallel()
	corpus := osvVersions(t, "feeds/osv/crates.io/all.zip")
	for _, v := range osvVersions(t, "feeds/osv/Go/all.zip") {
		corpus = append(corpus, strings.TrimPrefix(v, "v"))
	}
	corpus = mutate(corpus, []string{"-alpha", "-alpha.1", "-0", "+build.5", "-rc.1", "-beta.11", "-x.7.z.92", "-1", ".0", "-alpha.beta", "-beta.2", "+sha.0abc"}, 3000, 3)
	if n := agree(t, SemVer, semverOracle, pairs(corpus, 20000, 3)); n < 10000 {
		t.Fatalf("only %d pairs judged", n)
	}
}

// goOracle orders Go module versions with golang.org/x/mod/semver, the
// package the go command itself uses.
func TestGoAgainstXModSemver(t *testing.T) {
	t.Parallel()
	corpus := osvVersions(t, "feeds/osv/Go/all.zip")
	corpus = mutate(corpus, []string{"+incompatible", "-0.20200101000000-abcdef012345", "-pre", "-rc.1", ".0", "-0"}, 3000, 4)
	judged, shown := 0, 0
	for _, p := range pairs(corpus, 30000, 4) {
		p := [2]string{goV(p[0]), goV(p[1])}
		if !xsemver.IsValid(p[0]) || !xsemver.IsValid(p[1]) {
			continue
		}
		judged++
		want := xsemver.Compare(p[0], p[1])
		got, err := Compare("Go", p[0], p[1])
		if err != nil || got != want {
			if shown < 40 {
				t.Errorf("Compare(%q, %q) = %d, %v; x/mod/semver says %d", p[0], p[1], got, err, want)
			}
			shown++
		}
	}
	if judged < 10000 {
		t.Fatalf("only %d pairs judged", judged)
	}
	t.Logf("%d pairs judged, %d disagree", judged, shown)
}

func TestPEP440AgainstPackaging(t *testing.T) {
	t.Parallel()
	corpus := osvVersions(t, "feeds/osv/PyPI/sample.zip")
	corpus = mutate(corpus, []string{"a1", "b2", "rc1", "c1", ".post1", "-1", ".dev0", "dev", "+local.1", "+ubuntu1", "1!", "2!", ".0", "alpha", "pre", "-rc.2", ".post", "post2.dev3", "+ABC-1_2", "v", "_", "rev", "r1", "preview"}, 4000, 5)
	if n := agree(t, PEP440, pep440Oracle, pairs(corpus, 20000, 5)); n < 10000 {
		t.Fatalf("only %d pairs judged", n)
	}
}

// mavenStems are version shapes of real Maven Central artifacts (Spring,
// Guava, Hibernate, Jetty, log4j, Scala, Android, ...).
var mavenStems = []string{
	"1", "1.0", "1.0.0", "1.0.1", "1.2", "1.10", "2.0-beta9", "2.0-rc1", "2.0-rc2", "2.0", "2.0.1", "2.3.1", "2.12.2", "2.13.0", "2.14.1", "2.15.0", "2.17.1",
	"5.3.18", "5.3.18.RELEASE", "4.3.0.RELEASE", "1.0.0.M1", "2.0.0.RC1", "6.0.0-M2", "31.1-jre", "31.1-android", "32.0.0-jre",
	"5.4.32.Final", "6.2.0.CR1", "9.4.44.v20210927", "11.0.7", "1.0-SNAPSHOT", "2.13.0-M1", "3.0.0-alpha-1", "3.0.0-beta-2",
	"1.2.3-SP1", "1.0-ga", "1.0.0-final", "1.0-20210101.120000-1", "2.9.10.8", "1.7.36", "2.0.0-alpha7", "1.5.0-b01",
	"3.2.0-incubating", "0.9.9-RC1", "1.9.4.1", "r09", "1.0a", "1.0b2", "1.0c", "1-1", "1.0.0-1", "7.0.0-cdh6", "2.0.0.dev",
	"1.0-alpha", "1.0-beta", "1.0-milestone", "1.0-rc", "1.0-cr", "1.0-sp", "1.0-release", "1.0-foo", "1.0.0.0", "1.0-0",
}

func TestMavenAgainstComparableVersion(t *testing.T) {
	t.Parallel()
	corpus := mutate(mavenStems, []string{"-SNAPSHOT", "-alpha-1", "-beta", "-rc1", "-RC2", ".Final", "-final", "-ga", "-sp1", "-M1", "-cr1", ".0", "-1", "-jre", "a1", "b", ".RELEASE", "-android", "-0", ".1", "-", "--", "..", "-ALPHA", "m3", "-2"}, 4000, 6)
	if n := agree(t, Maven, mavenOracle, pairs(corpus, 20000, 6)); n < 10000 {
		t.Fatalf("only %d pairs judged", n)
	}
}

func TestRubyGemsAgainstGemVersion(t *testing.T) {
	t.Parallel()
	corpus := osvVersions(t, "feeds/osv/PyPI/sample.zip")
	corpus = append(corpus, mavenStems...)
	corpus = mutate(corpus, []string{".a", ".pre", ".pre.1", ".rc1", "-1", ".beta.2", "b", ".0", ".0.0", "-pre", ".alpha", "rc", "-x", ".1"}, 4000, 7)
	if n := agree(t, RubyGems, rubyOracle, pairs(corpus, 20000, 7)); n < 10000 {
		t.Fatalf("only %d pairs judged", n)
	}
}

func TestComposerAgainstComposerSemver(t *testing.T) {
	t.Parallel()
	corpus := osvVersions(t, "feeds/osv/crates.io/all.zip")
	corpus = append(corpus, osvVersions(t, "feeds/osv/PyPI/sample.zip")...)
	corpus = mutate(corpus, []string{"-beta2", "-RC1", "-alpha", "-alpha3", "-dev", "-patch1", "-p1", "v", ".0", "-stable", "-pl2", "b1", "-beta.3", "rc2", "-a1", ".1", "-B1", "-rc"}, 4000, 8)
	if n := agree(t, Composer, composerOracle, pairs(corpus, 20000, 8)); n < 10000 {
		t.Fatalf("only %d pairs judged", n)
	}
}

// goV adds the v that module versions carry and OSV's Go records omit.
func goV(s string) string {
	if strings.HasPrefix(s, "v") {
		return s
	}
	return "v" + s
}

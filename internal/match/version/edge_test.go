package version

import (
	"errors"
	"slices"
	"testing"
)

// ordered lists are versions in ascending order; equal groups share a
// slice. Every version is compared with every other.
type orderCase struct {
	eco   string
	order [][]string
}

func checkOrder(t *testing.T, c orderCase) {
	t.Helper()
	type pos struct {
		v string
		i int
	}
	var all []pos
	for i, group := range c.order {
		for _, v := range group {
			all = append(all, pos{v, i})
		}
	}
	for _, a := range all {
		for _, b := range all {
			want := cmpInt(a.i, b.i)
			got, err := Compare(c.eco, a.v, b.v)
			if err != nil {
				t.Errorf("%s: Compare(%q, %q): %v", c.eco, a.v, b.v, err)
				continue
			}
			if got != want {
				t.Errorf("%s: Compare(%q, %q) = %d, want %d", c.eco, a.v, b.v, got, want)
			}
		}
	}
}

func one(vs ...string) [][]string {
	out := make([][]string, len(vs))
	for i, v := range vs {
		out[i] = []string{v}
	}
	return out
}

// The expected orders below are the ecosystems' documented rules; the
// dpkg, RPM, PEP 440, SemVer, Go, Maven, RubyGems and Composer cases are
// also confirmed by the oracles in TestEdgeCasesAgainstOracles.

func TestDpkgEpochs(t *testing.T) {
	checkOrder(t, orderCase{"Debian:12", append(one("9.9-9", "1:0.1-1", "1:1.0-1"), []string{"2:1.0", "2:1.0-0"})})
}

func TestDpkgTildes(t *testing.T) {
	checkOrder(t, orderCase{"Ubuntu:22.04", one("1.0~~", "1.0~~a", "1.0~rc1", "1.0~rc2", "1.0", "1.0-1~bpo12+1", "1.0-1", "1.0-1+b1", "1.0-1+deb12u1", "1.0a", "1.0+b1")})
}

func TestDpkgRevisions(t *testing.T) {
	checkOrder(t, orderCase{"Debian:11", [][]string{{"2.36.1", "2.36.1-0", "0:2.36.1"}, {"2.36.1-1"}, {"2.36.1-8"}, {"2.36.1-8+deb11u1"}, {"2.36.1-10"}}})
}

func TestRPMEpochs(t *testing.T) {
	checkOrder(t, orderCase{"Red Hat:9", [][]string{{"9.9-9.el9"}, {"1:1.0-1.el9"}, {"1:1.0-2.el9"}, {"2:0.1-1"}}})
}

func TestRPMTildes(t *testing.T) {
	checkOrder(t, orderCase{"AlmaLinux:9", one("1.0~~", "1.0~rc1", "1.0~rc2", "1.0", "1.0.1")})
}

func TestRPMCarets(t *testing.T) {
	checkOrder(t, orderCase{"Fedora:40", one("1.0~rc1", "1.0", "1.0^", "1.0^20240101git1", "1.0^20240102git1", "1.0a", "1.0.1")})
}

func TestRPMMissingRelease(t *testing.T) {
	// rpm.vercmp compares a missing release as empty: before any release.
	checkOrder(t, orderCase{"Amazon Linux:2023", one("2.0.9-9.amzn2023", "2.1", "2.1-1.amzn2023", "2.1-5.amzn2023.0.1", "2.2")})
}

func TestAPKSuffixes(t *testing.T) {
	checkOrder(t, orderCase{"Alpine:v3.18", one("1.0_alpha", "1.0_alpha1", "1.0_beta", "1.0_pre1", "1.0_rc1", "1.0_rc2", "1.0", "1.0_cvs", "1.0_svn", "1.0_git", "1.0_hg", "1.0_p1", "1.0_p2", "1.0.1")})
}

func TestAPKRevisions(t *testing.T) {
	checkOrder(t, orderCase{"Alpine:v3.10", one("1.1.1c-r0", "1.1.1d-r0", "1.1.1d-r2", "1.1.1d-r10", "1.1.1e-r0", "1.1.2-r0")})
}

func TestAPKLetters(t *testing.T) {
	checkOrder(t, orderCase{"Wolfi", one("1.2", "1.2a", "1.2b", "1.2.1", "1.10")})
}

func TestAPKPatchBeatsRevision(t *testing.T) {
	// _p is part of the version; -rN only orders builds of one version.
	checkOrder(t, orderCase{"Chainguard", one("8.2_p1-r9", "8.2_p2-r0", "8.3-r0", "8.3_p1-r0")})
}

func TestSemVerPreReleases(t *testing.T) {
	// The ordering example of SemVer 2.0.0, section 11.
	checkOrder(t, orderCase{"npm", one("1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2", "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.0.1", "1.1.0", "2.0.0")})
}

func TestSemVerBuildMetadataIgnored(t *testing.T) {
	checkOrder(t, orderCase{"crates.io", [][]string{{"1.0.0-rc.1+build.1"}, {"1.0.0", "1.0.0+20130313144700", "1.0.0+exp.sha.5114f85"}}})
}

func TestGoIncompatible(t *testing.T) {
	checkOrder(t, orderCase{"Go", [][]string{{"v1.9.9"}, {"v2.0.0-rc.1+incompatible"}, {"v2.0.0", "v2.0.0+incompatible", "2.0.0"}, {"v2.1.0+incompatible"}}})
}

func TestGoPseudoVersions(t *testing.T) {
	// vX.0.0-yyyymmddhhmmss-abcdef before any release; vX.Y.(Z+1)-0.date-hash
	// after vX.Y.Z and before vX.Y.(Z+1); vX.Y.Z-pre.0.date-hash after the
	// pre-release.
	checkOrder(t, orderCase{"Go", one(
		"v0.0.0-20191109021931-daa7c04131f5", "v0.0.0-20210921155107-089bfa567519", "v0.1.0",
		"v1.2.3", "v1.2.4-0.20220101000000-abcdefabcdef", "v1.2.4-0.20230101000000-abcdefabcdef",
		"v1.2.4-rc.1", "v1.2.4-rc.1.0.20230101000000-abcdefabcdef", "v1.2.4")})
}

func TestPEP440PreDevPost(t *testing.T) {
	// The order in PEP 440's "Summary of permitted suffixes and relative
	// ordering".
	checkOrder(t, orderCase{"PyPI", one("1.0.dev456", "1.0a1", "1.0a2.dev456", "1.0a12.dev456", "1.0a12", "1.0b1.dev456", "1.0b2", "1.0b2.post345.dev456", "1.0b2.post345", "1.0rc1.dev456", "1.0rc1", "1.0", "1.0+abc.5", "1.0+abc.7", "1.0+5", "1.0.post456.dev34", "1.0.post456", "1.0.15", "1.1.dev1")})
}

func TestPEP440Normalisation(t *testing.T) {
	checkOrder(t, orderCase{"PyPI", [][]string{
		{"1.0a1", "1.0-alpha1", "1.0.alpha.1", "1.0A1", "v1.0a1", "1.0a01"},
		{"1.0rc1", "1.0c1", "1.0pre1", "1.0-preview-1"},
		{"1.0", "1.0.0", "1.00", "0!1.0"},
		{"1.0+ubuntu.1", "1.0+Ubuntu-1", "1.0+ubuntu_1"},
		{"1.0.post1", "1.0-1", "1.0post1", "1.0-r1", "1.0.rev1"},
	}})
}

func TestPEP440Epochs(t *testing.T) {
	checkOrder(t, orderCase{"PyPI", one("2024.10", "1!0.1", "1!1.0", "2!0.0.1")})
}

func TestPEP440LocalVersions(t *testing.T) {
	// Local labels order after the public version, numbers after
	// strings, longer after shorter.
	checkOrder(t, orderCase{"PyPI", one("1.0", "1.0+abc", "1.0+abc.1", "1.0+abc.2", "1.0+abc.10", "1.0+1", "1.0+2.a", "1.0.1")})
	// Python's packaging accepts what is not PEP 440 only as a legacy
	// version; Drydock orders such versions too (scalibr's legacy order),
	// since installed metadata may carry them.
}

func TestMavenQualifiers(t *testing.T) {
	checkOrder(t, orderCase{"Maven", [][]string{
		{"1.0-alpha-1", "1.0-a1", "1.0alpha1"},
		{"1.0-beta-1", "1.0-b1"},
		{"1.0-M1", "1.0-milestone-1"},
		{"1.0-rc1", "1.0-cr1", "1.0.RC1"},
		{"1.0-SNAPSHOT"},
		{"1", "1.0", "1.0.0", "1-ga", "1.0-final", "1.0.RELEASE", "1.0-0"},
		{"1.0-sp1"},
		{"1.0-abc"},
		{"1.0-1"},
		{"1.0.1"},
	}})
}

func TestMavenPadding(t *testing.T) {
	checkOrder(t, orderCase{"Maven", [][]string{{"2.14.1"}, {"2.15", "2.15.0", "2.15.0.0"}, {"2.15.0-1"}, {"2.15.0.1"}, {"2.17.1"}, {"31.1"}, {"31.1-android"}, {"31.1-jre"}}})
}

func TestNuGetLegacyFourPart(t *testing.T) {
	checkOrder(t, orderCase{"NuGet", [][]string{{"1.0.0-beta"}, {"1.0", "1.0.0", "1.0.0.0", "1.0.0+build.7"}, {"1.0.0.1"}, {"1.0.1-alpha"}, {"1.0.1"}, {"1.0.10"}}})
}

func TestNuGetPreReleaseCaseInsensitive(t *testing.T) {
	checkOrder(t, orderCase{"NuGet", [][]string{{"4.0.0-alpha.2"}, {"4.0.0-alpha.10"}, {"4.0.0-Beta", "4.0.0-beta", "4.0.0-BETA"}, {"4.0.0-rc.1"}, {"4.0.0"}}})
}

func TestRubyGemsPreReleases(t *testing.T) {
	checkOrder(t, orderCase{"RubyGems", [][]string{
		{"1.0.a"}, {"1.0.a1"}, {"1.0.b1"}, {"1.0.pre"}, {"1.0.pre.1", "1.0-1"}, {"1.0.rc1"},
		{"1", "1.0", "1.0.0"}, {"1.0.1"}, {"1.1"},
	}})
}

func TestComposerStabilities(t *testing.T) {
	checkOrder(t, orderCase{"Packagist", [][]string{
		{"1.0.0-dev", "1.0-dev"},
		{"1.0.0-alpha1", "1.0-a1", "v1.0.0-alpha.1"},
		{"1.0.0-beta2", "1.0.0-b2"},
		{"1.0.0-RC1", "1.0.0-rc1"},
		{"1.0.0", "1.0", "1.0.0.0", "v1.0.0", "1.0.0-stable", "1.0.0+build.3"},
		{"1.0.0-p1", "1.0.0-patch1", "1.0.0-pl1"},
		{"1.0.0.1"},
		{"1.0.1"},
	}})
}

func TestEcosystemNames(t *testing.T) {
	for eco, want := range map[string]Scheme{
		"Debian:12": Dpkg, "Ubuntu:22.04:LTS": Dpkg, "Ubuntu:Pro:18.04:LTS": Dpkg,
		"Alpine:v3.18": APK, "Wolfi": APK, "Chainguard": APK,
		"AlmaLinux:9": RPM, "Red Hat:9": RPM, "Amazon Linux:2023": RPM, "SUSE:Linux Enterprise Server 15 SP5": RPM,
		"Rocky Linux:9": RPM, "Mariner:2.0": RPM, "Azure Linux:3.0": RPM, "Photon OS:5.0": RPM,
		"npm": SemVer, "crates.io": SemVer, "Go": Go, "PyPI": PEP440, "Maven": Maven, "NuGet": NuGet,
		"RubyGems": RubyGems, "Packagist": Composer,
	} {
		got, err := SchemeOf(eco)
		if err != nil || got != want {
			t.Errorf("SchemeOf(%q) = %v, %v; want %v", eco, got, err, want)
		}
	}
	if _, err := SchemeOf("Haiku"); !errors.Is(err, ErrUnknownEcosystem) {
		t.Errorf("SchemeOf(Haiku): %v, want ErrUnknownEcosystem", err)
	}
}

func TestInvalidVersions(t *testing.T) {
	for _, c := range []struct{ eco, v string }{
		{"Debian:12", "a:1.0"}, {"Debian:12", "1.0-"}, {"Debian:12", ""},
		{"npm", "1.2.3.4"}, {"npm", "1.x"}, {"Go", "v1.2.3-"}, {"npm", "1.0.0-a..b"},
		{"RubyGems", "1.0 beta"}, {"Packagist", "dev-master"}, {"Packagist", "nonsense"},
	} {
		if _, err := Parse(c.eco, c.v); err == nil {
			t.Errorf("Parse(%q, %q) succeeded, want an error", c.eco, c.v)
		}
	}
}

// TestEdgeCasesAgainstOracles runs the table cases of the schemes that
// have an oracle through it too, so the tables cannot drift from the
// tools.
func TestEdgeCasesAgainstOracles(t *testing.T) {
	t.Parallel()
	cases := map[Scheme][]string{
		Dpkg:     {"1.0~~", "1.0~~a", "1.0~rc1", "1.0", "1.0-1~bpo12+1", "1.0-1", "1.0-1+b1", "1.0a", "1.0+b1", "1:0.1-1", "2.36.1-0", "2.36.1"},
		RPM:      {"1.0~rc1", "1.0", "1.0^", "1.0^20240101git1", "1.0a", "1.0.1", "1:1.0-1.el9", "2.1", "2.1-1.amzn2023", "2.1-5.amzn2023.0.1"},
		PEP440:   {"1.0.dev456", "1.0a1", "1.0a12.dev456", "1.0b2.post345", "1.0rc1", "1.0", "1.0+abc.5", "1.0+5", "1.0.post456", "1!0.1", "1.0+ubuntu.1", "1.0+Ubuntu-1", "1.0-r1"},
		Maven:    {"1.0-alpha-1", "1.0-a1", "1.0-M1", "1.0-cr1", "1.0.RC1", "1.0-SNAPSHOT", "1-ga", "1.0-final", "1.0-sp1", "1.0-abc", "1.0-1", "31.1-jre", "31.1-android"},
		RubyGems: {"1.0.a", "1.0.a1", "1.0.b1", "1.0.pre", "1.0-1", "1.0.rc1", "1", "1.0.0", "1.0.1"},
		Composer: {"1.0.0-dev", "1.0-a1", "v1.0.0-alpha.1", "1.0.0-b2", "1.0.0-RC1", "1.0", "1.0.0-stable", "1.0.0-p1", "1.0.0-pl1", "1.0.0.1"},
		SemVer:   {"1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta.2", "1.0.0-beta.11", "1.0.0", "1.0.0+exp.sha.5114f85"},
	}
	oracles := map[Scheme]oracle{Dpkg: dpkgOracle, RPM: rpmOracle, PEP440: pep440Oracle, Maven: mavenOracle, RubyGems: rubyOracle, Composer: composerOracle, SemVer: semverOracle}
	for s, vs := range cases {
		var ps [][2]string
		for _, a := range vs {
			for _, b := range vs {
				ps = append(ps, [2]string{a, b})
			}
		}
		if n := agree(t, s, oracles[s], ps); n != len(ps) {
			t.Errorf("%s: the oracle rejected %d table versions", s, len(ps)-n)
		}
	}
}

// TestAPKRealVersionsTotalOrder sorts every real Alpine version of the
// fixtures (secdb fixes and installed packages of two releases) and checks
// the order is total: every version parses, and after sorting no pair is
// out of order (a comparator that is not transitive fails this).
func TestAPKRealVersionsTotalOrder(t *testing.T) {
	corpus := alpineVersions(t)
	if len(corpus) < 500 {
		t.Fatalf("only %d Alpine versions in the fixtures", len(corpus))
	}
	vs := make([]Version, 0, len(corpus))
	for _, s := range corpus {
		v, err := APK.Parse(s)
		if err != nil {
			t.Errorf("real Alpine version %q: %v", s, err)
			continue
		}
		vs = append(vs, v)
	}
	slices.SortFunc(vs, Version.Compare)
	for i := range vs {
		for j := i + 1; j < len(vs); j++ {
			if vs[i].Compare(vs[j]) > 0 {
				t.Fatalf("after sorting, %s > %s", vs[i], vs[j])
			}
		}
	}
}

package version

import (
	"errors"
	"strings"
)

// semver orders Semantic Versioning 2.0.0 versions (npm, crates.io, Go
// modules and the other SemVer ecosystems): major.minor.patch, then
// pre-release identifiers, and build metadata ignored (so Go's
// "+incompatible" orders as the version without it, as the go command
// does). A leading "v" is accepted: Go module versions carry it, OSV's Go
// records omit it.
//
// Hand-written rather than osv-scalibr's semantic.SemverVersion, which
// (v0.5.3) reads a pre-release identifier starting with a hyphen ("--10",
// "rc.-16") as a negative number where SemVer says it is alphanumeric;
// TestSemVerAgainstNodeSemver and TestGoAgainstXModSemver show the pairs.
type semver struct {
	// major, minor and patch are decimal digits without leading zeros.
	major, minor, patch string
	// pre is the pre-release, without its leading '-'; empty for a release.
	pre string
}

var errSemVer = errors.New("not a semantic version")

func parseSemVer(s string) (ordered, error) {
	s = strings.TrimPrefix(strings.TrimSpace(s), "v")
	if i := strings.IndexByte(s, '+'); i >= 0 {
		if !validIdents(s[i+1:], false) {
			return nil, errSemVer
		}
		s = s[:i]
	}
	var v semver
	core := s
	if i := strings.IndexByte(s, '-'); i >= 0 {
		core, v.pre = s[:i], s[i+1:]
		if !validIdents(v.pre, true) {
			return nil, errSemVer
		}
	}
	// Go and a few SemVer ecosystems abbreviate "v1.2.0" as "v1.2";
	// missing components are zero.
	parts := [3]string{"0", "0", "0"}
	for k := 0; ; k++ {
		part, rest, more := strings.Cut(core, ".")
		if k == 3 || part == "" || !allDigits(part) {
			return nil, errSemVer
		}
		parts[k] = trimZeros(part)
		if !more {
			break
		}
		core = rest
	}
	v.major, v.minor, v.patch = parts[0], parts[1], parts[2]
	return v, nil
}

// validIdents reports whether s is a non-empty dot-separated list of
// non-empty identifiers of [0-9A-Za-z-]. Pre-release numeric identifiers
// may carry leading zeros here; they order by value.
func validIdents(s string, pre bool) bool {
	if s == "" {
		return false
	}
	for id := range strings.SplitSeq(s, ".") {
		if id == "" {
			return false
		}
		for i := 0; i < len(id); i++ {
			if c := id[i]; !isAlnum(c) && c != '-' {
				return false
			}
		}
	}
	return true
}

func (v semver) compare(o ordered) int {
	w := o.(semver)
	if c := cmpNum(v.major, w.major); c != 0 {
		return c
	}
	if c := cmpNum(v.minor, w.minor); c != 0 {
		return c
	}
	if c := cmpNum(v.patch, w.patch); c != 0 {
		return c
	}
	return comparePre(v.pre, w.pre)
}

// comparePre orders two pre-releases: none after any; identifiers in
// turn, numeric ones by value and before alphanumeric ones, which compare
// in ASCII order; a longer list after its prefix.
func comparePre(a, b string) int {
	switch {
	case a == b:
		return 0
	case a == "":
		return 1
	case b == "":
		return -1
	}
	for {
		x, ra, moreA := strings.Cut(a, ".")
		y, rb, moreB := strings.Cut(b, ".")
		xn, yn := allDigits(x), allDigits(y)
		var c int
		switch {
		case xn && yn:
			c = cmpNum(trimZeros(x), trimZeros(y))
		case xn:
			c = -1
		case yn:
			c = 1
		default:
			c = strings.Compare(x, y)
		}
		if c != 0 {
			return c
		}
		switch {
		case !moreA && !moreB:
			return 0
		case !moreA:
			return -1
		case !moreB:
			return 1
		}
		a, b = ra, rb
	}
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
}

// trimZeros drops leading zeros of a digit string, keeping one digit.
func trimZeros(s string) string {
	for len(s) > 1 && s[0] == '0' {
		s = s[1:]
	}
	return s
}

// cmpNum compares two digit strings without leading zeros by value, at any
// length.
func cmpNum(a, b string) int {
	if c := cmpInt(len(a), len(b)); c != 0 {
		return c
	}
	return strings.Compare(a, b)
}

// parseGo parses a Go module version; Go orders them as SemVer.
func parseGo(s string) (ordered, error) { return parseSemVer(s) }

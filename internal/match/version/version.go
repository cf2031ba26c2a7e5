// Package version parses and orders package versions the way each package
// ecosystem does: dpkg for Debian and Ubuntu, rpmvercmp for the RPM
// distributions, apk for Alpine, Wolfi and Chainguard, SemVer 2.0 for npm,
// crates.io and Go, PEP 440 for PyPI, Maven's ComparableVersion, NuGet,
// RubyGems and Composer (Packagist).
//
// Ecosystems are named as OSV names them, with or without a release
// suffix: "Debian:12", "Alpine:v3.18", "Red Hat:9", "Go", "PyPI".
package version

import (
	"errors"
	"fmt"
	"strings"
)

// Scheme is one version ordering. Several ecosystems share a scheme: every
// RPM distribution orders versions with rpmvercmp, Debian and Ubuntu with
// dpkg's rules.
type Scheme uint8

// The schemes Drydock knows.
const (
	SchemeUnknown Scheme = iota
	Dpkg
	RPM
	APK
	SemVer
	Go
	PEP440
	Maven
	NuGet
	RubyGems
	Composer
)

var schemeNames = [...]string{
	SchemeUnknown: "unknown",
	Dpkg:          "dpkg",
	RPM:           "rpm",
	APK:           "apk",
	SemVer:        "semver",
	Go:            "go",
	PEP440:        "pep440",
	Maven:         "maven",
	NuGet:         "nuget",
	RubyGems:      "rubygems",
	Composer:      "composer",
}

// String returns the scheme's short name ("dpkg", "rpm", "pep440", ...).
func (s Scheme) String() string {
	if int(s) < len(schemeNames) {
		return schemeNames[s]
	}
	return fmt.Sprintf("Scheme(%d)", s)
}

// ErrUnknownEcosystem is returned for an ecosystem whose version ordering
// Drydock does not know.
var ErrUnknownEcosystem = errors.New("unknown ecosystem")

// ErrInvalid is returned for a version string its ecosystem cannot order.
var ErrInvalid = errors.New("invalid version")

// ecosystems maps OSV ecosystem names (without the release suffix) to their
// scheme.
var ecosystems = map[string]Scheme{
	"Debian": Dpkg,
	"Ubuntu": Dpkg,

	"AlmaLinux":    RPM,
	"Amazon Linux": RPM,
	"Azure Linux":  RPM,
	"CentOS":       RPM,
	"Fedora":       RPM,
	"Mageia":       RPM,
	"Mariner":      RPM,
	"openEuler":    RPM,
	"openSUSE":     RPM,
	"Oracle Linux": RPM,
	"Photon OS":    RPM,
	"Red Hat":      RPM,
	"Rocky Linux":  RPM,
	"SUSE":         RPM,

	"Alpine":     APK,
	"Alpaquita":  APK,
	"Chainguard": APK,
	"MinimOS":    APK,
	"Wolfi":      APK,

	"npm":       SemVer,
	"crates.io": SemVer,
	"Hex":       SemVer,
	"Pub":       SemVer,
	"SwiftURL":  SemVer,
	"Go":        Go,
	"PyPI":      PEP440,
	"Maven":     Maven,
	"NuGet":     NuGet,
	"RubyGems":  RubyGems,
	"Packagist": Composer,
}

// SchemeOf returns the version scheme of an OSV ecosystem. A release suffix
// after the first colon ("Debian:12", "Alpine:v3.18", "Ubuntu:Pro:18.04")
// does not change the scheme.
func SchemeOf(ecosystem string) (Scheme, error) {
	name, _, _ := strings.Cut(ecosystem, ":")
	if s, ok := ecosystems[name]; ok {
		return s, nil
	}
	return SchemeUnknown, fmt.Errorf("%w %q", ErrUnknownEcosystem, ecosystem)
}

// Version is a parsed version of one scheme. The zero Version is invalid.
// Versions are immutable and safe to share between goroutines.
type Version struct {
	scheme Scheme
	raw    string
	v      ordered
}

// ordered is the parsed form of one scheme. compare is only ever called
// with a value of the same concrete type.
type ordered interface {
	compare(other ordered) int
}

// Parse parses v as a version of the given OSV ecosystem.
func Parse(ecosystem, v string) (Version, error) {
	s, err := SchemeOf(ecosystem)
	if err != nil {
		return Version{}, err
	}
	return s.Parse(v)
}

// Parse parses v as a version of this scheme.
func (s Scheme) Parse(v string) (Version, error) {
	var (
		o   ordered
		err error
	)
	switch s {
	case Dpkg:
		o, err = parseDpkg(v)
	case RPM:
		o, err = parseRPM(v)
	case APK:
		o, err = parseAPK(v)
	case SemVer:
		o, err = parseSemVer(v)
	case Go:
		o, err = parseGo(v)
	case PEP440:
		o, err = parsePEP440(v)
	case Maven:
		o, err = parseMaven(v)
	case NuGet:
		o, err = parseNuGet(v)
	case RubyGems:
		o, err = parseRubyGems(v)
	case Composer:
		o, err = parseComposer(v)
	default:
		return Version{}, fmt.Errorf("%w: scheme %v", ErrUnknownEcosystem, s)
	}
	if err != nil {
		return Version{}, fmt.Errorf("%s version %q: %w", s, v, err)
	}
	return Version{scheme: s, raw: v, v: o}, nil
}

// Scheme returns the version's scheme.
func (v Version) Scheme() Scheme { return v.scheme }

// String returns the version as it was parsed.
func (v Version) String() string { return v.raw }

// IsZero reports whether v is the zero Version (not parsed).
func (v Version) IsZero() bool { return v.v == nil }

// Compare returns -1, 0 or +1 as v orders before, equal to or after w in
// their scheme. Versions of different schemes have no common order: they
// order by scheme so that sorting stays total, and callers that mix
// ecosystems have a bug. The zero Version orders before every other.
func (v Version) Compare(w Version) int {
	switch {
	case v.v == nil || w.v == nil:
		return cmpBool(v.v != nil, w.v != nil)
	case v.scheme != w.scheme:
		return cmpInt(int(v.scheme), int(w.scheme))
	}
	return v.v.compare(w.v)
}

// Compare parses a and b as versions of the ecosystem and compares them.
func Compare(ecosystem, a, b string) (int, error) {
	s, err := SchemeOf(ecosystem)
	if err != nil {
		return 0, err
	}
	va, err := s.Parse(a)
	if err != nil {
		return 0, err
	}
	vb, err := s.Parse(b)
	if err != nil {
		return 0, err
	}
	return va.Compare(vb), nil
}

func cmpInt(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

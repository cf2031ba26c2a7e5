package osv

import (
	"errors"
	"fmt"
	"strings"

	depsemver "deps.dev/util/semver"
	"github.com/google/osv-scalibr/semantic"
	"golang.org/x/mod/semver"

	"github.com/drydockhq/drydock/internal/vulndb"
)

// ErrBadVersion is wrapped by the error for a range version that does not
// parse.
var ErrBadVersion = errors.New("unparseable version")

// strictSystems are the ecosystems whose version grammar deps.dev's semver
// package parses strictly (PEP 440 for PyPI, npm's SemVer, ...).
var strictSystems = map[string]depsemver.System{
	"PyPI":      depsemver.PyPI,
	"npm":       depsemver.NPM,
	"crates.io": depsemver.Cargo,
	"NuGet":     depsemver.NuGet,
	"RubyGems":  depsemver.RubyGems,
	"Packagist": depsemver.Composer,
	"Maven":     depsemver.Maven,
}

// checkVersion reports whether v is a version the ecosystem can order.
// SEMVER ranges take SemVer 2.0; ECOSYSTEM ranges take the ecosystem's
// grammar: strict parsers for the language ecosystems above, dpkg's rules
// for Debian and Ubuntu, and osv-scalibr's semantic package (the comparator
// matching uses) for the others.
func checkVersion(typ, eco, v string, limit bool) error {
	if v == "0" || (limit && v == "*") {
		return nil
	}
	base, _, _ := strings.Cut(eco, ":")
	switch typ {
	case vulndb.RangeSemver:
		core := v
		if i := strings.IndexAny(core, "-+"); i >= 0 {
			core = core[:i]
		}
		if !semver.IsValid("v"+v) || strings.Count(core, ".") != 2 {
			return fmt.Errorf("%w: %q is not SemVer 2.0", ErrBadVersion, v)
		}
	case vulndb.RangeEcosystem:
		if sys, ok := strictSystems[base]; ok {
			if _, err := sys.Parse(v); err != nil {
				return fmt.Errorf("%w: %q in %s: %v", ErrBadVersion, v, eco, err)
			}
			return nil
		}
		if base == "Debian" || base == "Ubuntu" {
			if err := checkDpkgVersion(v); err != nil {
				return fmt.Errorf("%w: %q in %s: %v", ErrBadVersion, v, eco, err)
			}
			return nil
		}
		if _, err := semantic.Parse(v, eco); err != nil && !errors.Is(err, semantic.ErrUnsupportedEcosystem) {
			return fmt.Errorf("%w: %q in %s: %v", ErrBadVersion, v, eco, err)
		}
	}
	return nil
}

// checkDpkgVersion applies the rules dpkg applies when it parses a version
// ([epoch:]upstream[-revision]): a numeric epoch, an upstream part that
// starts with a digit, and only the characters Debian policy allows.
func checkDpkgVersion(v string) error {
	rest := v
	if epoch, after, ok := strings.Cut(v, ":"); ok {
		if epoch == "" || strings.Trim(epoch, "0123456789") != "" {
			return errors.New("epoch is not a number")
		}
		rest = after
	}
	upstream, revision := rest, ""
	if i := strings.LastIndexByte(rest, '-'); i >= 0 {
		upstream, revision = rest[:i], rest[i+1:]
		if revision == "" {
			return errors.New("empty revision")
		}
	}
	if upstream == "" {
		return errors.New("empty upstream version")
	}
	if upstream[0] < '0' || upstream[0] > '9' {
		return errors.New("does not start with a digit")
	}
	for _, part := range []struct {
		s, extra string
	}{{upstream, ".+~-:"}, {revision, ".+~"}} {
		for _, c := range part.s {
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.ContainsRune(part.extra, c)) {
				return fmt.Errorf("invalid character %q", c)
			}
		}
	}
	return nil
}

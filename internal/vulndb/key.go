package vulndb

import (
	"strings"
)

// NewKey returns the lookup key of a package: the ecosystem as OSV names it
// (with its release, and without Ubuntu's ":LTS" marker, which a release
// number implies) and the name normalised the way the ecosystem compares
// names:
//
//   - PyPI: PEP 503 (lower case, runs of "-", "_" and "." become "-");
//   - crates.io: lower case, "_" as "-" (crates.io refuses names that differ
//     only so);
//   - NuGet, Packagist, Hex, Pub, GitHub Actions: lower case (their
//     registries compare names without case);
//   - everything else as published: npm (old mixed-case packages such as
//     "JSONStream" are distinct from lower-case ones), Go module paths,
//     Maven coordinates, RubyGems and distribution package names are case
//     sensitive.
//
// Catalogers' package names go through the same function, so both sides of
// a lookup agree.
func NewKey(ecosystem, name string) Key {
	ecosystem = strings.TrimSpace(ecosystem)
	name = strings.TrimSpace(name)
	base, _, _ := strings.Cut(ecosystem, ":")
	if base == "Ubuntu" {
		ecosystem = strings.TrimSuffix(ecosystem, ":LTS")
	}
	return Key{Ecosystem: ecosystem, Package: NormalizeName(base, name)}
}

// NormalizeName normalises a package name for the ecosystem (without its
// release: "PyPI", "Debian"); see NewKey.
func NormalizeName(ecosystem, name string) string {
	if i := strings.IndexByte(ecosystem, ':'); i >= 0 {
		ecosystem = ecosystem[:i]
	}
	switch ecosystem {
	case "PyPI":
		return pep503(name)
	case "crates.io":
		return strings.ReplaceAll(strings.ToLower(name), "_", "-")
	case "NuGet", "Packagist", "Hex", "Pub", "GitHub Actions":
		return strings.ToLower(name)
	}
	return name
}

// pep503 lower-cases name and replaces each run of '-', '_' and '.' by one
// '-'.
func pep503(name string) string {
	var b strings.Builder
	b.Grow(len(name))
	sep := false
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c == '-' || c == '_' || c == '.' {
			sep = true
			continue
		}
		if sep {
			b.WriteByte('-')
			sep = false
		}
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b.WriteByte(c)
	}
	if sep {
		b.WriteByte('-')
	}
	return b.String()
}

// Key returns the lookup key of the affected package; the zero Key when
// the entry names no package.
func (a *Affected) Key() Key {
	if a.Ecosystem == "" || a.Package == "" {
		return Key{}
	}
	return NewKey(a.Ecosystem, a.Package)
}

// Keys returns the distinct lookup keys of the packages the advisory
// affects, in the order they first appear.
func (a *Advisory) Keys() []Key {
	var keys []Key
	for i := range a.Affected {
		k := a.Affected[i].Key()
		if k == (Key{}) {
			continue
		}
		dup := false
		for _, have := range keys {
			if have == k {
				dup = true
				break
			}
		}
		if !dup {
			keys = append(keys, k)
		}
	}
	return keys
}

// String returns "ecosystem/package".
func (k Key) String() string { return k.Ecosystem + "/" + k.Package }

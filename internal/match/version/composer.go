package version

import (
	"errors"
	"regexp"
	"strings"
)

// composer orders Packagist versions as Composer does: each version is
// first normalised the way composer/semver's VersionParser::normalize does
// ("v1.2" → "1.2.0.0", "1.0-RC1" → "1.0.0.0-RC1", "2.1-p1" →
// "2.1.0.0-patch1", "1.0.x-dev" → "1.0.9999999.9999999-dev", "-stable" and
// build metadata dropped), then compared with PHP's version_compare rules:
// dev < alpha < beta < RC < a number < patch.
//
// Hand-written rather than osv-scalibr's semantic.PackagistVersion, which
// (v0.5.3) does not normalise first and orders "1.0.0-alpha" after "1.0",
// and "1.0" before "1.0.0.0" (TestComposerAgainstComposerSemver).
type composer struct{ segs []phpSeg }

// phpSeg is one segment of a canonical PHP version: a number (digits
// without leading zeros) or a special form with its rank.
type phpSeg struct {
	num  string
	rank int8 // for special forms; phpNumber for numbers
}

const phpNumber = 4

var (
	errComposer = errors.New("not a Composer version")
	errBranch   = errors.New("a dev branch has no version order")

	composerMod       = `[._-]?(?:(stable|beta|b|RC|alpha|a|patch|pl|p)((?:[.-]?\d+)*)?)?([.-]?dev)?`
	composerClassical = regexp.MustCompile(`(?i)^v?(\d{1,5})(\.\d+)?(\.\d+)?(\.\d+)?` + composerMod + `$`)
	composerDate      = regexp.MustCompile(`(?i)^v?(\d{4}(?:[.:-]?\d{2}){1,6}(?:[.:-]?\d{1,3}){0,2})` + composerMod + `$`)
	composerDevSuffix = regexp.MustCompile(`(?i)^(.*?)[.-]?dev$`)
	composerBranch    = regexp.MustCompile(`(?i)^v?(\d+)(\.(?:\d+|[xX*]))?(\.(?:\d+|[xX*]))?(\.(?:\d+|[xX*]))?$`)
	composerFlag      = regexp.MustCompile(`(?i)@(?:stable|RC|beta|alpha|dev)$`)
	composerAlias     = regexp.MustCompile(`^([^,\s]+) +as +([^,\s]+)$`)
	composerBuild     = regexp.MustCompile(`^([^,\s+]+)\+\S+$`)
)

func parseComposer(s string) (ordered, error) {
	n, err := normalizeComposer(s)
	if err != nil {
		return nil, err
	}
	return composer{segs: phpSegments(n)}, nil
}

// normalizeComposer follows VersionParser::normalize for the versions
// that have an order (not dev branches).
func normalizeComposer(v string) (string, error) {
	v = strings.TrimSpace(v)
	if m := composerAlias.FindStringSubmatch(v); m != nil {
		v = m[1]
	}
	v = composerFlag.ReplaceAllString(v, "")
	switch v {
	case "master", "trunk", "default":
		return "", errBranch
	}
	if len(v) >= 4 && strings.EqualFold(v[:4], "dev-") {
		return "", errBranch
	}
	if m := composerBuild.FindStringSubmatch(v); m != nil {
		v = m[1]
	}
	var out string
	var mod []string
	if m := composerClassical.FindStringSubmatch(v); m != nil {
		out = m[1]
		for _, p := range m[2:5] {
			if p == "" {
				p = ".0"
			}
			out += p
		}
		mod = m[5:8]
	} else if m := composerDate.FindStringSubmatch(v); m != nil {
		out = strings.Map(func(r rune) rune {
			if r < '0' || r > '9' {
				return '.'
			}
			return r
		}, m[1])
		mod = m[2:5]
	}
	if mod != nil {
		if mod[0] != "" {
			if mod[0] == "stable" {
				return out, nil
			}
			out += "-" + expandStability(mod[0]) + strings.TrimLeft(mod[1], ".-")
		}
		if mod[2] != "" {
			out += "-dev"
		}
		return out, nil
	}
	if m := composerDevSuffix.FindStringSubmatch(v); m != nil {
		if b := composerBranch.FindStringSubmatch(strings.TrimSpace(m[1])); b != nil {
			var out strings.Builder
			for _, p := range b[1:5] {
				if p == "" {
					p = ".x"
				}
				out.WriteString(strings.NewReplacer("*", "x", "X", "x").Replace(p))
			}
			return strings.ReplaceAll(out.String(), "x", "9999999") + "-dev", nil
		}
		return "", errBranch
	}
	return "", errComposer
}

func expandStability(s string) string {
	switch strings.ToLower(s) {
	case "a", "alpha":
		return "alpha"
	case "b", "beta":
		return "beta"
	case "p", "pl", "patch":
		return "patch"
	case "rc":
		return "RC"
	}
	return s
}

// phpSegments canonicalises a version as PHP's version_compare does
// ('-', '_' and '+' become '.', and a '.' goes between digits and
// non-digits) and splits it into segments.
func phpSegments(v string) []phpSeg {
	var segs []phpSeg
	for i := 0; i < len(v); {
		c := v[i]
		switch {
		case isDigit(c):
			j := i
			for j < len(v) && isDigit(v[j]) {
				j++
			}
			segs = append(segs, phpSeg{num: trimZeros(v[i:j]), rank: phpNumber})
			i = j
		case isAlnum(c):
			j := i
			for j < len(v) && isLetter(v[j]) {
				j++
			}
			segs = append(segs, phpSeg{rank: phpSpecial(v[i:j])})
			i = j
		default:
			i++
		}
	}
	return segs
}

// phpSpecial ranks a special form by the first of PHP's names it starts
// with; forms PHP does not know rank lowest.
func phpSpecial(s string) int8 {
	for _, f := range [...]struct {
		name string
		rank int8
	}{{"dev", 0}, {"alpha", 1}, {"a", 1}, {"beta", 2}, {"b", 2}, {"RC", 3}, {"rc", 3}, {"#", 4}, {"pl", 5}, {"p", 5}} {
		if strings.HasPrefix(s, f.name) {
			return f.rank
		}
	}
	return -1
}

func (v composer) compare(o ordered) int {
	a, b := v.segs, o.(composer).segs
	for i := 0; i < len(a) && i < len(b); i++ {
		x, y := a[i], b[i]
		if x.rank == phpNumber && y.rank == phpNumber {
			if c := cmpNum(x.num, y.num); c != 0 {
				return c
			}
			continue
		}
		if c := cmpInt(int(x.rank), int(y.rank)); c != 0 {
			return c
		}
	}
	// The longer version decides by its next segment: a number makes it
	// greater, a special form compares with a number.
	switch {
	case len(a) > len(b):
		if a[len(b)].rank == phpNumber {
			return 1
		}
		return cmpInt(int(a[len(b)].rank), phpNumber)
	case len(b) > len(a):
		if b[len(a)].rank == phpNumber {
			return -1
		}
		return cmpInt(phpNumber, int(b[len(a)].rank))
	}
	return 0
}

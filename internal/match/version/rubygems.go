package version

import (
	"errors"
	"strings"
)

// rubygems orders RubyGems versions as Gem::Version does: a hyphen means
// ".pre.", the version splits into runs of digits and runs of letters,
// trailing zeros of the release part and of the pre-release part do not
// count, letters (pre-releases) order before numbers, numbers by value,
// letters bytewise (case-sensitive).
//
// Hand-written rather than osv-scalibr's semantic.RubyGemsVersion, which
// (v0.5.3) does not read "-" as ".pre." ("1.0.0-pre03" orders after
// "1.0.0.alpha39" for RubyGems) and allocates 18 times a comparison;
// TestRubyGemsAgainstGemVersion shows the pairs.
type rubygems struct {
	segs []gemSeg
}

// gemSeg is one segment: digits without leading zeros, or letters.
type gemSeg struct {
	s   string
	num bool
}

var errGem = errors.New("not a RubyGems version")

func parseRubyGems(s string) (ordered, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		s = "0"
	}
	if !validGem(s) {
		return nil, errGem
	}
	var segs []gemSeg
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '-':
			segs = append(segs, gemSeg{s: "pre"})
			i++
		case isDigit(c):
			j := i
			for j < len(s) && isDigit(s[j]) {
				j++
			}
			segs = append(segs, gemSeg{s: trimZeros(s[i:j]), num: true})
			i = j
		case isLetter(c):
			j := i
			for j < len(s) && isLetter(s[j]) {
				j++
			}
			segs = append(segs, gemSeg{s: s[i:j]})
			i = j
		default:
			i++
		}
	}
	// Canonical form: drop the trailing zeros of the numeric release part
	// and of the part from the first letters on.
	first := len(segs)
	for k, sg := range segs {
		if !sg.num {
			first = k
			break
		}
	}
	rel, pre := dropZeros(segs[:first]), dropZeros(segs[first:])
	canon := make([]gemSeg, 0, len(rel)+len(pre))
	canon = append(append(canon, rel...), pre...)
	return rubygems{segs: canon}, nil
}

func dropZeros(segs []gemSeg) []gemSeg {
	for len(segs) > 0 && segs[len(segs)-1].num && segs[len(segs)-1].s == "0" {
		segs = segs[:len(segs)-1]
	}
	return segs
}

// validGem matches RubyGems' version pattern: digits, then dot-separated
// alphanumeric parts, then an optional hyphenated pre-release of
// alphanumerics and hyphens in dot-separated parts.
func validGem(s string) bool {
	i := 0
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	if i == 0 {
		return false
	}
	for i < len(s) && s[i] == '.' {
		j := i + 1
		for j < len(s) && isAlnum(s[j]) {
			j++
		}
		if j == i+1 {
			return false
		}
		i = j
	}
	if i == len(s) {
		return true
	}
	if s[i] != '-' {
		return false
	}
	for part := range strings.SplitSeq(s[i+1:], ".") {
		if part == "" {
			return false
		}
		for k := 0; k < len(part); k++ {
			if !isAlnum(part[k]) && part[k] != '-' {
				return false
			}
		}
	}
	return true
}

var gemZero = gemSeg{s: "0", num: true}

func (v rubygems) compare(o ordered) int {
	w := o.(rubygems)
	n := max(len(v.segs), len(w.segs))
	for k := range n {
		x, y := gemZero, gemZero
		if k < len(v.segs) {
			x = v.segs[k]
		}
		if k < len(w.segs) {
			y = w.segs[k]
		}
		switch {
		case x == y:
			continue
		case !x.num && y.num:
			return -1
		case x.num && !y.num:
			return 1
		case x.num:
			return cmpNum(x.s, y.s)
		}
		return strings.Compare(x.s, y.s)
	}
	return 0
}

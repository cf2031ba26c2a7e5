package version

import (
	"errors"
	"strings"
)

// apk orders Alpine, Wolfi and Chainguard versions as apk-tools does:
// number{.number}[letter]{_suffix[number]}[-rN]. Pre-release suffixes
// (_alpha < _beta < _pre < _rc) order before the plain version, the others
// (_cvs < _svn < _git < _hg < _p) after it; -rN orders builds of one
// version. A component with leading zeros ("1.02") orders before any
// without ("1.1").
//
// Hand-written rather than osv-scalibr's semantic.AlpineVersion, which
// (v0.5.3) weighs a missing suffix like _cvs, so "1.0_cvs" equals "1.0"
// (TestAPKSuffixes). There is no apk tool on Debian to use as an oracle:
// the table tests state apk-tools' documented rules.
//
// A "~hash" commit part is not ordered (it is skipped up to the
// revision); Alpine's own packages do not use it.
type apk struct{ toks []apkTok }

type apkTokType int8

const (
	apkInvalid apkTokType = iota - 1
	apkDigitOrZero
	apkDigit
	apkLetter
	apkSuffix
	apkSuffixNo
	apkRevisionNo
	apkEnd
)

type apkTok struct {
	typ apkTokType
	val int64
}

var (
	errAPK         = errors.New("not an apk version")
	apkPreSuffixes = [...]string{"alpha", "beta", "pre", "rc"}
	apkPostSuffix  = [...]string{"cvs", "svn", "git", "hg", "p"}
)

func parseAPK(s string) (ordered, error) {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '~'); i >= 0 {
		rest := ""
		if j := strings.Index(s[i:], "-r"); j >= 0 {
			rest = s[i+j:]
		}
		s = s[:i] + rest
	}
	if s == "" || !isDigit(s[0]) {
		return nil, errAPK
	}
	var toks []apkTok
	typ := apkDigit
	for {
		var v int64
		typ, v, s = apkGetToken(typ, s)
		toks = append(toks, apkTok{typ: typ, val: v})
		// Like apk-tools, order what comes before a malformed part and
		// stop there: the secdb has versions such as "1.11-20-r0".
		if typ == apkEnd || typ == apkInvalid {
			return apk{toks: toks}, nil
		}
		typ = apkNextType(typ, &s)
	}
}

// apkGetToken reads the value of a token of type typ. It returns the type
// actually read (a run of leading zeros turns into a digit token) and the
// rest of the string.
func apkGetToken(typ apkTokType, s string) (apkTokType, int64, string) {
	if s == "" {
		return apkEnd, 0, s
	}
	switch typ {
	case apkDigitOrZero:
		i := 0
		for i < len(s) && s[i] == '0' {
			i++
		}
		// Only zeros that lead more digits ("1.02") get the special
		// treatment; a plain "0" component is the number zero.
		if i > 0 && i < len(s) && isDigit(s[i]) {
			// The zeros are a token of their own (valued by their
			// count); the digits after them are the next token.
			return apkDigitOrZero, int64(-i), "\x00" + s[i:]
		}
		fallthrough
	case apkDigit, apkSuffixNo, apkRevisionNo:
		i := 0
		var v int64
		for i < len(s) && isDigit(s[i]) {
			v = v*10 + int64(s[i]-'0')
			i++
		}
		if i >= 18 {
			return apkInvalid, 0, s
		}
		return typ, v, s[i:]
	case apkLetter:
		return typ, int64(s[0]), s[1:]
	case apkSuffix:
		for k, suf := range apkPreSuffixes {
			if strings.HasPrefix(s, suf) {
				return typ, int64(k - len(apkPreSuffixes)), s[len(suf):]
			}
		}
		for k, suf := range apkPostSuffix {
			if strings.HasPrefix(s, suf) {
				return typ, int64(k), s[len(suf):]
			}
		}
	}
	return apkInvalid, 0, s
}

// apkNextType reads the separator after a token and says what comes next.
func apkNextType(typ apkTokType, s *string) apkTokType {
	str := *s
	n := apkInvalid
	switch {
	case str == "":
		return apkEnd
	case str[0] == 0: // digits after leading zeros
		*s = str[1:]
		return apkDigit
	case (typ == apkDigit || typ == apkDigitOrZero) && 'a' <= str[0] && str[0] <= 'z':
		n = apkLetter
	case typ == apkLetter && isDigit(str[0]):
		n = apkDigit
	case typ == apkSuffix && isDigit(str[0]):
		n = apkSuffixNo
	default:
		switch str[0] {
		case '.':
			n = apkDigitOrZero
		case '_':
			n = apkSuffix
		case '-':
			if len(str) > 1 && str[1] == 'r' {
				n = apkRevisionNo
				str = str[1:]
			}
		}
		str = str[1:]
	}
	*s = str
	if n < typ && !(n == apkDigitOrZero && typ == apkDigit ||
		n == apkSuffix && typ == apkSuffixNo ||
		n == apkDigit && typ == apkLetter) {
		n = apkInvalid
	}
	return n
}

func (v apk) compare(o ordered) int {
	a, b := v.toks, o.(apk).toks
	k := 0
	var av, bv int64
	for a[k].typ == b[k].typ && a[k].typ != apkEnd && a[k].typ != apkInvalid && av == bv {
		av, bv = a[k].val, b[k].val
		k++
	}
	switch {
	case av < bv:
		return -1
	case av > bv:
		return 1
	}
	at, bt := a[k].typ, b[k].typ
	if at == bt {
		return 0
	}
	// Equal so far: the longer version is greater, unless what it has
	// more is a pre-release suffix.
	if at == apkSuffix && a[k].val < 0 {
		return -1
	}
	if bt == apkSuffix && b[k].val < 0 {
		return 1
	}
	return cmpInt(int(bt), int(at))
}

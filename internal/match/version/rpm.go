package version

import "strings"

// rpm orders RPM versions, [epoch:]version[-release], as rpm's own
// rpmverCmp does.
//
// Hand-written rather than osv-scalibr's semantic.RedHatVersion, which
// disagrees with rpm on TestRPMAgainstRPM pairs (v0.5.3): it splits the
// release at the first '-' where rpm takes the last one, and it allocates
// ten times a comparison (BenchmarkCompare/Red_Hat: 297 ns).
type rpm struct {
	epoch, version, release string
}

func parseRPM(s string) (ordered, error) {
	s = strings.TrimSpace(s)
	var v rpm
	// An epoch is the run of digits before a colon at the very start;
	// anything else before a colon belongs to the version.
	i := 0
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	if i < len(s) && s[i] == ':' {
		v.epoch, s = s[:i], s[i+1:]
	}
	if v.epoch == "" {
		v.epoch = "0"
	}
	if j := strings.LastIndexByte(s, '-'); j >= 0 {
		v.version, v.release = s[:j], s[j+1:]
	} else {
		v.version = s
	}
	return v, nil
}

func (v rpm) compare(o ordered) int {
	w := o.(rpm)
	if c := rpmvercmp(v.epoch, w.epoch); c != 0 {
		return c
	}
	if c := rpmvercmp(v.version, w.version); c != 0 {
		return c
	}
	// A missing release compares as empty, so it orders before every
	// release of the same version, as rpm.vercmp (rpm 4.18) orders them.
	return rpmvercmp(v.release, w.release)
}

func isAlnum(c byte) bool { return isDigit(c) || isLetter(c) }

// rpmvercmp is rpm's segment comparison: separators are skipped, '~' sorts
// before everything (even the end), '^' after the end but before
// anything else, digit runs compare as numbers and beat letter runs,
// letter runs compare bytewise.
func rpmvercmp(a, b string) int {
	if a == b {
		return 0
	}
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		for i < len(a) && !isAlnum(a[i]) && a[i] != '~' && a[i] != '^' {
			i++
		}
		for j < len(b) && !isAlnum(b[j]) && b[j] != '~' && b[j] != '^' {
			j++
		}
		at, bt := i < len(a) && a[i] == '~', j < len(b) && b[j] == '~'
		if at || bt {
			if !at {
				return 1
			}
			if !bt {
				return -1
			}
			i++
			j++
			continue
		}
		ac, bc := i < len(a) && a[i] == '^', j < len(b) && b[j] == '^'
		if ac || bc {
			switch {
			case i >= len(a):
				return -1
			case j >= len(b):
				return 1
			case !ac:
				return 1
			case !bc:
				return -1
			}
			i++
			j++
			continue
		}
		if i >= len(a) || j >= len(b) {
			break
		}
		si, sj := i, j
		num := isDigit(a[i])
		if num {
			for i < len(a) && isDigit(a[i]) {
				i++
			}
			for j < len(b) && isDigit(b[j]) {
				j++
			}
		} else {
			for i < len(a) && isLetter(a[i]) {
				i++
			}
			for j < len(b) && isLetter(b[j]) {
				j++
			}
		}
		if sj == j {
			// b has a segment of the other kind here: numbers win.
			if num {
				return 1
			}
			return -1
		}
		x, y := a[si:i], b[sj:j]
		if num {
			x, y = strings.TrimLeft(x, "0"), strings.TrimLeft(y, "0")
			if c := cmpInt(len(x), len(y)); c != 0 {
				return c
			}
		}
		if c := strings.Compare(x, y); c != 0 {
			return c
		}
	}
	switch {
	case i >= len(a) && j >= len(b):
		return 0
	case i >= len(a):
		return -1
	}
	return 1
}

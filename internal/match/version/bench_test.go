package version

import (
	"testing"
)

// benchPairs are typical comparisons of each scheme: an installed version
// against an advisory's fixed version.
var benchPairs = []struct {
	eco  string
	a, b string
}{
	{"Debian:12", "1:2.38.1-5+deb12u3", "1:2.38.1-5+deb12u1"},
	{"Red Hat:9", "1:3.0.7-27.el9_4.alma.1", "1:3.0.7-28.el9_4"},
	{"Alpine:v3.18", "1.1.1d-r2", "1.1.1d-r0"},
	{"npm", "4.17.15", "4.17.21"},
	{"Go", "v0.0.0-20210921155107-089bfa567519", "0.1.0"},
	{"PyPI", "2.28.1", "2.31.0rc1"},
	{"Maven", "2.14.1", "2.15.0"},
	{"NuGet", "4.3.0", "4.3.1"},
	{"RubyGems", "1.13.6", "1.13.10"},
	{"Packagist", "v5.4.20", "5.4.21"},
}

func BenchmarkParse(b *testing.B) {
	for _, p := range benchPairs {
		b.Run(p.eco, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Parse(p.eco, p.a); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkCompare measures comparing two parsed versions: the matcher
// parses each version once and compares many times.
func BenchmarkCompare(b *testing.B) {
	for _, p := range benchPairs {
		b.Run(p.eco, func(b *testing.B) {
			va, err := Parse(p.eco, p.a)
			if err != nil {
				b.Fatal(err)
			}
			vb, err := Parse(p.eco, p.b)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				va.Compare(vb)
			}
		})
	}
}

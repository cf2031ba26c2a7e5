package match

import (
	"context"
	"strings"
	"testing"

	"github.com/drydockhq/drydock/internal/index"
	"github.com/drydockhq/drydock/internal/match/version"
	"github.com/drydockhq/drydock/internal/vulndb"
)

// fuzzEcosystems are the ecosystems FuzzMatchRange picks from.
var fuzzEcosystems = []struct {
	ecosystem string
	typ       index.Type
}{
	{"npm", index.TypeNPM}, {"PyPI", index.TypePython}, {"Go", index.TypeGoBinary}, {"Debian:12", index.TypeDpkg},
	{"AlmaLinux:9", index.TypeRPM}, {"Alpine:v3.18", index.TypeApk}, {"Maven", index.TypeJava}, {"crates.io", index.TypeCargo},
}

// parseEvents reads "i:1.0 f:2.0 l:3.0 x:4.0" (introduced, fixed,
// last_affected, limit), in any order, as feeds may publish them.
func parseEvents(s string) []vulndb.Event {
	var out []vulndb.Event
	for _, f := range strings.Fields(s) {
		kind, v, ok := strings.Cut(f, ":")
		if !ok || v == "" {
			continue
		}
		switch kind {
		case "i":
			out = append(out, vulndb.Event{Introduced: v})
		case "f":
			out = append(out, vulndb.Event{Fixed: v})
		case "l":
			out = append(out, vulndb.Event{LastAffected: v})
		case "x":
			out = append(out, vulndb.Event{Limit: v})
		}
	}
	return out
}

// naiveAffected is OSV's range evaluation written out plainly, as the
// schema's pseudo-code has it: a version at or above every limit is
// outside; otherwise the other events, sorted by version (introduced "0"
// first; at one version the introduced before the others), each in turn.
func naiveAffected(s version.Scheme, v version.Version, events []vulndb.Event) (bool, bool) {
	type ev struct {
		kind int // 0 introduced, 1 fixed, 2 last_affected, 3 limit
		zero bool
		v    version.Version
	}
	var evs []ev
	for _, e := range events {
		x := ev{}
		raw := e.Introduced
		switch {
		case e.Fixed != "":
			x.kind, raw = 1, e.Fixed
		case e.LastAffected != "":
			x.kind, raw = 2, e.LastAffected
		case e.Limit != "":
			x.kind, raw = 3, e.Limit
		}
		if x.kind == 0 && raw == "0" {
			x.zero = true
		} else if x.kind == 3 && raw == "*" {
			continue
		} else {
			pv, err := s.Parse(raw)
			if err != nil {
				return false, false
			}
			x.v = pv
		}
		evs = append(evs, x)
	}
	// Insertion sort, stable.
	for i := 1; i < len(evs); i++ {
		for j := i; j > 0; j-- {
			a, b := evs[j-1], evs[j]
			less := false
			switch {
			case a.zero || b.zero:
				less = b.zero && !a.zero
			default:
				c := b.v.Compare(a.v)
				less = c < 0 || c == 0 && b.kind < a.kind
			}
			if !less {
				break
			}
			evs[j-1], evs[j] = b, a
		}
	}
	limits, below := 0, false
	for _, e := range evs {
		if e.kind == 3 {
			limits++
			below = below || v.Compare(e.v) < 0
		}
	}
	if limits > 0 && !below {
		return false, true
	}
	in := false
	for _, e := range evs {
		switch e.kind {
		case 0:
			if e.zero || v.Compare(e.v) >= 0 {
				in = true
			}
		case 1:
			if v.Compare(e.v) >= 0 {
				in = false
			}
		case 2:
			if v.Compare(e.v) > 0 {
				in = false
			}
		}
	}
	return in, true
}

// FuzzMatchRange matches one package against one advisory range of
// arbitrary events (feeds are untrusted input) and checks the verdict
// against the plain evaluation above; it must never panic.
func FuzzMatchRange(f *testing.F) {
	// Seeds: ranges and versions of real records (Go, PyPI, Alpine,
	// AlmaLinux, RustSec fixtures).
	f.Add(uint8(2), "v5.16.0", "i:0 f:5.16.5")
	f.Add(uint8(2), "v0.22.0", "i:0 f:0.23.0 i:1.0.0-0 f:1.2.0")
	f.Add(uint8(1), "2.10", "f:3.1.3 i:3.0.0 f:2.11.3 i:0")
	f.Add(uint8(5), "1.1.1c-r0", "i:0 f:1.1.1d-r0")
	f.Add(uint8(4), "1:16.14.0-3.el8", "i:0 f:1:16.17.1-1.el8")
	f.Add(uint8(7), "0.6.13", "i:0.6.3 l:0.6.13 i:1.0.0 x:1.6.1")
	f.Add(uint8(3), "1.2.1-2.2+wheezy2", "i:0 f:1.2.1-2.2+wheezy3")
	f.Add(uint8(6), "2.14.1", "i:2.13.0 f:2.15.0 x:*")
	f.Fuzz(func(t *testing.T, eco uint8, installed, events string) {
		e := fuzzEcosystems[int(eco)%len(fuzzEcosystems)]
		evs := parseEvents(events)
		if len(evs) == 0 || len(evs) > 16 {
			return
		}
		adv := &vulndb.Advisory{ID: "FUZZ", Affected: []vulndb.Affected{{Ecosystem: e.ecosystem, Package: "p", Ranges: []vulndb.Range{{Type: vulndb.RangeEcosystem, Events: evs}}}}}
		p := index.Package{Type: e.typ, Ecosystem: e.ecosystem, Name: "p", SourceName: "p", Version: installed}
		res, err := New(newMemDB(adv)).Match(context.Background(), []index.Package{p})
		if err != nil {
			t.Fatal(err)
		}
		scheme, _ := version.SchemeOf(e.ecosystem)
		v, err := scheme.Parse(installed)
		if err != nil || installed == "" {
			if len(res.Findings) != 0 {
				t.Fatalf("unparsable version %q matched", installed)
			}
			return
		}
		want, ok := naiveAffected(scheme, v, evs)
		if !ok {
			if len(res.Findings) != 0 || len(res.Warnings) == 0 {
				t.Fatalf("range with an unparsable version: findings %d, warnings %v", len(res.Findings), res.Warnings)
			}
			return
		}
		if got := len(res.Findings) == 1; got != want {
			t.Fatalf("%s %q in %v: affected %v, plain evaluation says %v", e.ecosystem, installed, evs, got, want)
		}
	})
}

package match

import (
	"archive/zip"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/drydockhq/drydock/internal/index"
	"github.com/drydockhq/drydock/internal/testutil"
	"github.com/drydockhq/drydock/internal/vulndb"
)

// realRecords reads the package names and ranges of real OSV records.
func realRecords(b *testing.B, rel string) []vulndb.Affected {
	b.Helper()
	zr, err := zip.OpenReader(testutil.Fixture(b, rel))
	if err != nil {
		b.Fatal(err)
	}
	defer zr.Close()
	var out []vulndb.Affected
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			b.Fatal(err)
		}
		var rec struct {
			Affected []struct {
				Package  struct{ Ecosystem, Name string }
				Ranges   []vulndb.Range
				Versions []string
			}
		}
		err = json.NewDecoder(rc).Decode(&rec)
		rc.Close()
		if err != nil {
			continue
		}
		for _, a := range rec.Affected {
			out = append(out, vulndb.Affected{Ecosystem: a.Package.Ecosystem, Package: a.Package.Name, Ranges: a.Ranges, Versions: a.Versions})
		}
	}
	return out
}

// BenchmarkMatch1000x100000 matches 1,000 packages against 100,000
// advisories built from the real Go, crates.io, PyPI and AlmaLinux records
// (their names and ranges, replicated under suffixed names to reach the
// size), the inventory being real names at versions drawn from the ranges.
func BenchmarkMatch1000x100000(b *testing.B) {
	var real []vulndb.Affected
	for _, rel := range []string{"feeds/osv/Go/all.zip", "feeds/osv/crates.io/all.zip", "feeds/osv/PyPI/sample.zip", "feeds/osv/AlmaLinux/sample.zip"} {
		real = append(real, realRecords(b, rel)...)
	}
	r := rand.New(rand.NewPCG(1, 2))
	db := memDB{}
	var advs []*vulndb.Advisory
	for i := range 100_000 {
		aff := real[i%len(real)]
		if i >= len(real) { // replicate under another name
			aff.Package = fmt.Sprintf("%s-%d", aff.Package, i/len(real))
		}
		adv := &vulndb.Advisory{ID: fmt.Sprintf("ADV-%d", i), Affected: []vulndb.Affected{aff}}
		advs = append(advs, adv)
		k := vulndb.NewKey(aff.Ecosystem, aff.Package)
		db[k] = append(db[k], adv)
	}
	types := map[string]index.Type{"Go": index.TypeGoBinary, "crates.io": index.TypeCargo, "PyPI": index.TypePython}
	var pkgs []index.Package
	for len(pkgs) < 1000 {
		aff := advs[r.IntN(len(advs))].Affected[0]
		v := ""
		for _, rg := range aff.Ranges {
			for _, e := range rg.Events {
				if e.Fixed != "" {
					v = e.Fixed
				}
			}
		}
		if v == "" {
			continue
		}
		typ, ok := types[aff.Ecosystem]
		if !ok {
			typ = index.TypeRPM
		}
		if typ == index.TypeGoBinary {
			v = "v" + v
		}
		pkgs = append(pkgs, index.Package{Type: typ, Ecosystem: aff.Ecosystem, Name: aff.Package, Version: v})
	}
	m := New(db)
	ctx := context.Background()
	warm, err := m.Match(ctx, pkgs) // warms the parse cache
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(len(warm.Findings)), "findings")
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := m.Match(ctx, pkgs); err != nil {
			b.Fatal(err)
		}
	}
}

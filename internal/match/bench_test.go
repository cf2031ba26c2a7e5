package match

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/drydockhq/drydock/internal/index"
	"github.com/drydockhq/drydock/internal/index/dpkg"
	"github.com/drydockhq/drydock/internal/testutil"
	"github.com/drydockhq/drydock/internal/vulndb"
	"github.com/drydockhq/drydock/internal/vulndb/feeds/alpine"
	"github.com/drydockhq/drydock/internal/vulndb/osv"
)

// benchAdvisories reads the real OSV and secdb fixtures: the whole Go and
// RustSec databases, the PyPI and AlmaLinux samples, Alpine 3.10's secdb.
func benchAdvisories(tb testing.TB) []*vulndb.Advisory {
	tb.Helper()
	ctx := context.Background()
	var out []*vulndb.Advisory
	add := func(fd *vulndb.FeedData) {
		for i := range fd.Advisories {
			out = append(out, &fd.Advisories[i])
		}
	}
	for _, rel := range []string{"feeds/osv/Go/all.zip", "feeds/osv/crates.io/all.zip", "feeds/osv/PyPI/sample.zip", "feeds/osv/AlmaLinux/sample.zip"} {
		fd, err := osv.ReadPath(ctx, testutil.Fixture(tb, rel), "osv", osv.DefaultLimits)
		if err != nil {
			tb.Fatal(err)
		}
		add(fd)
	}
	for _, rel := range []string{"feeds/alpine-secdb/v3.10/main.yaml", "feeds/alpine-secdb/v3.10/community.yaml"} {
		f, err := os.Open(testutil.Fixture(tb, rel))
		if err != nil {
			tb.Fatal(err)
		}
		fd, err := alpine.Parse(f, "alpine")
		f.Close()
		if err != nil {
			tb.Fatal(err)
		}
		add(fd)
	}
	return out
}

// benchDB returns n advisories: the real ones, then copies of them about
// packages renamed "NAME~rK" (their ranges, versions and severities
// unchanged) until there are n.
func benchDB(tb testing.TB, n int) (real, all []*vulndb.Advisory) {
	real = benchAdvisories(tb)
	all = slices.Clone(real)
	for k := 1; len(all) < n; k++ {
		for _, a := range real {
			if len(all) == n {
				break
			}
			c := *a
			c.ID = fmt.Sprintf("%s~r%d", a.ID, k)
			c.Affected = slices.Clone(a.Affected)
			for i := range c.Affected {
				c.Affected[i].Package = fmt.Sprintf("%s~r%d", c.Affected[i].Package, k)
			}
			all = append(all, &c)
		}
	}
	return real, all
}

// benchTypes maps the benchmark's ecosystems to the package type a
// cataloger reports.
func benchType(ecosystem string) index.Type {
	base, _, _ := strings.Cut(ecosystem, ":")
	switch base {
	case "Go":
		return index.TypeGoBinary
	case "crates.io":
		return index.TypeCargo
	case "PyPI":
		return index.TypePython
	case "Alpine":
		return index.TypeApk
	}
	return index.TypeRPM
}

// benchInventory makes an inventory of n packages shaped like a real
// image's (see BenchmarkMatch1000x100000).
func benchInventory(tb testing.TB, n int, all []*vulndb.Advisory) []index.Package {
	tb.Helper()
	f, err := os.Open(testutil.Fixture(tb, "rootfs/bookworm-minbase.dpkg-status"))
	if err != nil {
		tb.Fatal(err)
	}
	entries, err := dpkg.Parse(f)
	f.Close()
	if err != nil {
		tb.Fatal(err)
	}
	var pkgs []index.Package
	for _, e := range entries {
		p := e.Package("var/lib/dpkg/status")
		p.Ecosystem = "Debian:12"
		pkgs = append(pkgs, p)
	}
	pkgs = append(pkgs, index.Package{Type: index.TypeGoBinary, Ecosystem: "Go", Name: "stdlib", Version: "go1.22.1", Path: "app/server"})

	// Every package name the database knows, with the versions its
	// records name (introduced, fixed, last_affected, listed).
	type named struct {
		key      vulndb.Key
		ecosys   string
		name     string
		versions []string
		advs     int
	}
	byKey := map[vulndb.Key]*named{}
	var keys []*named
	for _, a := range all {
		for _, af := range a.Affected {
			k := af.Key()
			if k.Package == "stdlib" {
				continue
			}
			e := byKey[k]
			if e == nil {
				e = &named{key: k, ecosys: af.Ecosystem, name: af.Package}
				byKey[k] = e
				keys = append(keys, e)
			}
			e.advs++
			for _, r := range af.Ranges {
				for _, ev := range r.Events {
					for _, v := range []string{ev.Introduced, ev.Fixed, ev.LastAffected} {
						if v != "" && v != "0" && !slices.Contains(e.versions, v) {
							e.versions = append(e.versions, v)
						}
					}
				}
			}
			for _, v := range af.Versions {
				if !slices.Contains(e.versions, v) {
					e.versions = append(e.versions, v)
				}
			}
		}
	}
	keys = slices.DeleteFunc(keys, func(e *named) bool { return len(e.versions) == 0 })
	r := rand.New(rand.NewPCG(1, 2))
	pkgOf := func(e *named, name string) index.Package {
		v := e.versions[r.IntN(len(e.versions))]
		typ := benchType(e.ecosys)
		if typ == index.TypeGoBinary {
			v = "v" + v
		}
		p := index.Package{Type: typ, Ecosystem: e.ecosys, Name: name, Version: v, Path: "app/" + string(typ)}
		if typ == index.TypeApk {
			p.SourceName = name
		}
		return p
	}
	// The real names with the most advisories, as real images have a
	// few.
	heavy := slices.DeleteFunc(slices.Clone(keys), func(e *named) bool { return strings.Contains(e.name, "~r") })
	slices.SortStableFunc(heavy, func(a, b *named) int { return b.advs - a.advs })
	used := map[vulndb.Key]bool{}
	for _, e := range heavy[:5] {
		pkgs = append(pkgs, pkgOf(e, e.name))
		used[e.key] = true
	}
	// The rest: distinct names, one in five with advisories; the others
	// at names the database does not have (most packages of an image have
	// no advisory).
	for len(pkgs) < n {
		e := keys[r.IntN(len(keys))]
		if used[e.key] {
			continue
		}
		used[e.key] = true
		name := e.name
		if r.IntN(5) != 0 {
			name += "-nodb"
		}
		pkgs = append(pkgs, pkgOf(e, name))
	}
	return pkgs
}

// BenchmarkMatch1000x100000 matches an inventory of 1,000 packages against
// 100,000 advisories in the database's lookup index (vulndb.Snapshot):
// the real Go, RustSec, PyPI, AlmaLinux and Alpine 3.10
// records, copied under renamed packages to reach the size. The inventory
// is shaped like a real image's: the 88 packages of a real Debian bookworm
// (no Debian advisories in this database: every lookup misses), the Go
// standard library at go1.22.1 and the five names with the most
// advisories, then distinct names drawn uniformly from the database's
// names, one in five as named there and the others renamed out of it,
// each at a version its records name (so about half of those are
// affected).
func BenchmarkMatch1000x100000(b *testing.B) {
	_, all := benchDB(b, 100_000)
	pkgs := benchInventory(b, 1000, all)
	db := vulndb.NewSnapshot(1, all, nil)
	m := New(db)
	ctx := context.Background()
	warm, err := m.Match(ctx, pkgs) // parses the ranges it meets
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu := cpuTime(b)
	for b.Loop() {
		if _, err := m.Match(ctx, pkgs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(cpuTime(b)-cpu)/float64(b.N), "cpu-ns/op")
	b.ReportMetric(float64(len(warm.Findings)), "findings")
	b.ReportMetric(float64(len(warm.Warnings)), "warnings")
}

// cpuTime is the CPU time the process has used (user and system, every
// thread): on a shared, loaded machine it says what an operation costs
// better than wall time does.
func cpuTime(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkMatchCold is the first match of a generation: the ranges the
// inventory meets are parsed on the way.
func BenchmarkMatchCold(b *testing.B) {
	_, all := benchDB(b, 100_000)
	pkgs := benchInventory(b, 1000, all)
	db := vulndb.NewSnapshot(1, all, nil)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := New(db).Match(ctx, pkgs); err != nil {
			b.Fatal(err)
		}
	}
}

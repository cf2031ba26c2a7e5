package scan

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/mod/semver"

	"github.com/drydockhq/drydock/internal/index"
	"github.com/drydockhq/drydock/internal/store"
	"github.com/drydockhq/drydock/internal/store/storetest"
)

// BenchmarkReevaluate measures continuous re-evaluation of the real Go
// delta (the 521 changes between the two Go snapshots) over a registry of
// synthetic images made of real module names and versions: each image
// holds 100 Go modules named by the older snapshot's advisories that the
// delta leaves alone, at their latest fixed version (as a maintained
// image would), and the touched images also 1 to 3 modules at versions
// the delta's advisories affect. It reports, per re-evaluation: the time, the
// time of the baseline (a full re-scan of every continuous image from its
// stored inventory, what Drydock did before), their ratio, and the bytes
// allocated, which must not grow with the images the delta does not touch
// (compare total=2500 with total=10000 at the same touched count), and the
// CPU time of both.
//
// Every case runs on SQLite; the 2,500-image case on PostgreSQL too.
//
//	go test -run '^$' -bench Reevaluate -benchtime 1x ./internal/scan
func BenchmarkReevaluate(b *testing.B) {
	d := loadGoDelta(b)
	for _, c := range []struct {
		total, touched int
		postgres       bool
	}{{2500, 2000, true}, {10000, 2000, false}, {10000, 10000, false}} {
		b.Run(fmt.Sprintf("images=%d/touched=%d", c.total, c.touched), func(b *testing.B) {
			b.Run("db=sqlite", func(b *testing.B) { benchReevaluate(b, d, storetest.SQLite(b), c.total, c.touched) })
			if c.postgres {
				b.Run("db=postgres", func(b *testing.B) { benchReevaluate(b, d, storetest.Postgres(b), c.total, c.touched) })
			}
		})
	}
}

func benchReevaluate(b *testing.B, d *goDelta, db *store.DB, total, touched int) {
	if b.N > 1 {
		b.Skip("a generation applies once: run with -benchtime 1x")
	}
	ctx := context.Background()
	quiet := patchedModules(d)
	if len(quiet) < 100 {
		b.Fatalf("only %d modules the delta leaves alone", len(quiet))
	}
	rng := rand.New(rand.NewPCG(1, 2))
	e := newReevalEnv(b, db, d.oldFeed)
	if _, err := e.svc.PutRegistryScanningConfiguration(ctx, Config{ScanType: Enhanced}); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	const perTx = 500
	for lo := 0; lo < total; lo += perTx {
		err := db.InTx(ctx, func(tx *store.Tx) error {
			for i := lo; i < min(lo+perTx, total); i++ {
				mods := make([]goModule, 0, 103)
				for _, j := range rng.Perm(len(quiet))[:100] {
					mods = append(mods, quiet[j])
				}
				if i < touched {
					for range 1 + rng.IntN(3) {
						mods = append(mods, d.added[rng.IntN(len(d.added))])
					}
				}
				dg := digestN(i)
				inv := &index.Inventory{Name: dg, Digest: dg, Platform: "linux/amd64", Packages: goPackages(mods, "app/server", dg)}
				if err := storeInventoryTx(ctx, tx, dg, e.svc.indexer.CatalogerSet(), inv, e.clock.Now()); err != nil {
					return err
				}
				repo := fmt.Sprintf("team/app-%d", i%50)
				if err := e.svc.startTx(ctx, tx, repo, dg, payload{ScanType: Enhanced, Frequency: ContinuousScan, Trigger: "push"}, e.clock.Now()); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	e.drain(b)
	if _, err := e.svc.Reevaluate(ctx); err != nil { // sets the cursor
		b.Fatal(err)
	}
	b.Logf("set-up: %d images scanned in %v", total, time.Since(start))
	e.clock.Add(time.Hour)
	e.apply(b, d.newFeed)

	b.ResetTimer()
	var st ReevalStats
	var ms0, ms1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms0)
	if p := os.Getenv("REEVAL_CPUPROFILE"); p != "" {
		f, err := os.Create(p)
		if err != nil {
			b.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			b.Fatal(err)
		}
		defer f.Close()
	}
	cpu0 := cpuTime()
	for range b.N {
		var err error
		if st, err = e.svc.Reevaluate(ctx); err != nil {
			b.Fatal(err)
		}
	}
	cpu := cpuTime() - cpu0
	runtime.ReadMemStats(&ms1)
	b.StopTimer()
	pprof.StopCPUProfile()
	reeval := st.Duration
	// A few patched modules share a key with a changed advisory in ways
	// the test's estimate (revision dates) does not see.
	if st.Images < touched || st.Evaluated != st.Images || st.Images > touched+touched/4+(total-touched)/4 {
		b.Fatalf("re-evaluated %+v; %d images hold a module an added advisory affects", st, touched)
	}

	// The baseline: every continuous image matched again in full, by as
	// many scan workers as there are CPUs (drydock serve's default,
	// --scan-workers 2, on this machine).
	t0, fullCPU0 := time.Now(), cpuTime()
	n, err := e.svc.RescanContinuous(ctx)
	if err != nil || n != total {
		b.Fatalf("full re-scan queued %d of %d: %v", n, total, err)
	}
	e.drainOn(b, runtime.GOMAXPROCS(0))
	full, fullCPU := time.Since(t0), cpuTime()-fullCPU0
	b.Logf("re-evaluation %v (%+v); full re-scan of %d images %v", reeval, st, total, full)
	b.ReportMetric(reeval.Seconds(), "reeval-s")
	b.ReportMetric(cpu.Seconds(), "reeval-cpu-s")
	b.ReportMetric(full.Seconds(), "full-rescan-s")
	b.ReportMetric(fullCPU.Seconds(), "full-rescan-cpu-s")
	b.ReportMetric(full.Seconds()/reeval.Seconds(), "x-faster")
	b.ReportMetric(float64(ms1.TotalAlloc-ms0.TotalAlloc)/float64(b.N)/(1<<20), "MiB-alloc/op")
	b.ReportMetric(float64(st.Opened), "opened")
}

// patchedModules returns the modules the older snapshot's advisories name
// and the delta leaves alone, each at the highest version a range of
// theirs says fixes it.
func patchedModules(d *goDelta) []goModule {
	best := map[string]string{}
	for i := range d.oldFeed.Advisories {
		for _, af := range d.oldFeed.Advisories[i].Affected {
			if d.changed[af.Package] || af.Package == "stdlib" || af.Package == "toolchain" {
				continue
			}
			for _, r := range af.Ranges {
				for _, e := range r.Events {
					if v := "v" + e.Fixed; e.Fixed != "" && semver.IsValid(v) && semver.Compare(v, best[af.Package]) > 0 {
						best[af.Package] = v
					}
				}
			}
		}
	}
	out := make([]goModule, 0, len(best))
	for p, v := range best {
		out = append(out, goModule{p, v})
	}
	slices.SortFunc(out, func(a, b goModule) int { return strings.Compare(a.path, b.path) })
	return out
}

// cpuTime is the process's user and system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

package vulndb_test

import (
	"encoding/json"
	"fmt"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/drydockhq/drydock/internal/vulndb"
)

// realAdvisories returns the advisories of the real OSV fixture feeds
// (Go, crates.io, PyPI sample, AlmaLinux sample: 6,047 records).
func realAdvisories(b *testing.B) []vulndb.Advisory {
	b.Helper()
	var out []vulndb.Advisory
	for _, f := range [][2]string{
		{"feeds/osv/Go/all.zip", "osv-Go"},
		{"feeds/osv/crates.io/all.zip", "osv-crates.io"},
		{"feeds/osv/PyPI/sample.zip", "osv-PyPI"},
		{"feeds/osv/AlmaLinux/sample.zip", "osv-AlmaLinux"},
	} {
		out = append(out, readOSV(b, f[0], f[1]).Advisories...)
	}
	return out
}

// syntheticDocs makes n advisory documents from the real ones: copy c of a
// real advisory gets the id and package names suffixed with c, so every
// copy has keys of its own, as distinct real advisories would.
func syntheticDocs(b *testing.B, real []vulndb.Advisory, n int) [][]byte {
	b.Helper()
	docs := make([][]byte, 0, n)
	for c := 0; len(docs) < n; c++ {
		for _, a := range real {
			if len(docs) == n {
				break
			}
			a.ID = fmt.Sprintf("%s-%d", a.ID, c)
			aff := make([]vulndb.Affected, len(a.Affected))
			copy(aff, a.Affected)
			for i := range aff {
				aff[i].Package = fmt.Sprintf("%s-%d", aff[i].Package, c)
			}
			a.Affected = aff
			doc, err := json.Marshal(a)
			if err != nil {
				b.Fatal(err)
			}
			docs = append(docs, doc)
		}
	}
	return docs
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// BenchmarkIndexMemory builds the index of 100,000 advisories decoded from
// JSON documents (as the store hands them over) and reports the heap the
// snapshot holds.
func BenchmarkIndexMemory(b *testing.B) {
	docs := syntheticDocs(b, realAdvisories(b), 100_000)
	b.ResetTimer()
	for b.Loop() {
		before := heapInUse()
		advs := make([]*vulndb.Advisory, len(docs))
		for i, d := range docs {
			advs[i] = new(vulndb.Advisory)
			if err := json.Unmarshal(d, advs[i]); err != nil {
				b.Fatal(err)
			}
		}
		s := vulndb.NewSnapshot(1, advs, nil)
		advs = nil
		after := heapInUse()
		b.ReportMetric(float64(after-before)/(1<<20), "MB-heap")
		b.ReportMetric(float64(s.Len()), "advisories")
		b.ReportMetric(float64(s.Keys()), "keys")
		runtime.KeepAlive(s)
	}
}

// BenchmarkLookup looks up package keys of a 100,000-advisory index: keys
// that exist (cycling through all of them) and keys that do not.
func BenchmarkLookup(b *testing.B) {
	docs := syntheticDocs(b, realAdvisories(b), 100_000)
	advs := make([]*vulndb.Advisory, len(docs))
	var keys []vulndb.Key
	for i, d := range docs {
		advs[i] = new(vulndb.Advisory)
		if err := json.Unmarshal(d, advs[i]); err != nil {
			b.Fatal(err)
		}
		keys = append(keys, advs[i].Keys()...)
	}
	s := vulndb.NewSnapshot(1, advs, nil)
	missing := make([]vulndb.Key, len(keys))
	for i, k := range keys {
		missing[i] = vulndb.Key{Ecosystem: k.Ecosystem, Package: k.Package + "-absent"}
	}
	b.Run("hit", func(b *testing.B) {
		n := 0
		i := 0
		start := cpuNow()
		defer func() { reportCPU(b, start, b.N) }()
		for b.Loop() {
			n += len(s.Lookup(keys[i]))
			i++
			if i == len(keys) {
				i = 0
			}
		}
		if n == 0 {
			b.Fatal("no matches")
		}
	})
	b.Run("miss", func(b *testing.B) {
		i := 0
		start := cpuNow()
		defer func() { reportCPU(b, start, b.N) }()
		for b.Loop() {
			if len(s.Lookup(missing[i])) != 0 {
				b.Fatal("match for an absent key")
			}
			i++
			if i == len(missing) {
				i = 0
			}
		}
	})
	b.Run("hit-parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				_ = s.Lookup(keys[i])
				i++
				if i == len(keys) {
					i = 0
				}
			}
		})
	})
}

// cpuNow is the CPU time the process has used. Benchmarks report CPU time
// per operation beside wall time: on a shared, oversubscribed machine wall
// time counts the time other processes held the CPU.
func cpuNow() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU reports the CPU time per operation since start.
func reportCPU(b *testing.B, start time.Duration, ops int) {
	if ops > 0 {
		b.ReportMetric(float64(cpuNow()-start)/float64(ops), "cpu-ns/op")
	}
}

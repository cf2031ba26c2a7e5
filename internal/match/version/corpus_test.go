package version

import (
	"archive/tar"
	"archive/zip"
	"bufio"
	"compress/gzip"
	"encoding/json"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/drydockhq/drydock/internal/testutil"
)

// osvVersions returns every version string named in the ranges and version
// lists of the OSV records in a fixture zip.
func osvVersions(t testing.TB, rel string) []string {
	t.Helper()
	zr, err := zip.OpenReader(testutil.Fixture(t, rel))
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	set := map[string]bool{}
	for _, f := range zr.File {
		if !strings.HasSuffix(f.Name, ".json") {
			continue
		}
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		var rec struct {
			Affected []struct {
				Ranges []struct {
					Type   string
					Events []map[string]string
				}
				Versions []string
			}
		}
		err = json.NewDecoder(rc).Decode(&rec)
		rc.Close()
		if err != nil {
			t.Fatalf("%s: %v", f.Name, err)
		}
		for _, a := range rec.Affected {
			for _, r := range a.Ranges {
				if r.Type == "GIT" {
					continue
				}
				for _, e := range r.Events {
					for _, v := range e {
						set[v] = true
					}
				}
			}
			for _, v := range a.Versions {
				set[v] = true
			}
		}
	}
	delete(set, "0")
	return sortedKeys(set)
}

// dpkgStatusVersions returns the Version fields and the source versions of
// a real dpkg status file.
func dpkgStatusVersions(t testing.TB) []string {
	t.Helper()
	f, err := os.Open(testutil.Fixture(t, "rootfs/bookworm-minbase.dpkg-status"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	set := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, "Version: "); ok {
			set[v] = true
		}
		if src, ok := strings.CutPrefix(line, "Source: "); ok {
			if _, v, ok := strings.Cut(src, " ("); ok {
				set[strings.TrimSuffix(v, ")")] = true
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return sortedKeys(set)
}

// alpineVersions returns the fixed versions of every Alpine secdb fixture
// and the installed versions of the Alpine mini root filesystems.
func alpineVersions(t testing.TB) []string {
	t.Helper()
	set := map[string]bool{}
	dirs, err := filepath.Glob(filepath.Join(testutil.Fixture(t, "feeds/alpine-secdb"), "v*", "*.yaml"))
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no secdb files: %v", err)
	}
	for _, p := range dirs {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		// secfixes keys are the only lines of the form "        VERSION:".
		for _, line := range strings.Split(string(b), "\n") {
			trim := strings.TrimSpace(line)
			if strings.HasPrefix(line, "        ") && !strings.HasPrefix(trim, "-") && strings.HasSuffix(trim, ":") {
				v := strings.Trim(strings.TrimSuffix(trim, ":"), `"'`)
				if v != "" && v[0] >= '0' && v[0] <= '9' {
					set[v] = true
				}
			}
		}
	}
	for _, rel := range []string{"rootfs/alpine-minirootfs-3.18.9-x86_64.tar.gz", "rootfs/alpine-minirootfs-3.20.3-x86_64.tar.gz"} {
		for _, v := range apkInstalledVersions(t, testutil.Fixture(t, rel)) {
			set[v] = true
		}
	}
	return sortedKeys(set)
}

func apkInstalledVersions(t testing.TB, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("%s: no lib/apk/db/installed: %v", path, err)
		}
		if strings.TrimPrefix(h.Name, "./") != "lib/apk/db/installed" {
			continue
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "V:"); ok {
				out = append(out, v)
			}
		}
		return out
	}
}

// amazonVersions returns epoch:version-release of every package in the
// ALAS JSON goldens.
func amazonVersions(t testing.TB) []string {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(testutil.Fixture(t, "feeds/amazon/vuln-list-update"), "*.json.golden"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no ALAS goldens: %v", err)
	}
	set := map[string]bool{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Packages []struct {
				Epoch, Version, Release string
			}
		}
		if err := json.Unmarshal(b, &doc); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		for _, pk := range doc.Packages {
			v := pk.Version + "-" + pk.Release
			if pk.Epoch != "" && pk.Epoch != "0" {
				v = pk.Epoch + ":" + v
			}
			set[v] = true
		}
	}
	return sortedKeys(set)
}

func sortedKeys(set map[string]bool) []string {
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// pairs makes version pairs from a corpus: every string with itself, each
// with its near neighbours in byte order (they share prefixes, so the
// tricky parts of the version meet), and n random pairs.
func pairs(corpus []string, n int, seed uint64) [][2]string {
	sorted := slices.Clone(corpus)
	slices.Sort(sorted)
	sorted = slices.Compact(sorted)
	var out [][2]string
	for i, a := range sorted {
		out = append(out, [2]string{a, a})
		for d := 1; d <= 3 && i+d < len(sorted); d++ {
			out = append(out, [2]string{a, sorted[i+d]}, [2]string{sorted[i+d], a})
		}
	}
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	for range n {
		out = append(out, [2]string{sorted[r.IntN(len(sorted))], sorted[r.IntN(len(sorted))]})
	}
	return out
}

// mutate derives variants of real versions by appending and inserting the
// pieces a scheme treats specially, so the property tests reach the edge
// cases with realistic stems.
func mutate(corpus []string, pieces []string, n int, seed uint64) []string {
	r := rand.New(rand.NewPCG(seed, 7))
	out := slices.Clone(corpus)
	for range n {
		v := corpus[r.IntN(len(corpus))]
		p := pieces[r.IntN(len(pieces))]
		switch {
		case strings.HasSuffix(p, ":") || strings.HasSuffix(p, "!") || p == "v":
			v = p + v // epochs and the v prefix only lead
		case r.IntN(2) == 0:
			v += p
		default:
			i := 1 + r.IntN(len(v)) // keep the leading digit
			v = v[:i] + p + v[i:]
		}
		out = append(out, v)
	}
	return out
}

// recordVersions returns the versions of the single OSV records of Debian
// and Ubuntu (DSA-3029-1, USN-5192-1, UBUNTU-CVE-2025-38094).
func recordVersions(t testing.TB) []string {
	t.Helper()
	set := map[string]bool{}
	for _, name := range []string{"DSA-3029-1", "USN-5192-1", "UBUNTU-CVE-2025-38094"} {
		b, err := os.ReadFile(testutil.Fixture(t, "feeds/osv/records/"+name+".json"))
		if err != nil {
			t.Fatal(err)
		}
		var rec struct {
			Affected []struct {
				Ranges []struct {
					Events []map[string]string
				}
				Versions []string
			}
		}
		if err := json.Unmarshal(b, &rec); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, a := range rec.Affected {
			for _, r := range a.Ranges {
				for _, e := range r.Events {
					for _, v := range e {
						set[v] = true
					}
				}
			}
			for _, v := range a.Versions {
				set[v] = true
			}
		}
	}
	delete(set, "0")
	return sortedKeys(set)
}

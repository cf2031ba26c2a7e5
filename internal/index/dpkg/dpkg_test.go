package dpkg_test

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/drydockhq/drydock/internal/index"
	"github.com/drydockhq/drydock/internal/index/dpkg"
	"github.com/drydockhq/drydock/internal/testutil"
)

// dpkgQuery lists the installed packages of an admin directory with the
// real dpkg-query, one "name version source source-version arch" line each.
func dpkgQuery(t *testing.T, admindir string) []string {
	t.Helper()
	bin := testutil.RequireTool(t, "dpkg-query")
	out, err := exec.Command(bin, "--admindir="+admindir, "-W",
		"-f", "${db:Status-Status} ${Package} ${Version} ${source:Package} ${source:Version} ${Architecture}\n").Output()
	if err != nil {
		t.Fatalf("dpkg-query: %v", err)
	}
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		status, rest, _ := strings.Cut(sc.Text(), " ")
		if status == "not-installed" || status == "config-files" {
			continue
		}
		lines = append(lines, rest)
	}
	sort.Strings(lines)
	return lines
}

func lines(pkgs []index.Package) []string {
	var out []string
	for _, p := range pkgs {
		out = append(out, strings.Join([]string{p.Name, p.Version, p.SourceName, p.SourceVersion, p.Arch}, " "))
	}
	sort.Strings(out)
	return out
}

func diff(t *testing.T, got, want []string) {
	t.Helper()
	if len(want) == 0 {
		t.Fatal("the reference list is empty")
	}
	g := map[string]bool{}
	for _, l := range got {
		g[l] = true
	}
	w := map[string]bool{}
	for _, l := range want {
		w[l] = true
		if !g[l] {
			t.Errorf("missing: %s", l)
		}
	}
	for _, l := range got {
		if !w[l] {
			t.Errorf("unexpected: %s", l)
		}
	}
	if len(got) != len(want) {
		t.Errorf("got %d packages, dpkg-query lists %d", len(got), len(want))
	}
}

func TestStatusMatchesDpkgQuery(t *testing.T) {
	status := testutil.Fixture(t, "rootfs/bookworm-minbase.dpkg-status")
	admin := t.TempDir()
	data, err := os.ReadFile(status)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(admin, "status"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	want := dpkgQuery(t, admin)

	c := dpkg.New()
	if !c.Wants("var/lib/dpkg/status", 0o644, int64(len(data))) {
		t.Fatal("the cataloger does not want var/lib/dpkg/status")
	}
	pkgs, err := c.Catalog(context.Background(), index.File{Path: "var/lib/dpkg/status", Reader: bytes.NewReader(data)})
	if err != nil {
		t.Fatal(err)
	}
	diff(t, lines(pkgs), want)

	// Epochs are kept exact, and the epoch field agrees with the version.
	for _, p := range pkgs {
		if p.Name == "bsdutils" {
			if p.Version != "1:2.38.1-5+deb12u3" || p.Epoch == nil || *p.Epoch != 1 || p.SourceName != "util-linux" {
				t.Errorf("bsdutils = %+v", p)
			}
		}
	}
}

// TestStatusDirectory splits the real status file the way distroless
// images ship it (status.d/NAME per package) and expects the same list.
func TestStatusDirectory(t *testing.T) {
	data, err := os.ReadFile(testutil.Fixture(t, "rootfs/bookworm-minbase.dpkg-status"))
	if err != nil {
		t.Fatal(err)
	}
	admin := t.TempDir()
	if err := os.WriteFile(filepath.Join(admin, "status"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	want := dpkgQuery(t, admin)

	c := dpkg.New()
	var got []index.Package
	for _, stanza := range strings.Split(strings.TrimSpace(string(data)), "\n\n") {
		name := strings.TrimPrefix(strings.SplitN(stanza, "\n", 2)[0], "Package: ")
		p := "var/lib/dpkg/status.d/" + name
		if !c.Wants(p, 0o644, int64(len(stanza))) {
			t.Fatalf("the cataloger does not want %s", p)
		}
		pkgs, err := c.Catalog(context.Background(), index.File{Path: p, Reader: strings.NewReader(stanza + "\n")})
		if err != nil {
			t.Fatal(err)
		}
		if len(pkgs) != 1 || pkgs[0].Path != p {
			t.Fatalf("%s: %+v", p, pkgs)
		}
		got = append(got, pkgs...)
	}
	diff(t, lines(got), want)
	if c.Wants("var/lib/dpkg/status.d/libc6.md5sums", 0o644, 10) {
		t.Error("md5sums files are not package records")
	}
}

func TestCorruptStatus(t *testing.T) {
	for name, in := range map[string]string{
		"no package field": "Status: install ok installed\nVersion: 1\n\n",
		"garbage line":     "Package: a\nthis is not a field\n",
		"bad source":       "Package: a\nSource: b 1.0)\n",
		"huge line":        "Package: a\nDepends: " + strings.Repeat("x", 2<<20) + "\n",
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := dpkg.Parse(strings.NewReader(in)); err == nil {
				t.Error("no error")
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	data, err := os.ReadFile(testutil.Fixture(f, "rootfs/bookworm-minbase.dpkg-status"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data[:4096])
	for _, stanza := range strings.SplitN(string(data), "\n\n", 6)[:5] {
		f.Add([]byte(stanza))
	}
	f.Add([]byte("Package: a\nSource: b (1:2-3)\nVersion: 1:2-3\nStatus: install ok installed\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		entries, err := dpkg.Parse(bytes.NewReader(in))
		if err != nil {
			return
		}
		for _, e := range entries {
			if e.Name == "" || e.SourceName == "" {
				t.Fatalf("entry without a name: %+v", e)
			}
			_ = e.Package("var/lib/dpkg/status")
		}
	})
}

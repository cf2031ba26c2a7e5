package apk_test

import (
	"bytes"
	"context"
	"sort"
	"strings"
	"testing"

	"github.com/drydockhq/drydock/internal/index"
	"github.com/drydockhq/drydock/internal/index/apk"
	"github.com/drydockhq/drydock/internal/testutil"
)

// installedDB reads lib/apk/db/installed out of a minirootfs tarball with
// the standard library alone.
func installedDB(t testing.TB, fixture string) []byte {
	t.Helper()
	return testutil.TarGzFile(t, fixture, "lib/apk/db/installed")
}

// reference is an independent reading of the database: blank-line
// separated records, fields keyed by their letter.
func reference(db []byte) []string {
	var out []string
	for _, rec := range strings.Split(strings.TrimSpace(string(db)), "\n\n") {
		fields := map[string]string{}
		for _, l := range strings.Split(rec, "\n") {
			if len(l) > 2 {
				fields[l[:1]] = l[2:]
			}
		}
		out = append(out, fields["P"]+" "+fields["V"]+" "+fields["o"]+" "+fields["A"])
	}
	sort.Strings(out)
	return out
}

func TestMinirootfs(t *testing.T) {
	for _, fx := range []string{
		"rootfs/alpine-minirootfs-3.18.9-x86_64.tar.gz",
		"rootfs/alpine-minirootfs-3.20.3-x86_64.tar.gz",
	} {
		t.Run(fx, func(t *testing.T) {
			db := installedDB(t, fx)
			want := reference(db)
			if n := bytes.Count(append([]byte("\n"), db...), []byte("\nP:")); n != len(want) || n < 10 {
				t.Fatalf("reference has %d records, the file %d P: lines", len(want), n)
			}
			c := apk.New()
			if !c.Wants("lib/apk/db/installed", 0o644, int64(len(db))) {
				t.Fatal("not wanted")
			}
			pkgs, err := c.Catalog(context.Background(), index.File{Path: "lib/apk/db/installed", Reader: bytes.NewReader(db)})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, p := range pkgs {
				got = append(got, p.Name+" "+p.Version+" "+p.SourceName+" "+p.Arch)
				if p.Type != index.TypeApk || p.Path != "lib/apk/db/installed" {
					t.Errorf("%+v", p)
				}
			}
			sort.Strings(got)
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}

func TestCorrupt(t *testing.T) {
	for name, in := range map[string]string{
		"no version":  "P:musl\nA:x86_64\n\n",
		"not a field": "P:musl\nV:1\nnonsense\n",
		"huge line":   "P:musl\nV:1\nD:" + strings.Repeat("x", 2<<20) + "\n",
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := apk.Parse(strings.NewReader(in)); err == nil {
				t.Error("no error")
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	db := installedDB(f, "rootfs/alpine-minirootfs-3.18.9-x86_64.tar.gz")
	f.Add(db)
	for _, rec := range strings.SplitN(string(db), "\n\n", 4)[:3] {
		f.Add([]byte(rec))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		entries, err := apk.Parse(bytes.NewReader(in))
		if err != nil {
			return
		}
		for _, e := range entries {
			if e.Name == "" || e.Version == "" || e.Origin == "" {
				t.Fatalf("incomplete entry %+v", e)
			}
		}
	})
}

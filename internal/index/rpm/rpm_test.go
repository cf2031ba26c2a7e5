package rpm_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/binary"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/drydockhq/drydock/internal/index"
	"github.com/drydockhq/drydock/internal/index/rpm"
	"github.com/drydockhq/drydock/internal/testutil"
)

const queryFormat = "%{NAME} %{EPOCH} %{VERSION} %{RELEASE} %{ARCH} %{SOURCERPM} %{MODULARITYLABEL}\n"

// rpmQuery lists a database with the real rpm, leaving out the
// gpg-pubkey entries of imported keys.
func rpmQuery(t *testing.T, dir string, backend string) []string {
	t.Helper()
	bin := testutil.RequireTool(t, "rpm")
	args := []string{"-qa", "--dbpath", dir, "--qf", queryFormat}
	if backend != "" {
		args = append(args, "--define", "_db_backend "+backend)
	}
	cmd := exec.Command(bin, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("rpm -qa: %v\n%s", err, stderr.String())
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if l != "" && !strings.HasPrefix(l, "gpg-pubkey ") {
			lines = append(lines, l)
		}
	}
	sort.Strings(lines)
	if len(lines) == 0 {
		t.Fatal("rpm lists no package")
	}
	return lines
}

// ours renders packages the way queryFormat prints them.
func ours(pkgs []index.Package) []string {
	var lines []string
	for _, p := range pkgs {
		epoch := "(none)"
		if p.Epoch != nil {
			epoch = itoa(*p.Epoch)
		}
		version := p.Version
		if i := strings.IndexByte(version, ':'); i >= 0 {
			version = version[i+1:]
		}
		version = strings.TrimSuffix(version, "-"+p.Release)
		src := p.Metadata["sourcerpm"]
		if src == "" {
			src = "(none)"
		}
		mod := p.Modularity
		if mod == "" {
			mod = "(none)"
		}
		lines = append(lines, strings.Join([]string{p.Name, epoch, version, p.Release, p.Arch, src, mod}, " "))
	}
	sort.Strings(lines)
	return lines
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

func compare(t *testing.T, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got %d packages, rpm lists %d\ngot:\n%s\nwant:\n%s", len(got), len(want), strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// copyDB puts a database file in a fresh directory rpm may write to.
func copyDB(t *testing.T, src, name string) (string, []byte) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, b
}

func read(t *testing.T, b []byte) []index.Package {
	t.Helper()
	pkgs, err := rpm.Read(context.Background(), b)
	if err != nil {
		t.Fatal(err)
	}
	return pkgs
}

func TestSQLite(t *testing.T) {
	dir, b := copyDB(t, testutil.Fixture(t, "rpmdb/cbl-mariner-2.0/rpmdb.sqlite"), "rpmdb.sqlite")
	if f, _ := rpm.DetectFormat(b); f != rpm.FormatSQLite {
		t.Fatalf("format %s", f)
	}
	compare(t, ours(read(t, b)), rpmQuery(t, dir, ""))
}

func TestBerkeleyDB(t *testing.T) {
	dbs := map[string]string{"libuuid": testutil.Fixture(t, "rpmdb/libuuid/Packages")}
	// go-rpmdb's own test databases (real CentOS images, one with modular
	// packages) widen the check; the module is a dependency already.
	for _, name := range []string{"centos5-plain", "centos6-many", "centos7-many", "centos7-python35", "centos8-modularitylabel"} {
		dbs[name] = filepath.Join(goRPMDBDir(t), "pkg", "testdata", name, "Packages")
	}
	for name, p := range dbs {
		t.Run(name, func(t *testing.T) {
			dir, b := copyDB(t, p, "Packages")
			if f, _ := rpm.DetectFormat(b); f != rpm.FormatBDB {
				t.Fatalf("format %s", f)
			}
			got := read(t, b)
			compare(t, ours(got), rpmQuery(t, dir, "bdb_ro"))
			if name == "centos8-modularitylabel" {
				n := 0
				for _, p := range got {
					if p.Modularity != "" {
						n++
					}
				}
				if n == 0 {
					t.Error("no modularity label read")
				}
			}
		})
	}
}

func goRPMDBDir(t *testing.T) string {
	t.Helper()
	gobin := testutil.RequireTool(t, "go")
	out, err := exec.Command(gobin, "mod", "download", "-json", "github.com/knqyf263/go-rpmdb@v0.0.0-20210911072402-73bd0ce46c49").Output()
	if err != nil {
		t.Fatalf("go mod download go-rpmdb: %v", err)
	}
	var m struct{ Dir string }
	if err := json.Unmarshal(out, &m); err != nil || m.Dir == "" {
		t.Fatalf("go mod download: %v %s", err, out)
	}
	return m.Dir
}

// TestNDB checks the NDB reader two ways, since Debian's rpm is built
// without NDB: the header blobs it finds are loaded into an SQLite rpmdb
// that the real rpm then decodes, and their number is checked against an
// independent count of the blob magic numbers in the file.
func TestNDB(t *testing.T) {
	b, err := os.ReadFile(testutil.Fixture(t, "rpmdb/sle15-bci/Packages.db"))
	if err != nil {
		t.Fatal(err)
	}
	if f, _ := rpm.DetectFormat(b); f != rpm.FormatNDB {
		t.Fatalf("format %s", f)
	}
	blobs, _, err := rpm.Blobs(context.Background(), b)
	if err != nil {
		t.Fatal(err)
	}
	magic := 0
	for off := 0; off+8 <= len(b); off += 16 {
		if string(b[off:off+4]) == "BlbS" && binary.LittleEndian.Uint32(b[off+4:]) != 0 {
			magic++
		}
	}
	if len(blobs) != magic || magic < 10 {
		t.Fatalf("%d blobs read, %d blob headers in the file", len(blobs), magic)
	}
	dir := t.TempDir()
	db, err := sql.Open("sqlite", filepath.Join(dir, "rpmdb.sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TABLE Packages (hnum INTEGER PRIMARY KEY AUTOINCREMENT, blob BLOB NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	for _, bl := range blobs {
		if _, err := db.Exec(`INSERT INTO Packages (blob) VALUES (?)`, bl); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	if out, err := exec.Command(testutil.RequireTool(t, "rpmdb"), "--rebuilddb", "--dbpath", dir).CombinedOutput(); err != nil {
		t.Fatalf("rpmdb --rebuilddb: %v\n%s", err, out)
	}
	compare(t, ours(read(t, b)), rpmQuery(t, dir, ""))
}

func TestCataloger(t *testing.T) {
	b, err := os.ReadFile(testutil.Fixture(t, "rpmdb/libuuid/Packages"))
	if err != nil {
		t.Fatal(err)
	}
	c := rpm.New()
	for _, p := range []string{"var/lib/rpm/Packages", "var/lib/rpm/rpmdb.sqlite", "usr/lib/sysimage/rpm/Packages.db"} {
		if !c.Wants(p, 0o644, 1) {
			t.Errorf("%s not wanted", p)
		}
	}
	pkgs, err := c.Catalog(context.Background(), index.File{Path: "var/lib/rpm/Packages", Reader: bytes.NewReader(b)})
	if err != nil || len(pkgs) != 1 {
		t.Fatalf("%v %v", pkgs, err)
	}
	p := pkgs[0]
	if p.Name != "libuuid" || p.SourceName != "util-linux" || p.SourceVersion != "2.32.1-42.el8_8" || p.Path != "var/lib/rpm/Packages" {
		t.Errorf("%+v", p)
	}
}

// TestCorrupt truncates and damages each real database: an error, never
// a panic or a hang.
func TestCorrupt(t *testing.T) {
	for _, p := range []string{"rpmdb/libuuid/Packages", "rpmdb/sle15-bci/Packages.db", "rpmdb/cbl-mariner-2.0/rpmdb.sqlite"} {
		b, err := os.ReadFile(testutil.Fixture(t, p))
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range []int{0, 10, 600, len(b) / 3, len(b) - 100} {
			_, _ = rpm.Read(context.Background(), b[:n])
		}
		for i := 0; i < 64; i++ {
			c := append([]byte(nil), b...)
			for j := 0; j < 16; j++ {
				c[(i*7919+j*104729)%len(c)] ^= 0xa5
			}
			_, _ = rpm.Read(context.Background(), c)
		}
	}
	if _, err := rpm.Read(context.Background(), []byte("garbage, not a database")); err == nil {
		t.Error("garbage accepted")
	}
}

func FuzzParseHeader(f *testing.F) {
	for _, p := range []string{"rpmdb/libuuid/Packages", "rpmdb/sle15-bci/Packages.db"} {
		b, err := os.ReadFile(testutil.Fixture(f, p))
		if err != nil {
			f.Fatal(err)
		}
		blobs, _, err := rpm.Blobs(context.Background(), b)
		if err != nil {
			f.Fatal(err)
		}
		for _, bl := range blobs[:min(3, len(blobs))] {
			f.Add(bl)
		}
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		h, err := rpm.ParseHeader(in)
		if err == nil && (h.Name == "" || h.Version == "") {
			t.Fatal("header without name or version accepted")
		}
	})
}

func FuzzBlobs(f *testing.F) {
	for _, p := range []string{"rpmdb/libuuid/Packages", "rpmdb/sle15-bci/Packages.db"} {
		b, err := os.ReadFile(testutil.Fixture(f, p))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b[:min(len(b), 64<<10)])
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if f, err := rpm.DetectFormat(in); err != nil || f == rpm.FormatSQLite {
			return // SQLite files are read by SQLite itself
		}
		_, _, _ = rpm.Blobs(context.Background(), in)
	})
}

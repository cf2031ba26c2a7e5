package java

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/drydockhq/drydock/internal/index"
	"github.com/drydockhq/drydock/internal/index/lang/langtest"
)

// debs install real jars: with Maven metadata (log4j, commons-lang3), and
// without it (built with Ant or Bnd: xz, jzlib, jsch, hamcrest).
var debs = []string{"liblog4j2-java", "libcommons-lang3-java", "libxz-java", "libjzlib-java", "libjsch-java", "libhamcrest-java"}

// gav is a Maven coordinate.
type gav struct{ group, artifact, version string }

// mavenRepoTruth reads the Maven repository layout Debian installs beside
// its jars (usr/share/maven-repo/GROUP/PATH/ARTIFACT/VERSION/A-V.jar, a
// symlink to the jar in usr/share/java): the coordinates of each jar as the
// packager published them, keyed by the jar's path from the root.
func mavenRepoTruth(t *testing.T, root string) map[string]gav {
	t.Helper()
	truth := map[string]gav{}
	repo := filepath.Join(root, "usr/share/maven-repo")
	err := filepath.WalkDir(repo, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.Type()&os.ModeSymlink == 0 || !strings.HasSuffix(p, ".jar") {
			return err
		}
		rel, _ := filepath.Rel(repo, p)
		parts := strings.Split(filepath.ToSlash(rel), "/")
		if len(parts) < 4 || parts[len(parts)-2] == "debian" {
			return nil
		}
		target, err := filepath.EvalSymlinks(p)
		if err != nil {
			return err
		}
		realRoot, err := filepath.EvalSymlinks(root)
		if err != nil {
			return err
		}
		jar, _ := filepath.Rel(realRoot, target)
		truth[filepath.ToSlash(jar)] = gav{
			group:    strings.Join(parts[:len(parts)-3], "."),
			artifact: parts[len(parts)-3],
			version:  parts[len(parts)-2],
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return truth
}

// hasPomProperties says whether a jar carries Maven metadata, by a plain
// listing of its entries.
func hasPomProperties(t *testing.T, jar string) bool {
	t.Helper()
	zr, err := zip.OpenReader(jar)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	return slices.ContainsFunc(zr.File, func(f *zip.File) bool { return strings.HasSuffix(f.Name, "/pom.properties") })
}

func TestDebianJars(t *testing.T) {
	c := New()
	for _, name := range debs {
		t.Run(name, func(t *testing.T) {
			deb := langtest.Debian(t, name)
			truth := mavenRepoTruth(t, deb.Root)
			if len(truth) == 0 {
				t.Fatal("no Maven repository layout in the package")
			}
			got := langtest.Walk(t, c, deb.Root)
			byPath := map[string][]index.Package{}
			for _, p := range got {
				byPath[p.Path] = append(byPath[p.Path], p)
			}
			for jar, want := range truth {
				pkgs := byPath[jar]
				if len(pkgs) != 1 {
					t.Errorf("%s: %d packages, want 1: %+v", jar, len(pkgs), pkgs)
					continue
				}
				p := pkgs[0]
				if p.Type != index.TypeJava || p.Ecosystem != "Maven" || p.Version != want.version {
					t.Errorf("%s: %+v, want version %s", jar, p, want.version)
				}
				if hasPomProperties(t, filepath.Join(deb.Root, jar)) {
					if p.Name != want.group+":"+want.artifact || p.Metadata["source"] != "pom.properties" {
						t.Errorf("%s: name %q (source %s), want %s:%s", jar, p.Name, p.Metadata["source"], want.group, want.artifact)
					}
					if purl := "pkg:maven/" + want.group + "/" + want.artifact + "@" + want.version; p.PURL != purl {
						t.Errorf("%s: purl %q, want %q", jar, p.PURL, purl)
					}
				} else if p.Name != want.artifact || p.Metadata["groupId"] != "unknown" {
					// Without Maven metadata the group is not guessed.
					t.Errorf("%s: name %q metadata %v, want %s with an unknown group", jar, p.Name, p.Metadata, want.artifact)
				}
			}
		})
	}
}

// zipEntry is one member of an archive a test writes.
type zipEntry struct {
	name   string
	data   []byte
	stored bool
}

func writeZip(t testing.TB, entries ...zipEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range entries {
		h := &zip.FileHeader{Name: e.name, Method: zip.Deflate}
		if e.stored {
			h.Method = zip.Store
		}
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(e.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func readDebJar(t testing.TB, deb, jar string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(langtest.Debian(t, deb).Root, "usr/share/java", jar))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func catalog(t testing.TB, p string, data []byte) ([]index.Package, error) {
	t.Helper()
	return New().Catalog(context.Background(), index.File{Path: p, Size: int64(len(data)), Reader: bytes.NewReader(data)})
}

func names(pkgs []index.Package) []string {
	var out []string
	for _, p := range pkgs {
		out = append(out, p.Path+" "+p.Name+"@"+p.Version)
	}
	slices.Sort(out)
	return out
}

// TestNestedArchives wraps real jars the way Spring Boot, war and ear
// packaging do, stored and compressed, and checks each is found under its
// nested path.
func TestNestedArchives(t *testing.T) {
	log4j := readDebJar(t, "liblog4j2-java", "log4j-core.jar")
	lang3 := readDebJar(t, "libcommons-lang3-java", "commons-lang3.jar")
	xz := readDebJar(t, "libxz-java", "xz-1.9.jar")

	boot := writeZip(t,
		zipEntry{name: "META-INF/MANIFEST.MF", data: []byte("Manifest-Version: 1.0\r\nMain-Class: org.springframework.boot.loader.JarLauncher\r\n\r\n")},
		zipEntry{name: "META-INF/maven/com.example/demo/pom.properties", data: []byte("#Generated\nartifactId=demo\ngroupId=com.example\nversion=0.0.1-SNAPSHOT\n")},
		zipEntry{name: "BOOT-INF/lib/log4j-core-2.19.0.jar", data: log4j, stored: true},
		zipEntry{name: "BOOT-INF/lib/xz-1.9.jar", data: xz},
	)
	pkgs, err := catalog(t, "app/app.jar", boot)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"app/app.jar com.example:demo@0.0.1-SNAPSHOT",
		"app/app.jar!/BOOT-INF/lib/log4j-core-2.19.0.jar org.apache.logging.log4j:log4j-core@2.19.0",
		"app/app.jar!/BOOT-INF/lib/xz-1.9.jar xz@1.9",
	}
	if got := names(pkgs); !slices.Equal(got, want) {
		t.Errorf("spring boot jar:\n got %q\nwant %q", got, want)
	}

	war := writeZip(t, zipEntry{name: "WEB-INF/lib/commons-lang3-3.12.0.jar", data: lang3, stored: true})
	ear := writeZip(t, zipEntry{name: "web.war", data: war}, zipEntry{name: "lib/log4j-core.jar", data: log4j})
	pkgs, err = catalog(t, "srv/app.ear", ear)
	if err != nil {
		t.Fatal(err)
	}
	want = []string{
		"srv/app.ear!/lib/log4j-core.jar org.apache.logging.log4j:log4j-core@2.19.0",
		"srv/app.ear!/web.war!/WEB-INF/lib/commons-lang3-3.12.0.jar org.apache.commons:commons-lang3@3.12.0",
	}
	if got := names(pkgs); !slices.Equal(got, want) {
		t.Errorf("ear:\n got %q\nwant %q", got, want)
	}
}

// TestShaded checks that a jar holding the Maven metadata of several
// artifacts (as the shade and assembly plugins make) yields each of them.
func TestShaded(t *testing.T) {
	var entries []zipEntry
	var want []string
	for _, j := range []struct{ deb, jar string }{{"liblog4j2-java", "log4j-core.jar"}, {"liblog4j2-java", "log4j-api.jar"}, {"libcommons-lang3-java", "commons-lang3.jar"}} {
		zr, err := zip.NewReader(bytes.NewReader(readDebJar(t, j.deb, j.jar)), int64(len(readDebJar(t, j.deb, j.jar))))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range zr.File {
			if strings.HasPrefix(f.Name, "META-INF/maven/") {
				rc, _ := f.Open()
				b, _ := io.ReadAll(rc)
				rc.Close()
				entries = append(entries, zipEntry{name: f.Name, data: b})
				if strings.HasSuffix(f.Name, "pom.properties") {
					parts := strings.Split(f.Name, "/")
					pp := parsePomPropertiesForTest(b)
					want = append(want, "opt/uber.jar "+parts[2]+":"+parts[3]+"@"+pp)
				}
			}
		}
	}
	pkgs, err := catalog(t, "opt/uber.jar", writeZip(t, entries...))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(want)
	if got := names(pkgs); len(want) != 3 || !slices.Equal(got, want) {
		t.Errorf("shaded:\n got %q\nwant %q", got, want)
	}
}

// parsePomPropertiesForTest reads the version line by plain string search,
// independently of the parser under test.
func parsePomPropertiesForTest(b []byte) string {
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "version="); ok {
			return v
		}
	}
	return ""
}

func TestBombs(t *testing.T) {
	xz := readDebJar(t, "libxz-java", "xz-1.9.jar")

	t.Run("inflation bomb", func(t *testing.T) {
		// 100 MiB of zeros deflates to about 100 KiB.
		var buf bytes.Buffer
		zw := zip.NewWriter(&buf)
		w, _ := zw.Create("WEB-INF/lib/bomb-1.0.jar")
		zero := make([]byte, 1<<20)
		for range 100 {
			w.Write(zero)
		}
		w, _ = zw.CreateHeader(&zip.FileHeader{Name: "WEB-INF/lib/xz-1.9.jar", Method: zip.Store})
		w.Write(xz)
		zw.Close()
		pkgs, err := catalog(t, "x.war", buf.Bytes())
		if !errors.Is(err, ErrBomb) {
			t.Errorf("err = %v, want ErrBomb", err)
		}
		if got := names(pkgs); !slices.Equal(got, []string{"x.war!/WEB-INF/lib/xz-1.9.jar xz@1.9"}) {
			t.Errorf("packages beside the bomb: %q", got)
		}
	})

	t.Run("deep nesting", func(t *testing.T) {
		data := xz
		for i := range 5 {
			data = writeZip(t, zipEntry{name: fmt.Sprintf("lib/level%d.jar", i), data: data})
		}
		pkgs, err := catalog(t, "deep.jar", data)
		if err == nil || !strings.Contains(err.Error(), "nested deeper") {
			t.Errorf("err = %v", err)
		}
		if len(pkgs) != 0 {
			t.Errorf("found %q below the depth limit", names(pkgs))
		}
	})

	t.Run("too many entries", func(t *testing.T) {
		var buf bytes.Buffer
		zw := zip.NewWriter(&buf)
		for i := range maxEntries + 1 {
			zw.CreateHeader(&zip.FileHeader{Name: fmt.Sprint(i), Method: zip.Store})
		}
		zw.Close()
		_, err := catalog(t, "many.jar", buf.Bytes())
		if err == nil || !strings.Contains(err.Error(), "entries") {
			t.Errorf("err = %v", err)
		}
	})

	t.Run("truncated", func(t *testing.T) {
		if _, err := catalog(t, "t.jar", xz[:len(xz)/2]); err == nil {
			t.Error("truncated archive accepted")
		}
	})
}

func TestFallbackNames(t *testing.T) {
	for _, tc := range []struct{ stem, name, version string }{
		{"log4j-core-2.19.0", "log4j-core", "2.19.0"},
		{"commons-lang3-3.12.0", "commons-lang3", "3.12.0"},
		{"netty-codec-4.1.100.Final", "netty-codec", "4.1.100.Final"},
		{"app", "app", ""},
	} {
		if n, v := splitNameVersion(tc.stem); n != tc.name || v != tc.version {
			t.Errorf("splitNameVersion(%q) = %q, %q", tc.stem, n, v)
		}
	}
	mf := parseManifest([]byte("Manifest-Version: 1.0\r\nImplementation-Title: demo\r\nImplementation-Vend\r\n or-Id: x\r\nImplementation-Version: 1.2\r\nImplementation-Vendor-Id: org.ex\r\n ample\r\n\r\nName: other\r\nImplementation-Version: 9\r\n"))
	p, ok := fallback("opt/demo.jar", mf)
	if !ok || p.Name != "org.example:demo" || p.Version != "1.2" || p.PURL != "pkg:maven/org.example/demo@1.2" {
		t.Errorf("fallback = %+v, %v", p, ok)
	}
}

func FuzzCatalog(f *testing.F) {
	f.Add(readDebJar(f, "libxz-java", "xz-1.9.jar"))
	f.Add(readDebJar(f, "liblog4j2-java", "log4j-jcl.jar"))
	f.Add(writeZip(f, zipEntry{name: "lib/a.jar", data: readDebJar(f, "liblog4j2-java", "log4j-jcl.jar"), stored: true}))
	f.Fuzz(func(t *testing.T, data []byte) {
		pkgs, _ := catalog(t, "f.jar", data)
		for _, p := range pkgs {
			if p.Name == "" || p.Version == "" || p.PURL == "" {
				t.Fatalf("incomplete package %+v", p)
			}
		}
	})
}

func FuzzManifest(f *testing.F) {
	f.Add([]byte("Manifest-Version: 1.0\r\nImplementation-Title: demo\r\n\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		parseManifest(data)
		parsePomProperties(data)
		entryCount(data)
	})
}

func BenchmarkLog4jCore(b *testing.B) {
	data := readDebJar(b, "liblog4j2-java", "log4j-core.jar")
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := catalog(b, "log4j-core.jar", data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSpringBootJar(b *testing.B) {
	var entries []zipEntry
	for _, j := range []struct{ deb, jar string }{{"liblog4j2-java", "log4j-core.jar"}, {"liblog4j2-java", "log4j-api.jar"}, {"libcommons-lang3-java", "commons-lang3.jar"}, {"libxz-java", "xz-1.9.jar"}, {"libjsch-java", "jsch-0.1.54.jar"}} {
		for i := range 10 {
			entries = append(entries, zipEntry{name: fmt.Sprintf("BOOT-INF/lib/%d-%s", i, j.jar), data: readDebJar(b, j.deb, j.jar), stored: true})
		}
	}
	data := writeZip(b, entries...)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := catalog(b, "app.jar", data); err != nil {
			b.Fatal(err)
		}
	}
}

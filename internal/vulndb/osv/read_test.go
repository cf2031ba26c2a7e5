package osv

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/drydockhq/drydock/internal/testutil"
	"github.com/drydockhq/drydock/internal/vulndb"
	"github.com/drydockhq/drydock/internal/vulndb/fetch"
)

// goRecords returns the first n records of the real Go all.zip as
// name→content pairs.
func goRecords(t testing.TB, n int) [][2]string {
	t.Helper()
	zr, err := zip.OpenReader(testutil.Fixture(t, "feeds/osv/Go/all.zip"))
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	var out [][2]string
	for _, f := range zr.File[:n] {
		rc, _ := f.Open()
		var b bytes.Buffer
		b.ReadFrom(rc)
		rc.Close()
		out = append(out, [2]string{f.Name, b.String()})
	}
	return out
}

func readBytes(t *testing.T, b []byte, lim Limits) (*vulndb.FeedData, error) {
	t.Helper()
	return ReadReaderAt(context.Background(), bytes.NewReader(b), int64(len(b)), "test.zip", "osv-test", lim)
}

func TestReadZipRealFeed(t *testing.T) {
	fd, err := ReadPath(context.Background(), testutil.Fixture(t, "feeds/osv/Go/all.zip"), "osv-Go", DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	// The fixture README: 4,291 records.
	if len(fd.Advisories) != 4291 || len(fd.Rejected) != 0 {
		t.Errorf("%d advisories, %d rejected", len(fd.Advisories), len(fd.Rejected))
	}
	for _, a := range fd.Advisories[:10] {
		if a.Source != "osv-Go" {
			t.Errorf("%s: source %q", a.ID, a.Source)
		}
	}
}

func TestReadZipTruncated(t *testing.T) {
	whole, err := os.ReadFile(testutil.Fixture(t, "feeds/osv/Go/all.zip"))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{len(whole) / 2, len(whole) - 10, 100} {
		if _, err := readBytes(t, whole[:n], DefaultLimits); err == nil || !strings.Contains(err.Error(), "osv-test") {
			t.Errorf("truncated to %d bytes: err %v, want an error naming the source", n, err)
		}
	}
}

// TestReadZipBadRecords mixes real records with broken ones: each broken
// one is reported by name, the rest kept.
func TestReadZipBadRecords(t *testing.T) {
	files := goRecords(t, 3)
	files = append(files,
		[2]string{"UNKNOWN-1.json", strings.Replace(files[0][1], `"ecosystem": "Go"`, `"ecosystem": "Gopher"`, 1)},
		[2]string{"BADVER-1.json", strings.Replace(strings.Replace(files[1][1], `"fixed": "`, `"fixed": "x`, 1), files[1][0][:len(files[1][0])-5], "GO-BAD-1", 1)},
		[2]string{"NOTJSON.json", `{"id": "GO-X", `},
		[2]string{"README.md", "not a record"},
		[2]string{"dup.json", files[2][1]},
	)
	if !strings.Contains(files[3][1], "Gopher") || !strings.Contains(files[4][1], `"fixed": "x`) {
		t.Fatal("the test's record edits did not apply")
	}
	fd, err := readBytes(t, buildZip(t, files), DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	if len(fd.Advisories) != 3 {
		t.Errorf("%d advisories kept, want the 3 good ones", len(fd.Advisories))
	}
	want := map[string]error{"UNKNOWN-1.json": ErrUnknownEcosystem, "BADVER-1.json": ErrBadVersion, "NOTJSON.json": ErrInvalid, "dup.json": ErrInvalid}
	if len(fd.Rejected) != len(want) {
		t.Errorf("rejected %v", fd.Rejected)
	}
	for _, re := range fd.Rejected {
		if re.Feed != "osv-test" || want[re.Record] == nil || !errors.Is(re, want[re.Record]) {
			t.Errorf("rejection %v", re)
		}
	}
}

// TestReadZipCorruptEntry damages the compressed bytes of one entry of a
// valid archive: that record is rejected, the others read.
func TestReadZipCorruptEntry(t *testing.T) {
	files := goRecords(t, 3)
	b := buildZip(t, files)
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	off, err := zr.File[1].DataOffset()
	if err != nil {
		t.Fatal(err)
	}
	for i := off + 10; i < off+40; i++ {
		b[i] ^= 0x5a
	}
	fd, err := readBytes(t, b, DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	if len(fd.Advisories) != 2 || len(fd.Rejected) != 1 || fd.Rejected[0].Record != files[1][0] {
		t.Errorf("%d advisories, rejected %v", len(fd.Advisories), fd.Rejected)
	}
}

func TestReadZipBomb(t *testing.T) {
	files := goRecords(t, 2)
	// 64 MiB of spaces compress to about 64 KiB.
	bomb := `{"id":"GO-BOMB","details":"` + strings.Repeat(" ", 64<<20) + `"}`
	b := buildZip(t, append(files, [2]string{"GO-BOMB.json", bomb}))
	if len(b) > 1<<20 {
		t.Fatalf("the bomb is %d bytes compressed", len(b))
	}
	lim := Limits{MaxRecordSize: 1 << 20, MaxTotalSize: 1 << 30, MaxRecords: 100}
	fd, err := readBytes(t, b, lim)
	if err != nil {
		t.Fatal(err)
	}
	if len(fd.Advisories) != 2 || len(fd.Rejected) != 1 || !errors.Is(fd.Rejected[0], ErrTooLarge) {
		t.Errorf("%d advisories, rejected %v", len(fd.Advisories), fd.Rejected)
	}
	// Over the total: the feed as a whole is refused.
	lim = Limits{MaxRecordSize: 128 << 20, MaxTotalSize: 8 << 20, MaxRecords: 100}
	if _, err := readBytes(t, b, lim); !errors.Is(err, ErrTooLarge) {
		t.Errorf("total over the cap: err %v", err)
	}
	lim = Limits{MaxRecordSize: 1 << 20, MaxTotalSize: 1 << 30, MaxRecords: 2}
	if _, err := readBytes(t, b, lim); !errors.Is(err, ErrTooLarge) {
		t.Errorf("too many records: err %v", err)
	}
}

func TestReadDir(t *testing.T) {
	dir := t.TempDir()
	outside := t.TempDir()
	files := goRecords(t, 4)
	write := func(p, content string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(dir, files[0][0]), files[0][1])
	write(filepath.Join(dir, "2020", files[1][0]), files[1][1])
	write(filepath.Join(dir, "2020", "deep", files[2][0]), files[2][1])
	write(filepath.Join(dir, "notes.txt"), "not a record")
	write(filepath.Join(dir, ".git", "x.json"), "{}")
	write(filepath.Join(outside, files[3][0]), files[3][1])
	if err := os.Symlink(filepath.Join(outside, files[3][0]), filepath.Join(dir, "escape.json")); err != nil {
		t.Fatal(err)
	}
	fd, err := ReadPath(context.Background(), dir, "osv-dir", DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	if len(fd.Advisories) != 3 || len(fd.Rejected) != 0 {
		t.Errorf("%d advisories, rejected %v", len(fd.Advisories), fd.Rejected)
	}
}

func TestReadRecordsSingleAndArray(t *testing.T) {
	fd, err := ReadPath(context.Background(), testutil.Fixture(t, "feeds/osv/records/DSA-3029-1.json"), "osv-Debian", DefaultLimits)
	if err != nil || len(fd.Advisories) != 1 || fd.Advisories[0].ID != "DSA-3029-1" {
		t.Fatalf("single record: %v %+v", err, fd)
	}
	files := goRecords(t, 2)
	arr := "[" + files[0][1] + "," + files[1][1] + `,{"id":""}]`
	fd, err = ReadRecords([]byte(arr), "list.json", "osv-Go")
	if err != nil || len(fd.Advisories) != 2 || len(fd.Rejected) != 1 || fd.Rejected[0].Record != "list.json[2]" {
		t.Fatalf("array: %v %+v", err, fd)
	}
}

// TestFeedOverHTTP serves the real Go all.zip from a local server with an
// ETag: the first fetch reads it, the second learns it is unchanged; a
// server answering 500 makes the fetch fail, naming the feed.
func TestFeedOverHTTP(t *testing.T) {
	zipPath := testutil.Fixture(t, "feeds/osv/Go/all.zip")
	var fail bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if fail {
			http.Error(w, "upstream broke", http.StatusInternalServerError)
			return
		}
		w.Header().Set("ETag", `"go-all-1"`)
		if r.Header.Get("If-None-Match") == `"go-all-1"` {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		http.ServeFile(w, r, zipPath)
	}))
	defer srv.Close()
	client := fetch.New(fetch.Options{TempDir: t.TempDir(), Retries: 1, Backoff: time.Millisecond, MaxBackoff: time.Millisecond})
	feed := NewFeed("osv-Go", srv.URL+"/Go/all.zip", client, DefaultLimits)
	ctx := context.Background()
	fd, state, err := feed.Fetch(ctx, vulndb.FetchState{})
	if err != nil {
		t.Fatal(err)
	}
	if len(fd.Advisories) != 4291 || state.ETag != `"go-all-1"` {
		t.Errorf("%d advisories, state %+v", len(fd.Advisories), state)
	}
	if _, _, err := feed.Fetch(ctx, state); !errors.Is(err, vulndb.ErrNotModified) {
		t.Errorf("second fetch: %v, want ErrNotModified", err)
	}
	fail = true
	if _, _, err := feed.Fetch(ctx, vulndb.FetchState{}); err == nil || !strings.Contains(err.Error(), "500") {
		t.Errorf("fetch from a failing server: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	for _, name := range []string{"GHSA-jfh8-c2jp-5v3q.json", "USN-5192-1.json", "DSA-3029-1.json", "UBUNTU-CVE-2025-38094.json"} {
		b, err := os.ReadFile(testutil.Fixture(f, "feeds/osv/records/"+name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, r := range goRecords(f, 5) {
		f.Add([]byte(r[1]))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := Parse(data, "fuzz")
		if err != nil {
			if !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrUnknownEcosystem) && !errors.Is(err, ErrBadVersion) {
				t.Fatalf("error %v wraps none of the package's errors", err)
			}
			return
		}
		if a.ID == "" || a.Source != "fuzz" {
			t.Fatalf("accepted advisory %+v", a)
		}
		for _, af := range a.Affected {
			for _, r := range af.Ranges {
				if len(r.Events) == 0 {
					t.Fatal("accepted a range without events")
				}
			}
		}
	})
}

func FuzzReadZip(f *testing.F) {
	files := goRecords(f, 2)
	f.Add(buildZip(f, files))
	f.Add(buildZip(f, [][2]string{{"a.json", `{"id":"X-1"}`}}))
	f.Add([]byte(`[{"id":"X-1"}]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		lim := Limits{MaxRecordSize: 1 << 20, MaxTotalSize: 4 << 20, MaxRecords: 1000}
		fd, err := ReadReaderAt(context.Background(), bytes.NewReader(data), int64(len(data)), "fuzz.zip", "fuzz", lim)
		if err != nil {
			return
		}
		for _, re := range fd.Rejected {
			if re.Feed != "fuzz" || re.Record == "" {
				t.Fatalf("rejection without feed or record: %+v", re)
			}
		}
	})
}

// zipContents maps each entry of a zip fixture to its bytes.
func zipContents(t *testing.T, rel string) map[string]string {
	t.Helper()
	zr, err := zip.OpenReader(testutil.Fixture(t, rel))
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	out := map[string]string{}
	for _, f := range zr.File {
		rc, _ := f.Open()
		var b bytes.Buffer
		b.ReadFrom(rc)
		rc.Close()
		out[f.Name] = b.String()
	}
	return out
}

// TestFeedSkipsUnchangedEntries serves the older Go archive, then the newer
// one: the second fetch reads only the entries whose bytes differ and
// reports the others unchanged; with a state that is not its own it reads
// everything.
func TestFeedSkipsUnchangedEntries(t *testing.T) {
	oldZip, newZip := testutil.Fixture(t, "feeds/osv/Go/all-2026-06-26.zip"), testutil.Fixture(t, "feeds/osv/Go/all.zip")
	oldC, newC := zipContents(t, "feeds/osv/Go/all-2026-06-26.zip"), zipContents(t, "feeds/osv/Go/all.zip")
	same := 0
	for name, b := range newC {
		if oldC[name] == b {
			same++
		}
	}
	serve := oldZip
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := os.ReadFile(serve)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		w.Write(b)
	}))
	defer srv.Close()
	client := fetch.New(fetch.Options{TempDir: t.TempDir(), Retries: -1})
	feed := NewFeed("osv-Go", srv.URL+"/all.zip", client, DefaultLimits)
	ctx := context.Background()
	fd, state, err := feed.Fetch(ctx, vulndb.FetchState{})
	if err != nil || len(fd.Advisories) != 3786 || len(fd.Unchanged) != 0 {
		t.Fatalf("first fetch: %v, %d read, %d unchanged", err, len(fd.Advisories), len(fd.Unchanged))
	}
	serve = newZip
	fd2, _, err := feed.Fetch(ctx, state)
	if err != nil {
		t.Fatal(err)
	}
	if len(fd2.Unchanged) != same || len(fd2.Advisories) != len(newC)-same {
		t.Errorf("second fetch: %d read, %d unchanged; the archives share %d identical entries of %d", len(fd2.Advisories), len(fd2.Unchanged), same, len(newC))
	}
	// Another state (say, the database was restored): everything is read.
	fd3, _, err := feed.Fetch(ctx, vulndb.FetchState{Checksum: "other"})
	if err != nil || len(fd3.Advisories) != 4291 || len(fd3.Unchanged) != 0 {
		t.Errorf("fetch with a foreign state: %v, %d read, %d unchanged", err, len(fd3.Advisories), len(fd3.Unchanged))
	}
}

package vulndb_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/drydockhq/drydock/internal/store"
	"github.com/drydockhq/drydock/internal/store/storetest"
	"github.com/drydockhq/drydock/internal/vulndb"
)

// docs returns every advisory of the current generation as JSON, by
// source and id.
func docs(t *testing.T, db *vulndb.DB) map[string]string {
	t.Helper()
	out := map[string]string{}
	if _, err := db.ForEachAdvisory(context.Background(), func(a *vulndb.Advisory) error {
		out[a.Source+"/"+a.ID] = mustJSON(a)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := db.ForEachEnrichment(context.Background(), func(source string, e *vulndb.Enrichment) error {
		out["enrichment/"+source+"/"+e.CVE] = mustJSON(e)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestExportImport exports a generation made of real feeds from one
// backend and imports it into the other: the copy holds the same records;
// a damaged or truncated file is refused and changes nothing.
func TestExportImport(t *testing.T) {
	goFeed := readOSV(t, "feeds/osv/Go/all.zip", "osv-Go")
	almaFeed := readOSV(t, "feeds/osv/AlmaLinux/sample.zip", "osv-AlmaLinux")
	kev := &vulndb.FeedData{Enrichment: []vulndb.Enrichment{
		{CVE: "CVE-2021-44228", KEV: &vulndb.KEV{VulnerabilityName: "Apache Log4j2 Remote Code Execution Vulnerability"}},
	}}
	ctx := context.Background()
	src := openDB(t, storetest.SQLite(t))
	apply(t, src,
		vulndb.SourceUpdate{Name: "osv-Go", Kind: "osv", URL: "https://example.invalid/Go/all.zip", Data: cloneFeed(goFeed)},
		vulndb.SourceUpdate{Name: "osv-AlmaLinux", Kind: "osv", Data: cloneFeed(almaFeed)},
		vulndb.SourceUpdate{Name: "kev", Kind: "kev", Data: kev},
	)
	want := docs(t, src)
	path := filepath.Join(t.TempDir(), "vulndb.export")
	sum, fileSum, err := src.ExportFile(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Advisories != 4291+284 || sum.Enrichment != 1 || sum.Generation != 1 {
		t.Errorf("export summary %+v", sum)
	}
	side, err := os.ReadFile(path + ".sha256")
	if err != nil || !strings.HasPrefix(string(side), fileSum+"  vulndb.export") {
		t.Errorf("checksum file %q, %v", side, err)
	}
	whole, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}

	storetest.Each(t, func(t *testing.T, st *store.DB) {
		dst := openDB(t, st)
		// Damaged copies first: each refused, nothing applied.
		raw := gunzip(t, whole)
		for name, bad := range map[string][]byte{
			"truncated gzip":     whole[:len(whole)*2/3],
			"flipped record":     regzip(t, bytes.Replace(raw, []byte(`"GO-2020-0001"`), []byte(`"GO-2020-0009"`), 1)),
			"no trailer":         regzip(t, raw[:bytes.LastIndex(raw[:len(raw)-1], []byte("\n"))+1]),
			"missing record":     regzip(t, dropLine(raw, 5)),
			"not an export":      regzip(t, []byte("{\"id\":\"GO-1\"}\n")),
			"data after trailer": regzip(t, append(append([]byte(nil), raw...), []byte("{}\n")...)),
		} {
			_, _, err := vulndb.ReadExport(bytes.NewReader(bad))
			if !errors.Is(err, vulndb.ErrBadExport) {
				t.Errorf("%s: err %v, want ErrBadExport", name, err)
			}
		}
		if g, _ := dst.Generation(ctx); g != 0 {
			t.Fatalf("generation %d after refused imports", g)
		}
		head, updates, err := vulndb.ReadExport(bytes.NewReader(whole))
		if err != nil {
			t.Fatal(err)
		}
		if head.Generation != 1 || len(updates) != 3 {
			t.Errorf("header %+v, %d sources", head, len(updates))
		}
		res := apply(t, dst, updates...)
		if res.Generation != 1 || res.ChangeSet.Counts().Added != 4291+284 {
			t.Errorf("import: %+v", res.ChangeSet.Counts())
		}
		got := docs(t, dst)
		if len(got) != len(want) {
			t.Fatalf("%d records imported, %d exported", len(got), len(want))
		}
		for k, v := range want {
			if got[k] != v {
				t.Fatalf("%s differs after the round trip", k)
			}
		}
		// Importing the same export again changes nothing.
		_, updates, _ = vulndb.ReadExport(bytes.NewReader(whole))
		if res := apply(t, dst, updates...); res.Generation != 0 {
			t.Errorf("second import made generation %d", res.Generation)
		}
	})
}

func gunzip(t *testing.T, b []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func regzip(t *testing.T, b []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	zw.Write(b)
	zw.Close()
	return out.Bytes()
}

func dropLine(b []byte, n int) []byte {
	lines := bytes.SplitAfter(b, []byte("\n"))
	return bytes.Join(append(lines[:n:n], lines[n+1:]...), nil)
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

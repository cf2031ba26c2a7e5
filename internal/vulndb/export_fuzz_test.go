package vulndb_test

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/drydockhq/drydock/internal/store/storetest"
	"github.com/drydockhq/drydock/internal/vulndb"
)

// FuzzReadExport feeds damaged export files to the reader: it must refuse
// them with ErrBadExport (never panic, never accept a file whose checksum
// does not hold).
func FuzzReadExport(f *testing.F) {
	db, err := vulndb.Open(context.Background(), storetest.SQLite(f))
	if err != nil {
		f.Fatal(err)
	}
	fd := readOSV(f, "feeds/osv/records", "osv-records")
	if _, err := db.Apply(context.Background(), []vulndb.SourceUpdate{
		{Name: "osv-records", Data: fd},
		{Name: "kev", Data: &vulndb.FeedData{Enrichment: []vulndb.Enrichment{{CVE: "CVE-2021-44228", KEV: &vulndb.KEV{VulnerabilityName: "Log4j"}}}}},
	}); err != nil {
		f.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := db.Export(context.Background(), &buf); err != nil {
		f.Fatal(err)
	}
	good := buf.Bytes()
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add([]byte{0x1f, 0x8b})
	f.Fuzz(func(t *testing.T, data []byte) {
		head, updates, err := vulndb.ReadExport(bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, vulndb.ErrBadExport) {
				t.Fatalf("error %v is not ErrBadExport", err)
			}
			return
		}
		if head == nil || head.Format != vulndb.ExportFormat {
			t.Fatalf("accepted without a header: %+v", head)
		}
		for _, u := range updates {
			if u.Data == nil {
				t.Fatalf("source %s without data", u.Name)
			}
		}
	})
}

package osv

import (
	"archive/zip"
	"encoding/json"
	"io"
	"testing"

	"github.com/ossf/osv-schema/bindings/go/osvschema"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/drydockhq/drydock/internal/testutil"
)

// zipRecords returns the raw records of an OSV zip fixture.
func zipRecords(tb testing.TB, rel string) [][]byte {
	tb.Helper()
	zr, err := zip.OpenReader(testutil.Fixture(tb, rel))
	if err != nil {
		tb.Fatal(err)
	}
	defer zr.Close()
	var out [][]byte
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			tb.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// BenchmarkDecode compares decoding the real Go all.zip records with
// encoding/json into this package's structs against the official OSV
// bindings (protobuf messages through protojson), the choice recorded in
// the package comment. Decoding only: mapping onto vulndb.Advisory is
// needed either way.
func BenchmarkDecode(b *testing.B) {
	recs := zipRecords(b, "feeds/osv/Go/all.zip")
	var size int64
	for _, r := range recs {
		size += int64(len(r))
	}
	b.Run("encoding-json", func(b *testing.B) {
		b.SetBytes(size)
		b.ReportAllocs()
		for b.Loop() {
			for _, r := range recs {
				var rec record
				if err := json.Unmarshal(r, &rec); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("protojson-bindings", func(b *testing.B) {
		b.SetBytes(size)
		b.ReportAllocs()
		opts := protojson.UnmarshalOptions{DiscardUnknown: true}
		for b.Loop() {
			for _, r := range recs {
				var v osvschema.Vulnerability
				if err := opts.Unmarshal(r, &v); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("parse-and-map", func(b *testing.B) {
		b.SetBytes(size)
		b.ReportAllocs()
		for b.Loop() {
			for _, r := range recs {
				if _, err := Parse(r, "osv-Go"); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}

// TestBindingsRefuseRealRecords documents the second reason for not using
// the protobuf bindings: protojson refuses real published records that
// encoding/json reads (timestamps in the PyPI advisory database's
// space-separated form), and turns ecosystem_specific and database_specific
// into protobuf Structs whose JSON is not the published bytes.
func TestBindingsRefuseRealRecords(t *testing.T) {
	refused := 0
	for _, r := range zipRecords(t, "feeds/osv/PyPI/sample.zip") {
		var v osvschema.Vulnerability
		if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(r, &v); err != nil {
			refused++
			if _, err := Parse(r, "osv-PyPI"); err != nil {
				t.Errorf("Parse refuses a record too: %v", err)
			}
		}
	}
	if refused == 0 {
		t.Error("the bindings read every PyPI sample record; the package comment's claim is stale")
	}
	t.Logf("protojson refused %d PyPI sample records that Parse reads", refused)
}

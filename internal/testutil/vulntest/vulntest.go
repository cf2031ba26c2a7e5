// Package vulntest gives tests real vulnerability data from the shared
// fixtures, parsed by Drydock's feed adapters, ready to apply to a
// vulnerability database.
package vulntest

import (
	"os"
	"testing"

	"github.com/drydockhq/drydock/internal/testutil"
	"github.com/drydockhq/drydock/internal/vulndb"
	"github.com/drydockhq/drydock/internal/vulndb/feeds/alpine"
)

// AlpineSecdbPath is the Alpine 3.10 secdb (main) of the fixtures: it
// lists the OpenSSL fixes up to 1.1.1d-r0 that the alpine:3.10 image of
// internal/testutil/imagetest is scanned against.
const AlpineSecdbPath = "feeds/alpine-secdb/v3.10/main.yaml"

// AlpineSecdb returns the fixture at AlpineSecdbPath as the complete
// content of a source named alpine-secdb.
func AlpineSecdb(t testing.TB) vulndb.SourceUpdate {
	t.Helper()
	f, err := os.Open(testutil.Fixture(t, AlpineSecdbPath))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	data, err := alpine.Parse(f, "alpine-secdb")
	if err != nil {
		t.Fatal(err)
	}
	return vulndb.SourceUpdate{Name: "alpine-secdb", Kind: "alpine-secdb", Data: data}
}

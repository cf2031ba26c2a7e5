package report_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"github.com/santhosh-tekuri/jsonschema/v6"
	spdxjson "github.com/spdx/tools-golang/json"
	"github.com/spdx/tools-golang/spdxlib"

	"github.com/drydockhq/drydock/internal/index"
	"github.com/drydockhq/drydock/internal/index/apk"
	"github.com/drydockhq/drydock/internal/index/source"
	"github.com/drydockhq/drydock/internal/report"
	"github.com/drydockhq/drydock/internal/testutil"
)

var opts = report.Options{Tool: report.Tool{Name: "drydock", Version: "test"}, Now: time.Unix(1700000000, 0), Serial: "00000000-0000-4000-8000-000000000000"}

// alpine indexes the real Alpine 3.10 docker archive.
func alpine(t *testing.T) []*index.Inventory {
	t.Helper()
	tg, err := source.Parse("docker-archive:" + testutil.Fixture(t, "images/alpine-3.10-docker-archive.tar.gz"))
	if err != nil {
		t.Fatal(err)
	}
	imgs, err := source.Images(context.Background(), tg, source.Options{})
	if err != nil {
		t.Fatal(err)
	}
	inv, err := (&index.Indexer{Catalogers: []index.Cataloger{apk.New()}}).Index(context.Background(), imgs[0])
	if err != nil {
		t.Fatal(err)
	}
	if len(inv.Packages) != 14 {
		t.Fatalf("%d packages", len(inv.Packages))
	}
	return []*index.Inventory{inv}
}

// cyclonedxSchema compiles the official CycloneDX 1.6 JSON schema that
// ships in the cyclonedx-go module.
func cyclonedxSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	out, err := exec.Command(testutil.RequireTool(t, "go"), "list", "-m", "-f", "{{.Dir}}", "github.com/CycloneDX/cyclonedx-go").Output()
	if err != nil {
		t.Fatalf("locate cyclonedx-go: %v", err)
	}
	dir := filepath.Join(strings.TrimSpace(string(out)), "schema")
	c := jsonschema.NewCompiler()
	for file, id := range map[string]string{
		"bom-1.6.schema.json":   "http://cyclonedx.org/schema/bom-1.6.schema.json",
		"spdx.schema.json":      "http://cyclonedx.org/schema/spdx.schema.json",
		"jsf-0.82.schemax.json": "http://cyclonedx.org/schema/jsf-0.82.schema.json",
	} {
		f, err := os.Open(filepath.Join(dir, file))
		if err != nil {
			t.Fatal(err)
		}
		doc, err := jsonschema.UnmarshalJSON(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		if err := c.AddResource(id, doc); err != nil {
			t.Fatal(err)
		}
	}
	s, err := c.Compile("http://cyclonedx.org/schema/bom-1.6.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func props(c cdx.Component) map[string]string {
	m := map[string]string{}
	if c.Properties != nil {
		for _, p := range *c.Properties {
			m[p.Name] = p.Value
		}
	}
	return m
}

func TestCycloneDX(t *testing.T) {
	invs := alpine(t)
	var buf bytes.Buffer
	if err := report.WriteCycloneDX(&buf, "alpine", invs, opts); err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if err := cyclonedxSchema(t).Validate(doc); err != nil {
		t.Fatalf("the BOM does not validate against the CycloneDX 1.6 schema: %v", err)
	}
	var bom cdx.BOM
	if err := cdx.NewBOMDecoder(bytes.NewReader(buf.Bytes()), cdx.BOMFileFormatJSON).Decode(&bom); err != nil {
		t.Fatal(err)
	}
	if bom.SpecVersion != cdx.SpecVersion1_6 || bom.Metadata.Component.Type != cdx.ComponentTypeContainer {
		t.Fatalf("spec %v, subject %+v", bom.SpecVersion, bom.Metadata.Component)
	}
	byPURL := map[string]index.Package{}
	for _, p := range invs[0].Packages {
		byPURL[p.PURL] = p
	}
	n := 0
	for _, c := range *bom.Components {
		if c.Type == cdx.ComponentTypeOS {
			if c.Name != "alpine" || !strings.HasPrefix(c.Version, "3.10.") {
				t.Errorf("os component %+v", c)
			}
			continue
		}
		p, ok := byPURL[c.PackageURL]
		if !ok {
			t.Errorf("component %s is not in the inventory", c.PackageURL)
			continue
		}
		n++
		pr := props(c)
		if pr[report.PropLayer] != p.Layer || pr[report.PropPath] != "lib/apk/db/installed" || c.Version != p.Version {
			t.Errorf("%s: %v", c.Name, pr)
		}
		if (p.Name == "libssl1.1") != (pr[report.PropSourceName] == "openssl") && p.Name == "libssl1.1" {
			t.Errorf("libssl1.1 source: %v", pr)
		}
	}
	if n != len(invs[0].Packages) {
		t.Errorf("%d package components for %d packages", n, len(invs[0].Packages))
	}

	// Several platforms: one container component each, packages nested.
	buf.Reset()
	two := []*index.Inventory{invs[0], invs[0]}
	if err := report.WriteCycloneDX(&buf, "alpine", two, opts); err != nil {
		t.Fatal(err)
	}
	doc, _ = jsonschema.UnmarshalJSON(bytes.NewReader(buf.Bytes()))
	if err := cyclonedxSchema(t).Validate(doc); err != nil {
		t.Fatalf("multi-image BOM: %v", err)
	}
	var multi cdx.BOM
	if err := cdx.NewBOMDecoder(bytes.NewReader(buf.Bytes()), cdx.BOMFileFormatJSON).Decode(&multi); err != nil {
		t.Fatal(err)
	}
	refs := map[string]bool{}
	var walk func(cs []cdx.Component)
	walk = func(cs []cdx.Component) {
		for _, c := range cs {
			if refs[c.BOMRef] {
				t.Errorf("duplicate bom-ref %s", c.BOMRef)
			}
			refs[c.BOMRef] = true
			if c.Components != nil {
				walk(*c.Components)
			}
		}
	}
	walk(*multi.Components)
	if len(*multi.Components) != 2 || len(refs) != 2*(1+1+14) {
		t.Errorf("%d top components, %d refs", len(*multi.Components), len(refs))
	}
}

func TestSPDX(t *testing.T) {
	invs := alpine(t)
	var buf bytes.Buffer
	if err := report.WriteSPDX(&buf, "alpine", invs, opts); err != nil {
		t.Fatal(err)
	}
	doc, err := spdxjson.Read(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if err := spdxlib.ValidateDocument(doc); err != nil {
		t.Fatal(err)
	}
	if doc.SPDXVersion != "SPDX-2.3" || len(doc.Packages) != 1+1+14 {
		t.Fatalf("%s, %d packages", doc.SPDXVersion, len(doc.Packages))
	}
	described, err := spdxlib.GetDescribedPackageIDs(doc)
	if err != nil || len(described) != 1 {
		t.Fatalf("described %v %v", described, err)
	}
	found := 0
	for _, p := range doc.Packages {
		if len(p.PackageExternalReferences) == 0 {
			continue
		}
		found++
		purl := p.PackageExternalReferences[0].Locator
		var layer, path string
		for _, a := range p.Annotations {
			k, v, _ := strings.Cut(a.AnnotationComment, "=")
			switch k {
			case report.PropLayer:
				layer = v
			case report.PropPath:
				path = v
			}
		}
		if !strings.HasPrefix(purl, "pkg:apk/alpine/") || layer != invs[0].Packages[0].Layer || path != "lib/apk/db/installed" {
			t.Errorf("%s: layer %q path %q", purl, layer, path)
		}
	}
	if found != 14 {
		t.Errorf("%d packages with a purl", found)
	}
	// The raw JSON keeps the annotations inside each package.
	var raw struct {
		Packages []struct {
			Annotations []json.RawMessage `json:"annotations"`
		} `json:"packages"`
	}
	if err := json.Unmarshal(buf.Bytes(), &raw); err != nil || len(raw.Packages[2].Annotations) < 3 {
		t.Errorf("annotations not written: %v", err)
	}
}

func TestTable(t *testing.T) {
	invs := alpine(t)
	var buf bytes.Buffer
	if err := report.WriteTable(&buf, invs); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{"Alpine:v3.10", "libcrypto1.1", "1.1.1d-r2", "/lib/apk/db/installed", "Packages: 14"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}

// Package report writes image inventories for people and other tools:
// CycloneDX 1.6 JSON, SPDX 2.3 JSON and a readable table.
package report

import (
	"fmt"
	"io"
	"strconv"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"github.com/google/uuid"

	"github.com/drydockhq/drydock/internal/index"
)

// Property names Drydock records per component (CycloneDX) and in
// annotations (SPDX).
const (
	PropLayer         = "drydock:layer_digest"
	PropPath          = "drydock:file_path"
	PropType          = "drydock:package_type"
	PropEcosystem     = "drydock:ecosystem"
	PropSourceName    = "drydock:source_name"
	PropSourceVersion = "drydock:source_version"
	PropModularity    = "drydock:modularity_label"
	PropPlatform      = "drydock:platform"
	PropDigest        = "drydock:image_digest"
	PropOSNote        = "drydock:os_note"
)

// Tool names the program that made a document.
type Tool struct {
	Name    string
	Version string
}

// Options tune a document. Zero values mean now and a random serial.
type Options struct {
	Tool Tool
	// Now stamps the document; set it for reproducible output.
	Now time.Time
	// Serial is the CycloneDX serial number / SPDX namespace suffix.
	Serial string
}

func (o Options) now() time.Time {
	if o.Now.IsZero() {
		return time.Now().UTC()
	}
	return o.Now.UTC()
}

func (o Options) serial() string {
	if o.Serial != "" {
		return o.Serial
	}
	return uuid.NewString()
}

// CycloneDXBOM builds a CycloneDX BOM for the images of one target. One
// image is the BOM's subject with its packages as components; several
// (the platforms of one index) are each a container component with their
// packages nested.
func CycloneDXBOM(target string, invs []*index.Inventory, o Options) *cdx.BOM {
	bom := cdx.NewBOM()
	bom.SpecVersion = cdx.SpecVersion1_6
	bom.SerialNumber = "urn:uuid:" + o.serial()
	bom.Metadata = &cdx.Metadata{
		Timestamp: o.now().Format(time.RFC3339),
		Tools: &cdx.ToolsChoice{Components: &[]cdx.Component{{
			Type: cdx.ComponentTypeApplication, Name: o.Tool.Name, Version: o.Tool.Version,
		}}},
	}
	refs := map[string]int{}
	if len(invs) == 1 {
		subject, comps := imageComponent(target, invs[0], refs)
		bom.Metadata.Component = subject
		bom.Components = &comps
		return bom
	}
	bom.Metadata.Component = &cdx.Component{BOMRef: "image", Type: cdx.ComponentTypeContainer, Name: target}
	var all []cdx.Component
	for _, inv := range invs {
		subject, comps := imageComponent(target, inv, refs)
		subject.Components = &comps
		all = append(all, *subject)
	}
	bom.Components = &all
	return bom
}

// WriteCycloneDX writes the BOM as CycloneDX 1.6 JSON.
func WriteCycloneDX(w io.Writer, target string, invs []*index.Inventory, o Options) error {
	enc := cdx.NewBOMEncoder(w, cdx.BOMFileFormatJSON)
	enc.SetPretty(true).SetEscapeHTML(false)
	if err := enc.EncodeVersion(CycloneDXBOM(target, invs, o), cdx.SpecVersion1_6); err != nil {
		return fmt.Errorf("write CycloneDX: %w", err)
	}
	return nil
}

// uniqueRef returns base, or base with a counter when base was used.
func uniqueRef(refs map[string]int, base string) string {
	n := refs[base]
	refs[base] = n + 1
	if n == 0 {
		return base
	}
	return base + "#" + strconv.Itoa(n)
}

func imageComponent(target string, inv *index.Inventory, refs map[string]int) (*cdx.Component, []cdx.Component) {
	name := inv.Name
	if name == "" {
		name = target
	}
	subject := &cdx.Component{
		BOMRef:  uniqueRef(refs, "image:"+inv.Digest+":"+inv.Platform),
		Type:    cdx.ComponentTypeContainer,
		Name:    name,
		Version: inv.Digest,
	}
	var props []cdx.Property
	if inv.Platform != "" {
		props = append(props, cdx.Property{Name: PropPlatform, Value: inv.Platform})
	}
	if inv.Digest != "" {
		props = append(props, cdx.Property{Name: PropDigest, Value: inv.Digest})
	}
	if inv.OSNote != "" {
		props = append(props, cdx.Property{Name: PropOSNote, Value: inv.OSNote})
	}
	if len(props) > 0 {
		subject.Properties = &props
	}
	var comps []cdx.Component
	if inv.OS != nil {
		comps = append(comps, cdx.Component{
			BOMRef:      uniqueRef(refs, "os:"+inv.OS.ID+"@"+inv.OS.VersionID),
			Type:        cdx.ComponentTypeOS,
			Name:        inv.OS.ID,
			Version:     inv.OS.VersionID,
			Description: inv.OS.Name,
		})
	}
	for i := range inv.Packages {
		comps = append(comps, packageComponent(&inv.Packages[i], refs))
	}
	return subject, comps
}

func packageComponent(p *index.Package, refs map[string]int) cdx.Component {
	ref := p.PURL
	if ref == "" {
		ref = string(p.Type) + ":" + p.Name + "@" + p.Version
	}
	c := cdx.Component{
		BOMRef:     uniqueRef(refs, ref),
		Type:       cdx.ComponentTypeLibrary,
		Name:       p.Name,
		Version:    p.Version,
		PackageURL: p.PURL,
	}
	if len(p.Licenses) > 0 {
		ls := make(cdx.Licenses, 0, len(p.Licenses))
		for _, l := range p.Licenses {
			ls = append(ls, cdx.LicenseChoice{License: &cdx.License{Name: l}})
		}
		c.Licenses = &ls
	}
	props := []cdx.Property{{Name: PropType, Value: string(p.Type)}}
	add := func(name, v string) {
		if v != "" {
			props = append(props, cdx.Property{Name: name, Value: v})
		}
	}
	add(PropEcosystem, p.Ecosystem)
	add(PropLayer, p.Layer)
	add(PropPath, p.Path)
	if p.SourceName != "" && (p.SourceName != p.Name || p.SourceVersion != p.Version) {
		add(PropSourceName, p.SourceName)
		add(PropSourceVersion, p.SourceVersion)
	}
	add(PropModularity, p.Modularity)
	c.Properties = &props
	if p.Path != "" {
		c.Evidence = &cdx.Evidence{Occurrences: &[]cdx.EvidenceOccurrence{{Location: "/" + p.Path}}}
	}
	return c
}

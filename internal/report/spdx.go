package report

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spdx/tools-golang/json"
	"github.com/spdx/tools-golang/spdx"
	"github.com/spdx/tools-golang/spdx/v2/common"
	"github.com/spdx/tools-golang/spdxlib"

	"github.com/drydockhq/drydock/internal/index"
)

const noAssertion = "NOASSERTION"

// SPDXDocument builds an SPDX 2.3 document: the document describes one
// package per image (platform), which contains its packages. Each
// package's layer digest and declaring file are recorded as annotations
// and in its source information.
func SPDXDocument(target string, invs []*index.Inventory, o Options) (*spdx.Document, error) {
	now := o.now().Format(time.RFC3339)
	doc := &spdx.Document{
		SPDXVersion:       spdx.Version,
		DataLicense:       spdx.DataLicense,
		SPDXIdentifier:    "DOCUMENT",
		DocumentName:      target,
		DocumentNamespace: "https://drydock.invalid/spdx/" + o.serial(),
		CreationInfo: &spdx.CreationInfo{
			Creators: []common.Creator{{CreatorType: "Tool", Creator: o.Tool.Name + "-" + o.Tool.Version}},
			Created:  now,
		},
	}
	annotator := common.Annotator{AnnotatorType: "Tool", Annotator: o.Tool.Name + "-" + o.Tool.Version}
	annotate := func(name, v string) spdx.Annotation {
		return spdx.Annotation{Annotator: annotator, AnnotationDate: now, AnnotationType: "OTHER", AnnotationComment: name + "=" + v}
	}
	n := 0
	nextID := func(kind string) common.ElementID {
		n++
		return common.ElementID(kind + "-" + strconv.Itoa(n))
	}
	for _, inv := range invs {
		name := inv.Name
		if name == "" {
			name = target
		}
		img := &spdx.Package{
			PackageSPDXIdentifier:   nextID("Image"),
			PackageName:             name,
			PackageVersion:          inv.Digest,
			PackageDownloadLocation: noAssertion,
			PrimaryPackagePurpose:   "CONTAINER",
			PackageComment:          platformComment(inv),
		}
		doc.Packages = append(doc.Packages, img)
		doc.Relationships = append(doc.Relationships, &spdx.Relationship{
			RefA: common.MakeDocElementID("", "DOCUMENT"), RefB: common.MakeDocElementID("", string(img.PackageSPDXIdentifier)),
			Relationship: common.TypeRelationshipDescribe,
		})
		if inv.OS != nil {
			osPkg := &spdx.Package{
				PackageSPDXIdentifier:   nextID("OS"),
				PackageName:             inv.OS.ID,
				PackageVersion:          inv.OS.VersionID,
				PackageDownloadLocation: noAssertion,
				PrimaryPackagePurpose:   "OPERATING-SYSTEM",
				PackageDescription:      inv.OS.Name,
			}
			doc.Packages = append(doc.Packages, osPkg)
			doc.Relationships = append(doc.Relationships, contains(img, osPkg))
		}
		for i := range inv.Packages {
			p := &inv.Packages[i]
			sp := &spdx.Package{
				PackageSPDXIdentifier:   nextID("Package"),
				PackageName:             p.Name,
				PackageVersion:          p.Version,
				PackageDownloadLocation: noAssertion,
				PrimaryPackagePurpose:   "LIBRARY",
				PackageLicenseDeclared:  noAssertion,
				PackageLicenseComments:  licenseComment(p.Licenses),
				PackageLicenseConcluded: noAssertion,
				PackageCopyrightText:    noAssertion,
				PackageSourceInfo:       sourceInfo(p),
			}
			if p.PURL != "" {
				sp.PackageExternalReferences = []*spdx.PackageExternalReference{{
					Category: common.CategoryPackageManager, RefType: common.TypePackageManagerPURL, Locator: p.PURL,
				}}
			}
			sp.Annotations = append(sp.Annotations, annotate(PropType, string(p.Type)))
			for _, kv := range [][2]string{{PropEcosystem, p.Ecosystem}, {PropLayer, p.Layer}, {PropPath, p.Path}, {PropModularity, p.Modularity}} {
				if kv[1] != "" {
					sp.Annotations = append(sp.Annotations, annotate(kv[0], kv[1]))
				}
			}
			if p.SourceName != "" && (p.SourceName != p.Name || p.SourceVersion != p.Version) {
				sp.Annotations = append(sp.Annotations, annotate(PropSourceName, p.SourceName), annotate(PropSourceVersion, p.SourceVersion))
			}
			doc.Packages = append(doc.Packages, sp)
			doc.Relationships = append(doc.Relationships, contains(img, sp))
		}
	}
	if err := spdxlib.ValidateDocument(doc); err != nil {
		return nil, fmt.Errorf("SPDX document does not validate: %w", err)
	}
	return doc, nil
}

// WriteSPDX writes the SPDX 2.3 JSON document.
func WriteSPDX(w io.Writer, target string, invs []*index.Inventory, o Options) error {
	doc, err := SPDXDocument(target, invs, o)
	if err != nil {
		return err
	}
	if err := json.Write(doc, w, json.Indent("  ")); err != nil {
		return fmt.Errorf("write SPDX: %w", err)
	}
	return nil
}

func contains(a, b *spdx.Package) *spdx.Relationship {
	return &spdx.Relationship{
		RefA:         common.MakeDocElementID("", string(a.PackageSPDXIdentifier)),
		RefB:         common.MakeDocElementID("", string(b.PackageSPDXIdentifier)),
		Relationship: common.TypeRelationshipContains,
	}
}

func platformComment(inv *index.Inventory) string {
	s := ""
	if inv.Platform != "" {
		s = "platform " + inv.Platform
	}
	if inv.OSNote != "" {
		if s != "" {
			s += "; "
		}
		s += inv.OSNote
	}
	return s
}

func sourceInfo(p *index.Package) string {
	s := "declared by /" + p.Path
	if p.Layer != "" {
		s += " in layer " + p.Layer
	}
	if p.SourceName != "" && (p.SourceName != p.Name || p.SourceVersion != p.Version) {
		s += "; built from source package " + p.SourceName
		if p.SourceVersion != "" {
			s += " " + p.SourceVersion
		}
	}
	return s
}

// licenseComment records the license fields as the package metadata
// states them; they are often free text rather than SPDX expressions, so
// they are not asserted as the declared license.
func licenseComment(ls []string) string {
	if len(ls) == 0 {
		return ""
	}
	return "as stated by the package metadata: " + strings.Join(ls, "; ")
}

// Package csaf reads Red Hat's CSAF 2.0 documents: the per-CVE VEX files
// (csaf_vex) and the security advisories (csaf_security_advisory, RHSA).
//
// Mapping: one advisory per document vulnerability for VEX (ID = the CVE,
// as Red Hat's tracking id), one advisory per RHSA document (ID =
// "RHSA-2024:1431", the CVEs as aliases). The product tree resolves each
// product id of the product status to an RPM (from its purl) and a
// platform (from its CPE):
//   - "fixed" → StatusFixed with an ECOSYSTEM range fixed at
//     epoch:version-release (the vendor_fix remediation's errata is kept in
//     ecosystem_specific and as a related id);
//   - "known_affected" → StatusUnfixed, or StatusWillNotFix when the
//     remediation is "no_fix_planned" ("none_available": unfixed);
//   - "known_not_affected" → StatusNotAffected.
//
// Packages are keyed by source RPM name: the binary RPMs of a platform
// that share the version of exactly one source RPM become its BinaryNames;
// a binary RPM that cannot be tied to a source stays on its own with
// BinaryNames = [its name]. Module streams ("ruby:3.1") are kept apart and
// named in ecosystem_specific. The ecosystem is "Red Hat:<major>" for
// RHEL's main streams (cpe:/o:redhat:enterprise_linux:9::baseos) and for
// layered products built for a RHEL release ("::el8"), and "Red
// Hat:<major.minor>" for the extended-support streams (rhel_eus, rhel_aus,
// rhel_e4s, rhel_tus, ...); the CPEs are listed in ecosystem_specific.
// The threats of category "impact" give the vendor severity (lower case:
// critical, important, moderate, low); scores give CVSS vectors with Red
// Hat's base scores. Products that are not RPMs (container images) are
// skipped.
package csaf

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/google/osv-scalibr/semantic"
	"github.com/package-url/packageurl-go"

	"github.com/drydockhq/drydock/internal/vulndb"
)

// EcosystemPrefix starts the ecosystem of every Affected entry.
const EcosystemPrefix = "Red Hat:"

type document struct {
	Document struct {
		Category          string `json:"category"`
		CSAFVersion       string `json:"csaf_version"`
		Title             string `json:"title"`
		AggregateSeverity *struct {
			Text string `json:"text"`
		} `json:"aggregate_severity"`
		Tracking struct {
			ID                 string `json:"id"`
			InitialReleaseDate string `json:"initial_release_date"`
			CurrentReleaseDate string `json:"current_release_date"`
		} `json:"tracking"`
		References []reference `json:"references"`
	} `json:"document"`
	ProductTree struct {
		Branches         []branch  `json:"branches"`
		FullProductNames []product `json:"full_product_names"`
		Relationships    []struct {
			FullProductName product `json:"full_product_name"`
			ProductRef      string  `json:"product_reference"`
			RelatesTo       string  `json:"relates_to_product_reference"`
		} `json:"relationships"`
	} `json:"product_tree"`
	Vulnerabilities []json.RawMessage `json:"vulnerabilities"`
}

type reference struct {
	Category string `json:"category"`
	URL      string `json:"url"`
}

type branch struct {
	Product  *product `json:"product"`
	Branches []branch `json:"branches"`
}

type product struct {
	Name      string `json:"name"`
	ProductID string `json:"product_id"`
	Helper    *struct {
		CPE  string `json:"cpe"`
		PURL string `json:"purl"`
	} `json:"product_identification_helper"`
}

type vulnerability struct {
	CVE   string `json:"cve"`
	Title string `json:"title"`
	Notes []struct {
		Category string `json:"category"`
		Text     string `json:"text"`
	} `json:"notes"`
	ReleaseDate   string              `json:"release_date"`
	ProductStatus map[string][]string `json:"product_status"`
	Remediations  []struct {
		Category   string   `json:"category"`
		URL        string   `json:"url"`
		ProductIDs []string `json:"product_ids"`
	} `json:"remediations"`
	Scores []struct {
		CVSSv3   *cvss    `json:"cvss_v3"`
		CVSSv2   *cvss    `json:"cvss_v2"`
		Products []string `json:"products"`
	} `json:"scores"`
	Threats []struct {
		Category   string   `json:"category"`
		Details    string   `json:"details"`
		ProductIDs []string `json:"product_ids"`
	} `json:"threats"`
	References []reference `json:"references"`
}

type cvss struct {
	VectorString string  `json:"vectorString"`
	BaseScore    float64 `json:"baseScore"`
}

var (
	cveID     = regexp.MustCompile(`^CVE-\d{4}-\d{4,}$`)
	errataID  = regexp.MustCompile(`/errata/(RH[SBE]A-\d{4}:\d+)`)
	advisory  = regexp.MustCompile(`^RH[SBE]A-\d{4}:\d+$`)
	elRelease = regexp.MustCompile(`^el(\d+)`)
)

// Parse reads one CSAF document. feed names the feed in Advisory.Source
// and in rejected records. A document that is not CSAF (or not a VEX or
// security advisory) is an error; a vulnerability that cannot be read, or
// a product that cannot be resolved, is rejected and the rest kept.
func Parse(r io.Reader, feed string) (*vulndb.FeedData, error) {
	var d document
	if err := json.NewDecoder(r).Decode(&d); err != nil {
		return nil, fmt.Errorf("csaf: %w", err)
	}
	cat := d.Document.Category
	if cat != "csaf_vex" && cat != "csaf_security_advisory" {
		return nil, fmt.Errorf("csaf: document category %q is neither csaf_vex nor csaf_security_advisory", cat)
	}
	id := strings.TrimSpace(d.Document.Tracking.ID)
	if id == "" {
		return nil, errors.New("csaf: document without a tracking id")
	}
	p := &parser{feed: feed, doc: &d, out: &vulndb.FeedData{}}
	p.indexProducts()
	var vulns []vulnerability
	for i, raw := range d.Vulnerabilities {
		var v vulnerability
		if err := json.Unmarshal(raw, &v); err != nil {
			p.reject(fmt.Sprintf("%s vulnerabilities[%d]", id, i), err)
			continue
		}
		if !cveID.MatchString(v.CVE) {
			p.reject(fmt.Sprintf("%s vulnerabilities[%d]", id, i), fmt.Errorf("cve %q is not a CVE id", v.CVE))
			continue
		}
		vulns = append(vulns, v)
	}
	if cat == "csaf_vex" {
		for _, v := range vulns {
			if a := p.advisory(v.CVE, []vulnerability{v}); a != nil {
				p.out.Advisories = append(p.out.Advisories, *a)
			}
		}
	} else {
		if !advisory.MatchString(id) {
			return nil, fmt.Errorf("csaf: tracking id %q is not a Red Hat advisory id", id)
		}
		if a := p.advisory(id, vulns); a != nil {
			p.out.Advisories = append(p.out.Advisories, *a)
		}
	}
	return p.out, nil
}

type parser struct {
	feed     string
	doc      *document
	out      *vulndb.FeedData
	products map[string]product
	rels     map[string][2]string // product id → (component, platform)
}

func (p *parser) reject(record string, err error) {
	p.out.Rejected = append(p.out.Rejected, vulndb.RecordError{Feed: p.feed, Record: record, Err: err})
}

func (p *parser) indexProducts() {
	p.products = map[string]product{}
	p.rels = map[string][2]string{}
	var walk func([]branch)
	walk = func(bs []branch) {
		for _, b := range bs {
			if b.Product != nil && b.Product.ProductID != "" {
				p.products[b.Product.ProductID] = *b.Product
			}
			walk(b.Branches)
		}
	}
	walk(p.doc.ProductTree.Branches)
	for _, fp := range p.doc.ProductTree.FullProductNames {
		p.products[fp.ProductID] = fp
	}
	for _, r := range p.doc.ProductTree.Relationships {
		p.rels[r.FullProductName.ProductID] = [2]string{r.ProductRef, r.RelatesTo}
	}
}

// rpm is one resolved product: an RPM on a platform.
type rpm struct {
	ecosystem, cpe    string
	name, evr, arch   string
	module            string
	platform, product string
}

// resolve maps a product id to an RPM on a platform; ok is false for
// products that are not RPMs on a RHEL platform (skipped, not errors).
func (p *parser) resolve(id string) (rpm, bool, error) {
	rel, ok := p.rels[id]
	if !ok {
		return rpm{}, false, nil // a bare platform or unrelated product
	}
	comp, ok := p.products[rel[0]]
	if !ok {
		return rpm{}, false, fmt.Errorf("product %q: component %q is not in the product tree", id, rel[0])
	}
	plat, ok := p.products[rel[1]]
	if !ok {
		return rpm{}, false, fmt.Errorf("product %q: platform %q is not in the product tree", id, rel[1])
	}
	if plat.Helper == nil || plat.Helper.CPE == "" {
		return rpm{}, false, nil
	}
	eco, ok := ecosystem(plat.Helper.CPE)
	if !ok {
		return rpm{}, false, nil
	}
	if comp.Helper == nil || comp.Helper.PURL == "" {
		// Older documents name RPMs by NEVRA only: telnet-1:0.17-65.el7_6.x86_64.
		r, ok := parseNEVRA(rel[0])
		if !ok {
			return rpm{}, false, nil
		}
		r.ecosystem, r.cpe, r.platform, r.product = eco, plat.Helper.CPE, rel[1], id
		return r, true, nil
	}
	purl, err := packageurl.FromString(comp.Helper.PURL)
	if err != nil {
		return rpm{}, false, fmt.Errorf("product %q: purl: %w", id, err)
	}
	if purl.Type != "rpm" {
		return rpm{}, false, nil // container images and other artefacts
	}
	q := purl.Qualifiers.Map()
	r := rpm{ecosystem: eco, cpe: plat.Helper.CPE, name: purl.Name, arch: q["arch"], platform: rel[1], product: id}
	if mod := q["rpmmod"]; mod != "" {
		// name:stream:version:context → name:stream
		parts := strings.SplitN(mod, ":", 3)
		r.module = parts[0]
		if len(parts) > 1 {
			r.module += ":" + parts[1]
		}
	}
	if purl.Version != "" {
		epoch := q["epoch"]
		if epoch == "" {
			epoch = "0"
		}
		if !validEVR(epoch, purl.Version) {
			return rpm{}, false, fmt.Errorf("product %q: version %q epoch %q is not an RPM version", id, purl.Version, epoch)
		}
		r.evr = epoch + ":" + purl.Version
	}
	return r, true, nil
}

var nevra = regexp.MustCompile(`^(.+)-(\d+):([A-Za-z0-9._+~^]+)-([A-Za-z0-9._+~^]+)\.([a-z0-9_]+)$`)

// parseNEVRA reads name-epoch:version-release.arch, with an optional
// "::module:stream" suffix.
func parseNEVRA(s string) (rpm, bool) {
	var r rpm
	if base, mod, ok := strings.Cut(s, "::"); ok {
		s, r.module = base, mod
	}
	m := nevra.FindStringSubmatch(s)
	if m == nil {
		return rpm{}, false
	}
	r.name, r.evr, r.arch = m[1], m[2]+":"+m[3]+"-"+m[4], m[5]
	return r, true
}

var (
	digits     = regexp.MustCompile(`^\d+$`)
	rpmVersion = regexp.MustCompile(`^[A-Za-z0-9._+~^]+-[A-Za-z0-9._+~^]+$`)
)

func validEVR(epoch, vr string) bool { return digits.MatchString(epoch) && rpmVersion.MatchString(vr) }

// ecosystem maps a platform CPE to the Affected ecosystem.
func ecosystem(cpe string) (string, bool) {
	f := strings.Split(strings.TrimPrefix(cpe, "cpe:/"), ":")
	// part, vendor, product, version, update, edition
	if len(f) < 4 || f[1] != "redhat" || f[3] == "" {
		return "", false
	}
	product, version := f[2], f[3]
	major, _, _ := strings.Cut(version, ".")
	switch {
	case product == "enterprise_linux":
		return EcosystemPrefix + major, digits.MatchString(major)
	case strings.HasPrefix(product, "rhel_") && strings.Contains(version, "."):
		// rhel_eus:9.0, rhel_aus:7.6, rhel_e4s:8.6, ...
		return EcosystemPrefix + version, digits.MatchString(major)
	}
	// Layered products name their RHEL release in the edition: "::el8".
	for _, x := range f[4:] {
		if m := elRelease.FindStringSubmatch(x); m != nil {
			return EcosystemPrefix + m[1], true
		}
	}
	return "", false
}

// group is one Affected entry in the making.
type group struct {
	aff      vulndb.Affected
	binaries map[string]bool
	cpes     map[string]bool
	errata   map[string]bool
	module   string
}

func (p *parser) advisory(id string, vulns []vulnerability) *vulndb.Advisory {
	d := p.doc.Document
	a := &vulndb.Advisory{ID: id, Source: p.feed, Summary: d.Title}
	a.Published, _ = parseTime(d.Tracking.InitialReleaseDate)
	a.Modified, _ = parseTime(d.Tracking.CurrentReleaseDate)
	for _, r := range d.References {
		typ := "WEB"
		if r.Category == "self" {
			typ = "ADVISORY"
		}
		a.References = appendRef(a.References, typ, r.URL)
	}
	docSeverity := ""
	if d.AggregateSeverity != nil {
		docSeverity = strings.ToLower(strings.TrimSpace(d.AggregateSeverity.Text))
	}
	if docSeverity != "" {
		a.Severity = append(a.Severity, vulndb.Severity{Type: vulndb.SeverityVendor, Score: docSeverity, Source: "redhat"})
	}
	groups := map[string]*group{}
	var order []string
	for _, v := range vulns {
		if !contains(a.Aliases, v.CVE) && v.CVE != id {
			a.Aliases = append(a.Aliases, v.CVE)
		}
		if len(vulns) == 1 {
			if v.Title != "" && d.Category == "csaf_vex" {
				a.Summary = v.Title
			}
			for _, n := range v.Notes {
				if n.Category == "description" {
					a.Details = strings.TrimSpace(n.Text)
				}
			}
			if t, err := parseTime(v.ReleaseDate); err == nil && !t.IsZero() && d.Category == "csaf_vex" {
				a.Published = t
			}
		}
		for _, r := range v.References {
			a.References = appendRef(a.References, "WEB", r.URL)
		}
		// Impact per product, and for the whole vulnerability.
		impact := map[string]string{}
		vulnImpact := ""
		for _, t := range v.Threats {
			if t.Category != "impact" {
				continue
			}
			sev := strings.ToLower(strings.TrimSpace(t.Details))
			if len(t.ProductIDs) == 0 {
				vulnImpact = sev
			}
			for _, pid := range t.ProductIDs {
				impact[pid] = sev
			}
		}
		if vulnImpact == "" {
			vulnImpact = docSeverity
		}
		if docSeverity == "" && vulnImpact != "" && !hasSeverity(a.Severity, vulndb.SeverityVendor, vulnImpact) {
			a.Severity = append(a.Severity, vulndb.Severity{Type: vulndb.SeverityVendor, Score: vulnImpact, Source: "redhat"})
		}
		for _, s := range v.Scores {
			for _, c := range []struct {
				typ string
				v   *cvss
			}{{vulndb.SeverityCVSSv3, s.CVSSv3}, {vulndb.SeverityCVSSv2, s.CVSSv2}} {
				if c.v != nil && c.v.VectorString != "" && !hasSeverity(a.Severity, c.typ, c.v.VectorString) {
					a.Severity = append(a.Severity, vulndb.Severity{Type: c.typ, Score: c.v.VectorString, BaseScore: c.v.BaseScore, Source: "redhat"})
				}
			}
		}
		// Remediations per product.
		remedy := map[string]string{}
		errata := map[string]string{}
		for _, r := range v.Remediations {
			for _, pid := range r.ProductIDs {
				switch r.Category {
				case "vendor_fix":
					if m := errataID.FindStringSubmatch(r.URL); m != nil {
						errata[pid] = m[1]
					}
				case "none_available", "no_fix_planned":
					remedy[pid] = r.Category
				}
			}
			if r.Category == "vendor_fix" && r.URL != "" {
				a.References = appendRef(a.References, "ADVISORY", r.URL)
				if m := errataID.FindStringSubmatch(r.URL); m != nil && m[1] != id && !contains(a.Related, m[1]) {
					a.Related = append(a.Related, m[1])
				}
			}
		}
		for _, st := range []struct {
			key    string
			status vulndb.Status
		}{{"fixed", vulndb.StatusFixed}, {"known_affected", vulndb.StatusUnfixed}, {"known_not_affected", vulndb.StatusNotAffected}} {
			var rpms []rpm
			for _, pid := range v.ProductStatus[st.key] {
				r, ok, err := p.resolve(pid)
				if err != nil {
					p.reject(v.CVE+" "+pid, err)
					continue
				}
				if !ok {
					continue
				}
				if st.status == vulndb.StatusFixed && r.evr == "" {
					p.reject(v.CVE+" "+pid, errors.New("fixed product without a version"))
					continue
				}
				rpms = append(rpms, r)
			}
			for _, r := range attach(rpms) {
				status := st.status
				if status == vulndb.StatusUnfixed && remedy[r.product] == "no_fix_planned" {
					status = vulndb.StatusWillNotFix
				}
				key := strings.Join([]string{r.ecosystem, r.name, r.module, string(status)}, "\x00")
				g := groups[key]
				if g == nil {
					g = &group{
						aff:      vulndb.Affected{Ecosystem: r.ecosystem, Package: r.name, Status: status},
						binaries: map[string]bool{}, cpes: map[string]bool{}, errata: map[string]bool{},
					}
					groups[key] = g
					order = append(order, key)
				}
				g.cpes[r.cpe] = true
				for _, b := range r.binaries {
					g.binaries[b] = true
				}
				if e := errata[r.product]; e != "" {
					g.errata[e] = true
				}
				if sev := impact[r.product]; sev != "" {
					g.aff.VendorSeverity = sev
				} else if g.aff.VendorSeverity == "" {
					g.aff.VendorSeverity = vulnImpact
				}
				if status == vulndb.StatusFixed {
					cur := ""
					if len(g.aff.Ranges) > 0 {
						cur = g.aff.Ranges[0].Events[1].Fixed
					}
					if cur == "" || rpmLess(cur, r.evr) {
						g.aff.Ranges = []vulndb.Range{{Type: vulndb.RangeEcosystem, Events: []vulndb.Event{{Introduced: "0"}, {Fixed: r.evr}}}}
					}
				}
				g.module = r.module
			}
		}
	}
	if len(groups) == 0 {
		p.reject(id, errors.New("no RPM product on a Red Hat Enterprise Linux platform"))
		return nil
	}
	sort.Strings(order)
	for _, key := range order {
		g := groups[key]
		g.aff.BinaryNames = sortedKeys(g.binaries)
		spec := map[string]any{"cpes": sortedKeys(g.cpes)}
		if g.module != "" {
			spec["module"] = g.module
		}
		if len(g.errata) > 0 {
			spec["errata"] = sortedKeys(g.errata)
		}
		g.aff.EcosystemSpecific, _ = json.Marshal(spec)
		a.Affected = append(a.Affected, g.aff)
	}
	sort.Strings(a.Related)
	return a
}

// resolved is an RPM with the binaries attached to it.
type resolved struct {
	rpm
	binaries []string
}

// attach ties binary RPMs to their source RPM: on one platform, in one
// module stream, at one version, when exactly one source RPM is there,
// every binary belongs to it. Binaries that cannot be tied stay on their
// own, with BinaryNames naming themselves.
func attach(rpms []rpm) []resolved {
	type slot struct{ platform, module, evr string }
	srcs := map[slot][]int{}
	for i, r := range rpms {
		if r.arch == "src" {
			s := slot{r.platform, r.module, r.evr}
			srcs[s] = append(srcs[s], i)
		}
	}
	var out []resolved
	idx := map[int]int{}
	for i, r := range rpms {
		if r.arch == "src" {
			idx[i] = len(out)
			out = append(out, resolved{rpm: r})
		}
	}
	for _, r := range rpms {
		if r.arch == "src" {
			continue
		}
		if s := srcs[slot{r.platform, r.module, r.evr}]; len(s) == 1 {
			o := &out[idx[s[0]]]
			if !contains(o.binaries, r.name) {
				o.binaries = append(o.binaries, r.name)
			}
			continue
		}
		out = append(out, resolved{rpm: r, binaries: []string{r.name}})
	}
	return out
}

func rpmLess(a, b string) bool {
	c, err := semantic.ParseRedHatVersion(a).CompareStr(b)
	return err == nil && c < 0
}

func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	return t.UTC(), err
}

func appendRef(refs []vulndb.Reference, typ, url string) []vulndb.Reference {
	if url == "" {
		return refs
	}
	for _, r := range refs {
		if r.URL == url {
			return refs
		}
	}
	return append(refs, vulndb.Reference{Type: typ, URL: url})
}

func hasSeverity(list []vulndb.Severity, typ, score string) bool {
	for _, s := range list {
		if s.Type == typ && s.Score == score {
			return true
		}
	}
	return false
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func sortedKeys(m map[string]bool) []string {
	if len(m) == 0 {
		return nil
	}
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

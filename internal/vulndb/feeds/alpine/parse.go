// Package alpine reads the Alpine Linux security database (secdb): one
// document per release and repository ("v3.20/main.json"), listing for each
// source package the versions that fixed security issues. Both the JSON
// served today and the older YAML form are read.
//
// Mapping: one advisory per vulnerability, with the ID OSV uses for Alpine
// ("ALPINE-" + the CVE id, e.g. ALPINE-CVE-2019-1547) and the CVE as an
// alias; an entry without a CVE uses its other identifier (ALPINE-XSA-207).
// Each (release, package) the vulnerability is listed under becomes one
// Affected entry: ecosystem "Alpine:v3.10", the origin (source) package
// name, and an ECOSYSTEM range introduced "0", fixed at the listed version.
// The fixed version "0" is Alpine's way to say the package was never
// affected in that release: such entries get StatusNotAffected and no range.
package alpine

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"

	"github.com/google/osv-scalibr/semantic"
	"github.com/package-url/packageurl-go"
	"go.yaml.in/yaml/v3"

	"github.com/drydockhq/drydock/internal/vulndb"
)

// IDPrefix starts every advisory id of this feed.
const IDPrefix = "ALPINE-"

// secDB is the document common to the JSON and YAML forms. Packages are
// decoded one by one so that one malformed record is rejected alone.
type secDB struct {
	DistroVersion string `json:"distroversion" yaml:"distroversion"`
	RepoName      string `json:"reponame" yaml:"reponame"`
}

type jsonDoc struct {
	secDB
	Packages []json.RawMessage `json:"packages"`
}

type jsonPkg struct {
	Pkg struct {
		Name     string                     `json:"name"`
		Secfixes map[string]json.RawMessage `json:"secfixes"`
	} `json:"pkg"`
}

type yamlDoc struct {
	DistroVersion string      `yaml:"distroversion"`
	RepoName      string      `yaml:"reponame"`
	Packages      []yaml.Node `yaml:"packages"`
}

// pkgFixes is one package record, in the order the document lists its
// fixed versions.
type pkgFixes struct {
	name  string
	fixes []fix
}

type fix struct {
	version string
	entries []string
}

// Parse reads one secdb document (JSON or YAML, told apart by the first
// byte) and returns its advisories: one per vulnerability, each with one
// Affected entry per package of this release that lists it. feed names the
// configured feed in Advisory.Source and in rejected records. A document
// that cannot be read at all (truncated, not secdb) is an error; a package
// record that cannot be read is listed in FeedData.Rejected and the rest is
// kept.
func Parse(r io.Reader, feed string) (*vulndb.FeedData, error) {
	br := bufio.NewReader(r)
	first, err := firstByte(br)
	if err != nil {
		return nil, fmt.Errorf("alpine secdb: %w", err)
	}
	var (
		release, repo string
		pkgs          []pkgFixes
		rejected      []vulndb.RecordError
	)
	if first == '{' {
		release, repo, pkgs, rejected, err = decodeJSON(br, feed)
	} else {
		release, repo, pkgs, rejected, err = decodeYAML(br, feed)
	}
	if err != nil {
		return nil, err
	}
	b := newBuilder(feed)
	b.rejected = rejected
	for _, p := range pkgs {
		b.addPackage(release, repo, p)
	}
	return b.data(), nil
}

func firstByte(br *bufio.Reader) (byte, error) {
	for {
		c, err := br.ReadByte()
		if err == io.EOF {
			return 0, errors.New("empty document")
		}
		if err != nil {
			return 0, err
		}
		switch c {
		case ' ', '\t', '\r', '\n', 0xef, 0xbb, 0xbf: // whitespace, UTF-8 BOM
			continue
		}
		return c, br.UnreadByte()
	}
}

func checkHeader(d secDB) error {
	if !strings.HasPrefix(d.DistroVersion, "v") && d.DistroVersion != "edge" {
		return fmt.Errorf("alpine secdb: distroversion %q is not an Alpine release (v3.x or edge)", d.DistroVersion)
	}
	if d.RepoName == "" {
		return errors.New("alpine secdb: reponame missing")
	}
	return nil
}

func decodeJSON(r io.Reader, feed string) (string, string, []pkgFixes, []vulndb.RecordError, error) {
	var doc jsonDoc
	if err := json.NewDecoder(r).Decode(&doc); err != nil {
		return "", "", nil, nil, fmt.Errorf("alpine secdb: %w", err)
	}
	if err := checkHeader(doc.secDB); err != nil {
		return "", "", nil, nil, err
	}
	where := doc.DistroVersion + "/" + doc.RepoName
	var pkgs []pkgFixes
	var rejected []vulndb.RecordError
	for i, raw := range doc.Packages {
		var p jsonPkg
		if err := json.Unmarshal(raw, &p); err != nil {
			rejected = append(rejected, vulndb.RecordError{Feed: feed, Record: fmt.Sprintf("%s packages[%d]", where, i), Err: err})
			continue
		}
		if p.Pkg.Name == "" {
			rejected = append(rejected, vulndb.RecordError{Feed: feed, Record: fmt.Sprintf("%s packages[%d]", where, i), Err: errors.New("package without a name")})
			continue
		}
		pf := pkgFixes{name: p.Pkg.Name}
		for v, rawEntries := range p.Pkg.Secfixes {
			var entries []string
			if err := json.Unmarshal(rawEntries, &entries); err != nil {
				rejected = append(rejected, vulndb.RecordError{Feed: feed, Record: fmt.Sprintf("%s %s %s", where, p.Pkg.Name, v), Err: err})
				continue
			}
			pf.fixes = append(pf.fixes, fix{version: v, entries: entries})
		}
		sortFixes(pf.fixes)
		pkgs = append(pkgs, pf)
	}
	return doc.DistroVersion, doc.RepoName, pkgs, rejected, nil
}

func decodeYAML(r io.Reader, feed string) (string, string, []pkgFixes, []vulndb.RecordError, error) {
	var doc yamlDoc
	if err := yaml.NewDecoder(r).Decode(&doc); err != nil {
		return "", "", nil, nil, fmt.Errorf("alpine secdb: %w", err)
	}
	if err := checkHeader(secDB{DistroVersion: doc.DistroVersion, RepoName: doc.RepoName}); err != nil {
		return "", "", nil, nil, err
	}
	where := doc.DistroVersion + "/" + doc.RepoName
	var pkgs []pkgFixes
	var rejected []vulndb.RecordError
	for i := range doc.Packages {
		pf, errs := yamlPackage(&doc.Packages[i])
		record := fmt.Sprintf("%s packages[%d]", where, i)
		if pf.name != "" {
			record = where + " " + pf.name
		}
		for _, err := range errs {
			rejected = append(rejected, vulndb.RecordError{Feed: feed, Record: record, Err: err})
		}
		if pf.name != "" {
			sortFixes(pf.fixes)
			pkgs = append(pkgs, pf)
		}
	}
	return doc.DistroVersion, doc.RepoName, pkgs, rejected, nil
}

// yamlPackage reads `pkg: {name, secfixes}` from a node, keeping the fixed
// versions exactly as written (a YAML decoder into strings would turn an
// unquoted 1.10 into the number 1.1).
func yamlPackage(n *yaml.Node) (pkgFixes, []error) {
	var pf pkgFixes
	pkg := mapValue(n, "pkg")
	if pkg == nil {
		return pf, []error{fmt.Errorf("line %d: no pkg mapping", n.Line)}
	}
	name := mapValue(pkg, "name")
	if name == nil || name.Kind != yaml.ScalarNode || name.Value == "" {
		return pf, []error{fmt.Errorf("line %d: package without a name", pkg.Line)}
	}
	pf.name = name.Value
	sf := mapValue(pkg, "secfixes")
	if sf == nil || (sf.Kind == yaml.ScalarNode && sf.Tag == "!!null") {
		return pf, nil
	}
	if sf.Kind != yaml.MappingNode {
		return pf, []error{fmt.Errorf("line %d: secfixes is not a mapping", sf.Line)}
	}
	var errs []error
	for i := 0; i+1 < len(sf.Content); i += 2 {
		k, v := sf.Content[i], sf.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			errs = append(errs, fmt.Errorf("line %d: fixed version is not a scalar", k.Line))
			continue
		}
		f := fix{version: k.Value}
		switch {
		case v.Kind == yaml.SequenceNode:
			for _, e := range v.Content {
				if e.Kind != yaml.ScalarNode {
					errs = append(errs, fmt.Errorf("line %d: %s: entry is not a scalar", e.Line, k.Value))
					continue
				}
				f.entries = append(f.entries, e.Value)
			}
		case v.Kind == yaml.ScalarNode && v.Tag == "!!null":
		default:
			errs = append(errs, fmt.Errorf("line %d: %s: entries are not a list", v.Line, k.Value))
			continue
		}
		pf.fixes = append(pf.fixes, f)
	}
	return pf, errs
}

// sortFixes orders fixes by version text: JSON objects have no order, and
// the output must not depend on the form the document came in.
func sortFixes(fixes []fix) {
	sort.SliceStable(fixes, func(i, j int) bool { return fixes[i].version < fixes[j].version })
}

// mapValue returns the value node of key in mapping n, or nil.
func mapValue(n *yaml.Node, key string) *yaml.Node {
	if n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		n = n.Content[0]
	}
	if n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// Identifier patterns seen in secfixes entries. An entry is free text:
// usually one CVE id, sometimes a CVE and the Xen (XSA) or Talos id of the
// same issue, sometimes notes in parentheses.
var (
	cvePattern   = regexp.MustCompile(`(?i)\bCVE[-_ ](\d{4})-(\d{4,})`)
	otherPattern = regexp.MustCompile(`^(XSA-\d+|TALOS-\d{4}-\d+|ZBX-\d+|wnpa-sec-\d{4}-\d+|GHSA(-[0-9a-z]{4}){3})$`)
)

// identifiers extracts the vulnerability ids of one entry: CVE ids first,
// then the other ids. CVE typos seen in the real data ("CVE_2019-2426",
// "CVE 2018-16859", "CVE-2018-1234.patch", "CVE-2017-17434-1" for a split
// fix) are read as the CVE they name.
func identifiers(entry string) []string {
	var ids []string
	for _, m := range cvePattern.FindAllStringSubmatch(entry, -1) {
		ids = appendUnique(ids, "CVE-"+m[1]+"-"+m[2])
	}
	for _, tok := range strings.Fields(entry) {
		if otherPattern.MatchString(tok) {
			ids = appendUnique(ids, tok)
		}
	}
	return ids
}

func appendUnique(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}

// builder gathers advisories keyed by id, in first-seen order.
type builder struct {
	feed     string
	byID     map[string]*vulndb.Advisory
	order    []string
	rejected []vulndb.RecordError
}

func newBuilder(feed string) *builder {
	return &builder{feed: feed, byID: map[string]*vulndb.Advisory{}}
}

func (b *builder) reject(record string, err error) {
	b.rejected = append(b.rejected, vulndb.RecordError{Feed: b.feed, Record: record, Err: err})
}

// addPackage adds the fixes of one package of one release.
func (b *builder) addPackage(release, repo string, p pkgFixes) {
	ecosystem := "Alpine:" + release
	where := release + "/" + repo + " " + p.name
	// One Affected per (vulnerability, package): a vulnerability listed
	// under two fixed versions (a fix, then a fix of the fix) keeps the
	// higher one; "0" (not affected) yields to any real fix.
	type entry struct {
		fixed   string
		aliases []string
	}
	perID := map[string]*entry{}
	var ids []string
	for _, f := range p.fixes {
		version := strings.TrimSpace(f.version)
		if version != "0" && !validVersion(version) {
			b.reject(where+" "+f.version, fmt.Errorf("fixed version %q is not an apk version", f.version))
			continue
		}
		for _, e := range f.entries {
			idents := identifiers(e)
			if len(idents) == 0 {
				b.reject(where+" "+version, fmt.Errorf("no vulnerability id in entry %q", e))
				continue
			}
			id := IDPrefix + idents[0]
			cur, ok := perID[id]
			if !ok {
				perID[id] = &entry{fixed: version, aliases: idents}
				ids = append(ids, id)
				continue
			}
			for _, a := range idents {
				cur.aliases = appendUnique(cur.aliases, a)
			}
			if cur.fixed == "0" || (version != "0" && alpineLess(cur.fixed, version)) {
				cur.fixed = version
			}
		}
	}
	purl := packageurl.NewPackageURL("apk", "alpine", p.name, "", packageurl.Qualifiers{{Key: "arch", Value: "source"}}, "").ToString()
	specific, _ := json.Marshal(map[string]string{"repo": repo})
	for _, id := range ids {
		e := perID[id]
		aff := vulndb.Affected{
			Ecosystem:         ecosystem,
			Package:           p.name,
			PURL:              purl,
			EcosystemSpecific: specific,
		}
		if e.fixed == "0" {
			aff.Status = vulndb.StatusNotAffected
		} else {
			aff.Status = vulndb.StatusFixed
			aff.Ranges = []vulndb.Range{{
				Type:   vulndb.RangeEcosystem,
				Events: []vulndb.Event{{Introduced: "0"}, {Fixed: e.fixed}},
			}}
		}
		adv := b.byID[id]
		if adv == nil {
			adv = &vulndb.Advisory{ID: id, Source: b.feed}
			b.byID[id] = adv
			b.order = append(b.order, id)
		}
		for _, a := range e.aliases {
			adv.Aliases = appendUnique(adv.Aliases, a)
		}
		adv.Affected = append(adv.Affected, aff)
	}
}

// apkVersion is the version grammar of apk-tools: numbers separated by
// dots, an optional letter, suffixes (_alpha, _beta, _pre, _rc, _cvs, _svn,
// _git, _hg, _p, each with an optional number), an optional ~hash and an
// optional -rN package release. The osv-scalibr parser used for ordering
// accepts anything (it orders invalid versions as apk does), so validity
// is checked here.
var apkVersion = regexp.MustCompile(`^[0-9]+(\.[0-9]+)*[a-z]?(_(alpha|beta|pre|rc|cvs|svn|git|hg|p)[0-9]*)*(~[0-9a-f]+)?(-r[0-9]+)?$`)

func validVersion(v string) bool { return len(v) <= 128 && apkVersion.MatchString(v) }

// alpineLess reports whether a < b in apk version order; both parse
// (checked by the caller).
func alpineLess(a, b string) bool {
	va, err := semantic.ParseAlpineVersion(a)
	if err != nil {
		return false
	}
	c, err := va.CompareStr(b)
	return err == nil && c < 0
}

// merge adds the advisories of another document to b: same id, more
// Affected entries.
func (b *builder) merge(d *vulndb.FeedData) {
	for _, a := range d.Advisories {
		cur := b.byID[a.ID]
		if cur == nil {
			a := a
			a.Source = b.feed
			b.byID[a.ID] = &a
			b.order = append(b.order, a.ID)
			continue
		}
		for _, x := range a.Aliases {
			cur.Aliases = appendUnique(cur.Aliases, x)
		}
		cur.Affected = append(cur.Affected, a.Affected...)
	}
	b.rejected = append(b.rejected, d.Rejected...)
}

// data returns the advisories sorted by id, each with its affected entries
// sorted by ecosystem and package, and a reference to Alpine's tracker.
func (b *builder) data() *vulndb.FeedData {
	out := &vulndb.FeedData{Rejected: b.rejected}
	ids := append([]string(nil), b.order...)
	sort.Strings(ids)
	for _, id := range ids {
		a := b.byID[id]
		sort.SliceStable(a.Affected, func(i, j int) bool {
			x, y := a.Affected[i], a.Affected[j]
			if x.Ecosystem != y.Ecosystem {
				return x.Ecosystem < y.Ecosystem
			}
			return x.Package < y.Package
		})
		vuln := strings.TrimPrefix(id, IDPrefix)
		a.References = []vulndb.Reference{{Type: "ADVISORY", URL: "https://security.alpinelinux.org/vuln/" + vuln}}
		out.Advisories = append(out.Advisories, *a)
	}
	return out
}

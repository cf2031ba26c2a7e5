// Package alas reads Amazon Linux security advisories (ALAS) from a
// repository's updateinfo.xml, as dnf and yum read them: Amazon Linux 2,
// 2022 and 2023.
//
// Mapping: one advisory per ALAS id (ALAS2023-2023-001), its CVEs as
// aliases, Amazon's rating (critical, important, medium, low) as the
// vendor severity. updateinfo names binary packages only, so each binary
// package name becomes one Affected entry keyed by that name
// (BinaryNames = [name] marks it as a binary name), in the ecosystem
// "Amazon Linux:2", "Amazon Linux:2022" or "Amazon Linux:2023" (OSV has no
// Amazon Linux ecosystem; the name follows OSV's "Name:release" form),
// with an ECOSYSTEM range introduced "0", fixed at epoch:version-release.
package alas

import (
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/google/osv-scalibr/semantic"

	"github.com/drydockhq/drydock/internal/vulndb"
)

// EcosystemPrefix starts the ecosystem of every Affected entry.
const EcosystemPrefix = "Amazon Linux:"

type update struct {
	Type     string `xml:"type,attr"`
	Status   string `xml:"status,attr"`
	ID       string `xml:"id"`
	Title    string `xml:"title"`
	Issued   date   `xml:"issued"`
	Updated  date   `xml:"updated"`
	Severity string `xml:"severity"`
	Desc     string `xml:"description"`
	Refs     []struct {
		Href string `xml:"href,attr"`
		ID   string `xml:"id,attr"`
		Type string `xml:"type,attr"`
	} `xml:"references>reference"`
	Collections []struct {
		Short    string   `xml:"short,attr"`
		Packages []rpmPkg `xml:"package"`
	} `xml:"pkglist>collection"`
}

type date struct {
	Date string `xml:"date,attr"`
}

type rpmPkg struct {
	Name    string `xml:"name,attr"`
	Epoch   string `xml:"epoch,attr"`
	Version string `xml:"version,attr"`
	Release string `xml:"release,attr"`
	Arch    string `xml:"arch,attr"`
}

var (
	alasID   = regexp.MustCompile(`^ALAS[0-9A-Z.-]*-\d{4}-\d+$`)
	cveID    = regexp.MustCompile(`^CVE-\d{4}-\d{4,}$`)
	rpmField = regexp.MustCompile(`^[A-Za-z0-9._+~^]+$`)
	digits   = regexp.MustCompile(`^\d+$`)
	// releaseOf reads the release from a collection's short name
	// ("amazon-linux-2023").
	releaseOf = regexp.MustCompile(`^amazon-linux-(\d+)$`)
)

// Parse reads an updateinfo.xml document (already decompressed) and
// returns one advisory per security update. release is the Amazon Linux
// release ("2", "2022", "2023"); when empty it is read from each update's
// collection ("amazon-linux-2023"). feed names the feed in Advisory.Source
// and in rejected records. A document that is not well-formed XML (for
// example a truncated download) is an error; an update without a valid id
// or with no usable package is rejected and the rest kept, and a package
// with a malformed version is rejected alone.
func Parse(r io.Reader, feed, release string) (*vulndb.FeedData, error) {
	dec := xml.NewDecoder(r)
	out := &vulndb.FeedData{}
	sawRoot := false
	n := 0
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("updateinfo: %w", err)
		}
		se, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		switch se.Name.Local {
		case "updates":
			sawRoot = true
		case "update":
			if !sawRoot {
				return nil, errors.New("updateinfo: <update> outside <updates>")
			}
			var u update
			if err := dec.DecodeElement(&u, &se); err != nil {
				return nil, fmt.Errorf("updateinfo: update %d: %w", n, err)
			}
			n++
			if u.Type != "" && u.Type != "security" {
				continue
			}
			a, rejected, err := convert(u, feed, release)
			out.Rejected = append(out.Rejected, rejected...)
			if err != nil {
				rec := u.ID
				if rec == "" {
					rec = fmt.Sprintf("update %d", n-1)
				}
				out.Rejected = append(out.Rejected, vulndb.RecordError{Feed: feed, Record: rec, Err: err})
				continue
			}
			out.Advisories = append(out.Advisories, *a)
		default:
			if !sawRoot {
				return nil, fmt.Errorf("updateinfo: root element <%s>, want <updates>", se.Name.Local)
			}
		}
	}
	if !sawRoot {
		return nil, errors.New("updateinfo: no <updates> element")
	}
	sort.Slice(out.Advisories, func(i, j int) bool { return out.Advisories[i].ID < out.Advisories[j].ID })
	return out, nil
}

// convert maps one update to an advisory.
func convert(u update, feed, release string) (*vulndb.Advisory, []vulndb.RecordError, error) {
	id := strings.TrimSpace(u.ID)
	if !alasID.MatchString(id) {
		return nil, nil, fmt.Errorf("id %q is not an ALAS id", u.ID)
	}
	a := &vulndb.Advisory{
		ID:      id,
		Summary: strings.TrimSpace(u.Title),
		Details: strings.TrimSpace(u.Desc),
		Source:  feed,
	}
	var err error
	if a.Published, err = parseDate(u.Issued.Date); err != nil {
		return nil, nil, fmt.Errorf("issued: %w", err)
	}
	if a.Modified, err = parseDate(u.Updated.Date); err != nil {
		return nil, nil, fmt.Errorf("updated: %w", err)
	}
	sev := strings.ToLower(strings.TrimSpace(u.Severity))
	if sev != "" {
		a.Severity = []vulndb.Severity{{Type: vulndb.SeverityVendor, Score: sev, Source: "amazon"}}
	}
	for _, r := range u.Refs {
		rid := strings.TrimSpace(r.ID)
		if r.Type == "cve" && cveID.MatchString(rid) && !contains(a.Aliases, rid) {
			a.Aliases = append(a.Aliases, rid)
		}
		if r.Href != "" {
			a.References = append(a.References, vulndb.Reference{Type: "WEB", URL: r.Href})
		}
	}
	if page := advisoryPage(id); page != "" {
		a.References = append([]vulndb.Reference{{Type: "ADVISORY", URL: page}}, a.References...)
	}

	// One Affected per binary package name; the arches it ships for are
	// kept in ecosystem_specific.
	type bin struct {
		fixed  string
		arches []string
	}
	bins := map[string]*bin{}
	var rejected []vulndb.RecordError
	for _, c := range u.Collections {
		rel := release
		if rel == "" {
			m := releaseOf.FindStringSubmatch(c.Short)
			if m == nil {
				return nil, nil, fmt.Errorf("collection %q names no Amazon Linux release", c.Short)
			}
			rel = m[1]
		}
		release = rel
		for _, p := range c.Packages {
			if p.Arch == "src" {
				continue
			}
			evr, err := fixedVersion(p)
			if err != nil {
				rejected = append(rejected, vulndb.RecordError{Feed: feed, Record: id + " " + p.Name + "." + p.Arch, Err: err})
				continue
			}
			b := bins[p.Name]
			if b == nil {
				bins[p.Name] = &bin{fixed: evr, arches: []string{p.Arch}}
				continue
			}
			if !contains(b.arches, p.Arch) {
				b.arches = append(b.arches, p.Arch)
			}
			if rpmLess(b.fixed, evr) {
				b.fixed = evr
			}
		}
	}
	if len(bins) == 0 {
		return nil, rejected, errors.New("no usable package")
	}
	names := make([]string, 0, len(bins))
	for n := range bins {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		b := bins[n]
		sort.Strings(b.arches)
		specific, _ := json.Marshal(map[string][]string{"arches": b.arches})
		a.Affected = append(a.Affected, vulndb.Affected{
			Ecosystem:      EcosystemPrefix + release,
			Package:        n,
			BinaryNames:    []string{n},
			Status:         vulndb.StatusFixed,
			VendorSeverity: sev,
			Ranges: []vulndb.Range{{
				Type:   vulndb.RangeEcosystem,
				Events: []vulndb.Event{{Introduced: "0"}, {Fixed: b.fixed}},
			}},
			EcosystemSpecific: specific,
		})
	}
	return a, rejected, nil
}

// fixedVersion is epoch:version-release, the epoch "0" when absent.
func fixedVersion(p rpmPkg) (string, error) {
	if p.Name == "" {
		return "", errors.New("package without a name")
	}
	epoch := p.Epoch
	if epoch == "" {
		epoch = "0"
	}
	if !digits.MatchString(epoch) {
		return "", fmt.Errorf("epoch %q is not a number", p.Epoch)
	}
	if !rpmField.MatchString(p.Version) || !rpmField.MatchString(p.Release) {
		return "", fmt.Errorf("version %q release %q: not an RPM version", p.Version, p.Release)
	}
	return epoch + ":" + p.Version + "-" + p.Release, nil
}

// rpmLess orders epoch:version-release strings as rpm does.
func rpmLess(a, b string) bool {
	c, err := semantic.ParseRedHatVersion(a).CompareStr(b)
	return err == nil && c < 0
}

// parseDate reads updateinfo dates: "2023-02-17 20:41" (minutes, UTC), and
// the forms with seconds or a T. An empty date is the zero time.
func parseDate(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{"2006-01-02 15:04", "2006-01-02 15:04:05", time.RFC3339, time.DateOnly} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("cannot parse %q", s)
}

var pagePattern = regexp.MustCompile(`^ALAS(\d*)-(\d{4}-\d+)$`)

// advisoryPage is the ALAS web page of an id: ALAS2023-2023-001 is
// https://alas.aws.amazon.com/AL2023/ALAS-2023-001.html.
func advisoryPage(id string) string {
	m := pagePattern.FindStringSubmatch(id)
	if m == nil {
		return ""
	}
	if m[1] == "" {
		return "https://alas.aws.amazon.com/ALAS-" + m[2] + ".html"
	}
	return "https://alas.aws.amazon.com/AL" + m[1] + "/ALAS-" + m[2] + ".html"
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Package osv reads OSV vulnerability records (https://ossf.github.io/osv-schema/)
// as OSV publishes them — per-ecosystem all.zip archives, directories of
// JSON records and single records — and maps them onto vulndb.Advisory.
//
// Records are decoded with encoding/json into this package's own structs,
// not with the official bindings (github.com/ossf/osv-schema/bindings/go,
// protobuf messages read through protojson). The bindings' constants (the
// list of ecosystems) are used. Measured with BenchmarkDecode on the real Go
// all.zip (4,291 records, 7.9 MB of JSON; 2 shared cores, medians of 5):
//
//	encoding/json:  85 ms, 12.4 MB and 203k allocations per pass
//	protojson:     259 ms, 28.4 MB and 888k allocations per pass
//
// and protojson refuses 26 of the 266 real PyPI sample records (timestamps
// in the space-separated form the PyPI advisory database's YAML yields),
// and re-encodes ecosystem_specific and database_specific through
// protobuf Structs instead of keeping them as published
// (TestBindingsRefuseRealRecords).
package osv

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/ossf/osv-schema/bindings/go/osvconstants"

	"github.com/drydockhq/drydock/internal/vulndb"
	"github.com/drydockhq/drydock/internal/vulndb/cvss"
)

// record is one OSV record as published (schema 1.7).
type record struct {
	SchemaVersion    string          `json:"schema_version"`
	ID               string          `json:"id"`
	Modified         string          `json:"modified"`
	Published        string          `json:"published"`
	Withdrawn        string          `json:"withdrawn"`
	Aliases          []string        `json:"aliases"`
	Related          []string        `json:"related"`
	Upstream         []string        `json:"upstream"`
	Summary          string          `json:"summary"`
	Details          string          `json:"details"`
	Severity         []severity      `json:"severity"`
	Affected         []affected      `json:"affected"`
	References       []reference     `json:"references"`
	Credits          []credit        `json:"credits"`
	DatabaseSpecific json.RawMessage `json:"database_specific"`
}

type severity struct {
	Type  string `json:"type"`
	Score string `json:"score"`
}

type affected struct {
	Package struct {
		Ecosystem string `json:"ecosystem"`
		Name      string `json:"name"`
		PURL      string `json:"purl"`
	} `json:"package"`
	Severity          []severity      `json:"severity"`
	Ranges            []rng           `json:"ranges"`
	Versions          []string        `json:"versions"`
	EcosystemSpecific json.RawMessage `json:"ecosystem_specific"`
	DatabaseSpecific  json.RawMessage `json:"database_specific"`
}

type rng struct {
	Type             string          `json:"type"`
	Repo             string          `json:"repo"`
	Events           []event         `json:"events"`
	DatabaseSpecific json.RawMessage `json:"database_specific"`
}

type event struct {
	Introduced   *string `json:"introduced"`
	Fixed        *string `json:"fixed"`
	LastAffected *string `json:"last_affected"`
	Limit        *string `json:"limit"`
}

type reference struct {
	Type string `json:"type"`
	URL  string `json:"url"`
}

type credit struct {
	Name    string   `json:"name"`
	Contact []string `json:"contact"`
	Type    string   `json:"type"`
}

// ErrInvalid is wrapped by every error about a record that breaks the OSV
// schema or Drydock's checks on it.
var ErrInvalid = errors.New("invalid OSV record")

// ErrUnknownEcosystem is wrapped by the error for a record that names an
// ecosystem OSV does not define.
var ErrUnknownEcosystem = errors.New("unknown ecosystem")

// MaxRecordSize bounds one record. The largest real ones (Ubuntu kernel
// records listing hundreds of versions for many releases) are a few MB.
const MaxRecordSize = 64 << 20

// knownEcosystems are the ecosystems the OSV schema defines, from the
// official bindings.
var knownEcosystems = func() map[string]bool {
	m := map[string]bool{}
	for _, e := range []osvconstants.Ecosystem{
		osvconstants.EcosystemAlmaLinux, osvconstants.EcosystemAlpaquita, osvconstants.EcosystemAlpine,
		osvconstants.EcosystemAndroid, osvconstants.EcosystemAzureLinux, osvconstants.EcosystemBellSoftHardenedContainers,
		osvconstants.EcosystemBioconductor, osvconstants.EcosystemBitnami, osvconstants.EcosystemChainguard,
		osvconstants.EcosystemCleanStart, osvconstants.EcosystemConanCenter, osvconstants.EcosystemCRAN,
		osvconstants.EcosystemCratesIO, osvconstants.EcosystemDebian, osvconstants.EcosystemDockerHardenedImages,
		osvconstants.EcosystemEcho, osvconstants.EcosystemFreeBSD, osvconstants.EcosystemGHC,
		osvconstants.EcosystemGitHubActions, osvconstants.EcosystemGo, osvconstants.EcosystemHackage,
		osvconstants.EcosystemHex, osvconstants.EcosystemJulia, osvconstants.EcosystemKubernetes,
		osvconstants.EcosystemLinux, osvconstants.EcosystemMageia, osvconstants.EcosystemMaven,
		osvconstants.EcosystemMinimOS, osvconstants.EcosystemNPM, osvconstants.EcosystemNuGet,
		osvconstants.EcosystemOpam, osvconstants.EcosystemOpenEuler, osvconstants.EcosystemOpenSUSE,
		osvconstants.EcosystemOSSFuzz, osvconstants.EcosystemPackagist, osvconstants.EcosystemPhotonOS,
		osvconstants.EcosystemPub, osvconstants.EcosystemPyPI, osvconstants.EcosystemRedHat,
		osvconstants.EcosystemRockyLinux, osvconstants.EcosystemRoot, osvconstants.EcosystemRubyGems,
		osvconstants.EcosystemSUSE, osvconstants.EcosystemSwiftURL, osvconstants.EcosystemTuxCare,
		osvconstants.EcosystemUbuntu, osvconstants.EcosystemVSCode, osvconstants.EcosystemWolfi,
	} {
		m[string(e)] = true
	}
	return m
}()

// KnownEcosystem reports whether ecosystem (with or without a ":release"
// suffix) is one the OSV schema defines.
func KnownEcosystem(ecosystem string) bool {
	base, _, _ := strings.Cut(ecosystem, ":")
	return knownEcosystems[base]
}

// distroEcosystems are the OS distributions: their records carry a status
// per release and often a vendor severity.
var distroEcosystems = map[string]bool{
	"AlmaLinux": true, "Alpaquita": true, "Alpine": true, "Azure Linux": true,
	"BellSoft Hardened Containers": true, "Chainguard": true, "CleanStart": true,
	"Debian": true, "Docker Hardened Images": true, "Echo": true, "FreeBSD": true,
	"Mageia": true, "MinimOS": true, "openEuler": true, "openSUSE": true, "Photon OS": true,
	"Red Hat": true, "Rocky Linux": true, "SUSE": true, "TuxCare": true, "Ubuntu": true,
	"Wolfi": true,
}

// Parse decodes one OSV record, checks it and maps it onto an Advisory
// whose Source is source. A record that breaks the schema, names an
// unknown ecosystem or has a range version its ecosystem cannot parse is
// refused with an error wrapping ErrInvalid.
func Parse(data []byte, source string) (vulndb.Advisory, error) {
	if len(data) > MaxRecordSize {
		return vulndb.Advisory{}, fmt.Errorf("%w: record of %d bytes exceeds %d", ErrInvalid, len(data), MaxRecordSize)
	}
	var r record
	if err := json.Unmarshal(data, &r); err != nil {
		return vulndb.Advisory{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return r.advisory(source)
}

// validID reports whether id is 1 to 200 characters of letters, digits
// and ._:+- starting with a letter or digit (OSV ids, and the colons of
// Red Hat family ids such as ALSA-2025:10630).
func validID(id string) bool {
	if id == "" || len(id) > 200 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case i > 0 && strings.IndexByte("._:+-", c) >= 0:
		default:
			return false
		}
	}
	return true
}

func (r *record) advisory(source string) (vulndb.Advisory, error) {
	if !validID(r.ID) {
		return vulndb.Advisory{}, fmt.Errorf("%w: id %q", ErrInvalid, r.ID)
	}
	bad := func(format string, args ...any) (vulndb.Advisory, error) {
		err := fmt.Errorf(format, args...)
		if errors.Is(err, ErrInvalid) {
			return vulndb.Advisory{}, fmt.Errorf("%s: %w", r.ID, err)
		}
		return vulndb.Advisory{}, fmt.Errorf("%w %s: %w", ErrInvalid, r.ID, err)
	}
	a := vulndb.Advisory{
		ID:       r.ID,
		Aliases:  cleanIDs(r.Aliases),
		Related:  cleanIDs(r.Related),
		Upstream: cleanIDs(r.Upstream),
		Summary:  strings.TrimSpace(r.Summary),
		Details:  r.Details,
		Source:   source,
	}
	var err error
	for _, f := range []struct {
		name string
		in   string
		out  *time.Time
	}{{"modified", r.Modified, &a.Modified}, {"published", r.Published, &a.Published}, {"withdrawn", r.Withdrawn, &a.Withdrawn}} {
		if *f.out, err = parseTime(f.in); err != nil {
			return bad("%s: %w", f.name, err)
		}
	}
	if a.DatabaseSpecific, err = compactObject(r.DatabaseSpecific); err != nil {
		return bad("database_specific: %w", err)
	}
	rater := raterOf(r.ID)
	for _, s := range r.Severity {
		sv, err := mapSeverity(s, rater)
		if err != nil {
			return bad("severity: %w", err)
		}
		a.Severity = append(a.Severity, sv)
	}
	for _, ref := range r.References {
		if ref.URL == "" {
			return bad("reference without url")
		}
		a.References = append(a.References, vulndb.Reference{Type: ref.Type, URL: ref.URL})
	}
	for _, c := range r.Credits {
		a.Credits = append(a.Credits, vulndb.Credit{Name: c.Name, Contact: c.Contact, Type: c.Type})
	}
	vendor := vendorSeverity(r, rater)
	if vendor != "" && !hasSeverityType(a.Severity, vulndb.SeverityUbuntu) {
		a.Severity = append(a.Severity, vulndb.Severity{Type: vulndb.SeverityVendor, Score: vendor, Source: rater})
	}
	for i := range r.Affected {
		af, err := mapAffected(&r.Affected[i], rater, vendor)
		if err != nil {
			return bad("affected[%d]: %w", i, err)
		}
		a.Affected = append(a.Affected, af)
	}
	return a, nil
}

// timeLayouts are the timestamp forms accepted: RFC 3339 as the schema
// says, and the space-separated and date-only forms that records converted
// from YAML carry (the PyPI advisory database).
var timeLayouts = []string{time.RFC3339Nano, "2006-01-02 15:04:05.999999999Z07:00", "2006-01-02T15:04:05.999999999", "2006-01-02"}

func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	var first error
	for _, layout := range timeLayouts {
		t, err := time.Parse(layout, s)
		if err == nil {
			return t.UTC(), nil
		}
		if first == nil {
			first = err
		}
	}
	return time.Time{}, first
}

// cleanIDs drops empty and repeated ids, keeping the order.
func cleanIDs(ids []string) []string {
	var out []string
	for _, id := range ids {
		id = strings.TrimSpace(id)
		if id == "" || contains(out, id) {
			continue
		}
		out = append(out, id)
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// compactObject checks that raw is a JSON object (or absent/null) and
// returns it compacted, so the content hash does not depend on layout.
func compactObject(raw json.RawMessage) (json.RawMessage, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	if raw[0] != '{' {
		return nil, errors.New("not a JSON object")
	}
	if string(raw) == "{}" {
		return nil, nil
	}
	var b bytes.Buffer
	b.Grow(len(raw))
	if err := json.Compact(&b, raw); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// raterOf names who rates an advisory, from its id prefix: the publisher
// of the record.
func raterOf(id string) string {
	prefix, _, _ := strings.Cut(id, "-")
	switch prefix {
	case "DSA", "DLA", "DTSA", "DEBIAN":
		return "debian"
	case "USN", "UBUNTU", "LSN":
		return "ubuntu"
	case "ALSA", "ALBA", "ALEA":
		return "almalinux"
	case "RLSA", "RXSA":
		return "rocky"
	case "RHSA", "RHBA", "RHEA":
		return "redhat"
	case "SUSE", "openSUSE":
		return "suse"
	case "ALPINE":
		return "alpine"
	}
	return strings.ToLower(prefix)
}

func mapSeverity(s severity, rater string) (vulndb.Severity, error) {
	out := vulndb.Severity{Type: s.Type, Score: strings.TrimSpace(s.Score), Source: rater}
	if out.Score == "" {
		return out, fmt.Errorf("%s without score", s.Type)
	}
	switch s.Type {
	case vulndb.SeverityCVSSv2, vulndb.SeverityCVSSv3, vulndb.SeverityCVSSv4:
		// A vector that does not parse keeps the record (its packages and
		// ranges are what matching needs) with no computed score.
		if score, v, err := cvss.BaseScore(out.Score); err == nil {
			out.BaseScore = score
			// Trust the vector over the declared type.
			out.Type = map[int]string{2: vulndb.SeverityCVSSv2, 3: vulndb.SeverityCVSSv3, 4: vulndb.SeverityCVSSv4}[v.Major()]
		}
	case vulndb.SeverityUbuntu:
		out.Source = "ubuntu"
	}
	return out, nil
}

func hasSeverityType(ss []vulndb.Severity, typ string) bool {
	for _, s := range ss {
		if s.Type == typ {
			return true
		}
	}
	return false
}

// vendorRatingPrefix matches the rating Red Hat and its rebuilds put at the
// start of an advisory's summary ("Important: libxml2 security update").
var vendorRatingPrefix = regexp.MustCompile(`^(Low|Moderate|Important|Critical):\s`)

// vendorSeverity returns the advisory-level vendor rating: Ubuntu's
// priority (severity type "Ubuntu"), or the Red Hat family's rating in the
// summary.
func vendorSeverity(r *record, rater string) string {
	for _, s := range r.Severity {
		if s.Type == vulndb.SeverityUbuntu {
			return strings.TrimSpace(s.Score)
		}
	}
	switch rater {
	case "almalinux", "rocky", "redhat":
		if m := vendorRatingPrefix.FindStringSubmatch(r.Summary); m != nil {
			return m[1]
		}
	}
	return ""
}

// specific is what Drydock reads from ecosystem_specific and
// database_specific objects of distribution records.
type specific struct {
	Urgency  string `json:"urgency"`  // Debian security tracker
	Priority string `json:"priority"` // Ubuntu
	Severity string `json:"severity"` // several distributions
	Binaries []struct {
		BinaryName string `json:"binary_name"`
	} `json:"binaries"` // Ubuntu: binary packages built from the source
}

func mapAffected(in *affected, rater, vendor string) (vulndb.Affected, error) {
	eco := strings.TrimSpace(in.Package.Ecosystem)
	name := strings.TrimSpace(in.Package.Name)
	out := vulndb.Affected{Ecosystem: eco, Package: name, PURL: in.Package.PURL}
	base, _, _ := strings.Cut(eco, ":")
	switch {
	case eco == "" && name == "":
		// OSV allows an entry with only GIT ranges (no package); it
		// cannot be looked up by package, but is kept.
		if len(in.Ranges) == 0 {
			return out, errors.New("no package and no ranges")
		}
	case !knownEcosystems[base]:
		return out, fmt.Errorf("%w %q", ErrUnknownEcosystem, eco)
	case name == "":
		return out, fmt.Errorf("package without name in %s", eco)
	case !utf8.ValidString(name) || strings.IndexFunc(name, unicode.IsControl) >= 0:
		return out, fmt.Errorf("package name %q has invalid characters", name)
	}
	var err error
	if out.EcosystemSpecific, err = compactObject(in.EcosystemSpecific); err != nil {
		return out, fmt.Errorf("ecosystem_specific: %w", err)
	}
	if out.DatabaseSpecific, err = compactObject(in.DatabaseSpecific); err != nil {
		return out, fmt.Errorf("database_specific: %w", err)
	}
	for _, s := range in.Severity {
		sv, err := mapSeverity(s, rater)
		if err != nil {
			return out, fmt.Errorf("severity: %w", err)
		}
		out.Severity = append(out.Severity, sv)
	}
	open := false // some range has no fixed or last_affected event
	for i, r := range in.Ranges {
		mr, err := mapRange(r, eco)
		if err != nil {
			return out, fmt.Errorf("ranges[%d]: %w", i, err)
		}
		closed := false
		for _, e := range mr.Events {
			if e.Fixed != "" || e.LastAffected != "" {
				closed = true
			}
		}
		open = open || !closed
		out.Ranges = append(out.Ranges, mr)
	}
	for _, v := range in.Versions {
		if v == "" {
			return out, errors.New("empty version in versions")
		}
	}
	out.Versions = in.Versions

	// What distributions add: their rating, binary names, and a status.
	// Only distributions put them there; language ecosystems' objects can
	// be large (Go's lists of vulnerable symbols) and are not read.
	var es, ds specific
	if distroEcosystems[base] {
		_ = json.Unmarshal(out.EcosystemSpecific, &es)
		_ = json.Unmarshal(out.DatabaseSpecific, &ds)
	}
	out.VendorSeverity = firstNonEmpty(es.Urgency, ds.Urgency, es.Priority, ds.Priority, es.Severity, ds.Severity)
	if out.VendorSeverity == "" && distroEcosystems[base] {
		out.VendorSeverity = vendor
	}
	for _, b := range es.Binaries {
		if b.BinaryName != "" && !contains(out.BinaryNames, b.BinaryName) {
			out.BinaryNames = append(out.BinaryNames, b.BinaryName)
		}
	}
	if distroEcosystems[base] && len(out.Ranges) > 0 {
		// Every range closed by a fix: fixed; some range still open at
		// the newest versions: no fix published for them yet.
		out.Status = vulndb.StatusFixed
		if open {
			out.Status = vulndb.StatusUnfixed
		}
	}
	return out, nil
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s = strings.TrimSpace(s); s != "" {
			return s
		}
	}
	return ""
}

// mapRange checks one range and converts it. Versions in SEMVER ranges must
// be SemVer 2.0; versions in ECOSYSTEM ranges must parse with the
// ecosystem's own rules where Drydock knows them (Debian, Ubuntu, Alpine,
// PyPI, ... through osv-scalibr's semantic package, the comparator the
// matcher uses).
func mapRange(r rng, eco string) (vulndb.Range, error) {
	out := vulndb.Range{Type: r.Type, Repo: r.Repo}
	switch r.Type {
	case vulndb.RangeEcosystem, vulndb.RangeSemver:
	case vulndb.RangeGit:
		if r.Repo == "" {
			return out, errors.New("GIT range without repo")
		}
	default:
		return out, fmt.Errorf("unknown range type %q", r.Type)
	}
	if len(r.Events) == 0 {
		return out, errors.New("range without events")
	}
	introduced := false
	for i, e := range r.Events {
		var ev vulndb.Event
		n := 0
		var v string
		if e.Introduced != nil {
			n, v, ev.Introduced, introduced = n+1, *e.Introduced, *e.Introduced, true
		}
		if e.Fixed != nil {
			n, v, ev.Fixed = n+1, *e.Fixed, *e.Fixed
		}
		if e.LastAffected != nil {
			n, v, ev.LastAffected = n+1, *e.LastAffected, *e.LastAffected
		}
		if e.Limit != nil {
			n, v, ev.Limit = n+1, *e.Limit, *e.Limit
		}
		if n != 1 {
			return out, fmt.Errorf("event %d has %d of introduced/fixed/last_affected/limit, want exactly one", i, n)
		}
		if v == "" {
			return out, fmt.Errorf("event %d has an empty version", i)
		}
		if err := checkVersion(r.Type, eco, v, e.Limit != nil); err != nil {
			return out, fmt.Errorf("event %d: %w", i, err)
		}
		out.Events = append(out.Events, ev)
	}
	if !introduced {
		return out, errors.New("range without an introduced event")
	}
	var err error
	if out.DatabaseSpecific, err = compactObject(r.DatabaseSpecific); err != nil {
		return out, fmt.Errorf("database_specific: %w", err)
	}
	return out, nil
}

// Package kev reads CISA's Known Exploited Vulnerabilities catalogue (the
// JSON form) into CVE-level enrichment: each catalogue entry marks its CVE
// as exploited in the wild, with the date CISA added it, the remediation
// due date and whether it is known to be used in ransomware campaigns.
package kev

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/drydockhq/drydock/internal/vulndb"
	"github.com/drydockhq/drydock/internal/vulndb/fetch"
)

// DefaultURL is CISA's published catalogue.
const DefaultURL = "https://www.cisa.gov/sites/default/files/feeds/known_exploited_vulnerabilities.json"

// catalog is the document; entries are decoded one by one so a bad entry
// is rejected alone.
type catalog struct {
	Title           string            `json:"title"`
	CatalogVersion  string            `json:"catalogVersion"`
	DateReleased    string            `json:"dateReleased"`
	Count           *int              `json:"count"`
	Vulnerabilities []json.RawMessage `json:"vulnerabilities"`
}

type entry struct {
	CVEID                      string `json:"cveID"`
	VulnerabilityName          string `json:"vulnerabilityName"`
	DateAdded                  string `json:"dateAdded"`
	RequiredAction             string `json:"requiredAction"`
	DueDate                    string `json:"dueDate"`
	KnownRansomwareCampaignUse string `json:"knownRansomwareCampaignUse"`
}

var cveID = regexp.MustCompile(`^CVE-\d{4}-\d{4,}$`)

// Parse reads the catalogue. feed names the configured feed in rejected
// records. A document that is not a KEV catalogue is an error; an entry
// without a valid CVE id or date is rejected and the rest kept.
func Parse(r io.Reader, feed string) (*vulndb.FeedData, error) {
	var c catalog
	if err := json.NewDecoder(r).Decode(&c); err != nil {
		return nil, fmt.Errorf("kev: %w", err)
	}
	if c.Vulnerabilities == nil {
		return nil, errors.New("kev: no vulnerabilities array: not a KEV catalogue")
	}
	if c.Count != nil && *c.Count != len(c.Vulnerabilities) {
		// The catalogue states its own size: a mismatch means a cut or
		// altered file.
		return nil, fmt.Errorf("kev: catalogue says %d entries, holds %d", *c.Count, len(c.Vulnerabilities))
	}
	out := &vulndb.FeedData{}
	byCVE := map[string]int{}
	for i, raw := range c.Vulnerabilities {
		e, kev, err := parseEntry(raw)
		if err != nil {
			rec := fmt.Sprintf("vulnerabilities[%d]", i)
			if e.CVEID != "" {
				rec += " " + e.CVEID
			}
			out.Rejected = append(out.Rejected, vulndb.RecordError{Feed: feed, Record: rec, Err: err})
			continue
		}
		if j, dup := byCVE[e.CVEID]; dup {
			// Keep the earliest addition.
			if kev.DateAdded.Before(out.Enrichment[j].KEV.DateAdded) {
				out.Enrichment[j].KEV = kev
			}
			continue
		}
		byCVE[e.CVEID] = len(out.Enrichment)
		out.Enrichment = append(out.Enrichment, vulndb.Enrichment{CVE: e.CVEID, KEV: kev})
	}
	sort.Slice(out.Enrichment, func(i, j int) bool { return out.Enrichment[i].CVE < out.Enrichment[j].CVE })
	return out, nil
}

func parseEntry(raw json.RawMessage) (entry, *vulndb.KEV, error) {
	var e entry
	if err := json.Unmarshal(raw, &e); err != nil {
		return e, nil, err
	}
	e.CVEID = strings.TrimSpace(e.CVEID)
	if !cveID.MatchString(e.CVEID) {
		return e, nil, fmt.Errorf("cveID %q is not a CVE id", e.CVEID)
	}
	added, err := time.Parse(time.DateOnly, e.DateAdded)
	if err != nil {
		return e, nil, fmt.Errorf("dateAdded: %w", err)
	}
	k := &vulndb.KEV{
		DateAdded:          added,
		VulnerabilityName:  e.VulnerabilityName,
		RequiredAction:     e.RequiredAction,
		RansomwareUse:      e.KnownRansomwareCampaignUse,
		KnownRansomwareUse: strings.EqualFold(e.KnownRansomwareCampaignUse, "Known"),
	}
	if e.DueDate != "" {
		due, err := time.Parse(time.DateOnly, e.DueDate)
		if err != nil {
			return e, nil, fmt.Errorf("dueDate: %w", err)
		}
		k.DueDate = due
	}
	return e, k, nil
}

// New returns the feed of the KEV catalogue at url (http(s), file URL or
// path; DefaultURL for CISA's), named name.
func New(name, url string, client *fetch.Client) *fetch.DocumentFeed {
	return fetch.NewDocumentFeed(name, url, client, Parse)
}

package scan

import (
	"strings"
	"time"
)

// Exploitability is what the vulnerability database's current snapshot
// says of the exploitation of a finding's CVEs. Stored findings do not
// carry it (EPSS scores change daily, and storing them would rewrite every
// finding each day): the APIs read it when they shape a finding.
type Exploitability struct {
	// EPSS is the highest EPSS score among the CVEs; HasEPSS reports
	// whether any of them has one.
	EPSS    float64
	HasEPSS bool
	// KEVAdded is the latest date one of the CVEs was added to CISA's
	// Known Exploited Vulnerabilities catalogue; zero when none is in it.
	KEVAdded time.Time
}

// CVEs returns the CVE ids a finding is about: its vulnerability id when
// that is a CVE, then the related ids that are CVEs (a finding made from
// a GHSA or distribution advisory names its CVEs there).
func (f *Finding) CVEs() []string {
	var out []string
	if strings.HasPrefix(f.VulnerabilityID, "CVE-") {
		out = append(out, f.VulnerabilityID)
	}
	for _, id := range f.RelatedVulnerabilities {
		if strings.HasPrefix(id, "CVE-") && id != f.VulnerabilityID {
			out = append(out, id)
		}
	}
	return out
}

// Exploitability returns what the current vulnerability snapshot says of
// the exploitation of the finding's CVEs (see Finding.CVEs), all read from
// one snapshot.
func (s *Service) Exploitability(f *Finding) Exploitability {
	var x Exploitability
	if s.opts.Vulns == nil {
		return x
	}
	snap := s.opts.Vulns.Snapshot()
	if snap == nil {
		return x
	}
	for _, cve := range f.CVEs() {
		e := snap.EnrichmentFor(cve)
		if e == nil {
			continue
		}
		if e.EPSS != nil && (!x.HasEPSS || e.EPSS.Score > x.EPSS) {
			x.EPSS, x.HasEPSS = e.EPSS.Score, true
		}
		if e.KEV != nil && e.KEV.DateAdded.After(x.KEVAdded) {
			x.KEVAdded = e.KEV.DateAdded
		}
	}
	return x
}

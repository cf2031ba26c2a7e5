package vulndb

import (
	"bytes"
	"encoding/json"
	"reflect"
	"slices"
	"sort"
	"strings"
	"time"
)

// ChangeKind says what happened to an advisory in a generation.
type ChangeKind string

// The kinds of change.
const (
	// Added: the advisory is new.
	Added ChangeKind = "added"
	// Modified: the advisory changed; Change.Aspects says how.
	Modified ChangeKind = "modified"
	// Withdrawn: the publisher withdrew the advisory (it stays, marked).
	Withdrawn ChangeKind = "withdrawn"
	// Removed: the advisory is no longer in its source's feed.
	Removed ChangeKind = "removed"
)

// The aspects of a modification.
const (
	// AspectAffected: affected packages, ranges or version lists changed.
	AspectAffected = "affected"
	// AspectFixed: the fixed versions changed.
	AspectFixed = "fixed"
	// AspectSeverity: a CVSS or vendor rating changed.
	AspectSeverity = "severity"
	// AspectStatus: a distribution's status for a release changed.
	AspectStatus = "status"
	// AspectWithdrawn: the advisory was reinstated after a withdrawal.
	AspectWithdrawn = "withdrawn"
	// AspectAliases: aliases, related or upstream ids changed.
	AspectAliases = "aliases"
	// AspectDescription: summary or details changed.
	AspectDescription = "description"
	// AspectReferences: references changed.
	AspectReferences = "references"
	// AspectMetadata: anything else (dates, credits, database_specific).
	AspectMetadata = "metadata"
)

// Change is one advisory's change in a generation.
type Change struct {
	Source string     `json:"source"`
	ID     string     `json:"id"`
	Kind   ChangeKind `json:"kind"`
	// Aspects says what changed in a modification.
	Aspects []string `json:"aspects,omitempty"`
	// Keys are the packages the change touches: the advisory's keys before
	// and after.
	Keys []Key `json:"keys"`
}

// ChangeSet is what one generation changed.
type ChangeSet struct {
	Generation int64     `json:"generation"`
	CreatedAt  time.Time `json:"created_at"`
	Changes    []Change  `json:"changes"`
	// Keys is the union of the changes' keys, sorted.
	Keys []Key `json:"keys"`
	// CVEs whose KEV membership or NVD rating changed.
	CVEs []string `json:"cves,omitempty"`
	// EnrichmentChanged counts the enrichment records that changed,
	// EPSS-only changes included.
	EnrichmentChanged int `json:"enrichment_changed"`
	// Sources holds the counts per source.
	Sources map[string]Counts `json:"sources"`
}

// Counts returns the change set's totals.
func (c *ChangeSet) Counts() Counts {
	var n Counts
	for _, ch := range c.Changes {
		switch ch.Kind {
		case Added:
			n.Added++
		case Modified:
			n.Modified++
		case Withdrawn:
			n.Withdrawn++
		case Removed:
			n.Removed++
		}
	}
	n.EnrichmentChanged = c.EnrichmentChanged
	return n
}

// Empty reports whether nothing changed.
func (c *ChangeSet) Empty() bool { return len(c.Changes) == 0 && c.EnrichmentChanged == 0 }

// diffAdvisories returns how an advisory changed between two versions
// whose content hashes differ: the kind (Modified or Withdrawn) and the
// aspects.
func diffAdvisories(old, cur *Advisory) (ChangeKind, []string) {
	if old.Withdrawn.IsZero() && !cur.Withdrawn.IsZero() {
		return Withdrawn, nil
	}
	var aspects []string
	add := func(a string, changed bool) {
		if changed {
			aspects = append(aspects, a)
		}
	}
	add(AspectAffected, !sameAffected(old.Affected, cur.Affected))
	add(AspectFixed, !reflect.DeepEqual(fixedByKey(old), fixedByKey(cur)))
	add(AspectSeverity, !sameSeverity(old, cur))
	add(AspectStatus, !reflect.DeepEqual(statusByKey(old), statusByKey(cur)))
	add(AspectWithdrawn, !old.Withdrawn.IsZero() && cur.Withdrawn.IsZero())
	add(AspectAliases, !slices.Equal(old.Aliases, cur.Aliases) || !slices.Equal(old.Related, cur.Related) || !slices.Equal(old.Upstream, cur.Upstream))
	add(AspectDescription, old.Summary != cur.Summary || old.Details != cur.Details)
	add(AspectReferences, !slices.Equal(old.References, cur.References))
	add(AspectMetadata, !old.Published.Equal(cur.Published) || !old.Modified.Equal(cur.Modified) ||
		!reflect.DeepEqual(old.Credits, cur.Credits) || !bytes.Equal(old.DatabaseSpecific, cur.DatabaseSpecific) ||
		!sameSpecific(old.Affected, cur.Affected))
	if len(aspects) == 0 {
		aspects = []string{AspectMetadata}
	}
	return Modified, aspects
}

// sameAffected compares what matching reads: packages, ranges, versions.
func sameAffected(a, b []Affected) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := &a[i], &b[i]
		if x.Key() != y.Key() || x.PURL != y.PURL || !slices.Equal(x.BinaryNames, y.BinaryNames) ||
			!slices.Equal(x.Versions, y.Versions) || len(x.Ranges) != len(y.Ranges) {
			return false
		}
		for j := range x.Ranges {
			if x.Ranges[j].Type != y.Ranges[j].Type || x.Ranges[j].Repo != y.Ranges[j].Repo || !slices.Equal(x.Ranges[j].Events, y.Ranges[j].Events) {
				return false
			}
		}
	}
	return true
}

func sameSpecific(a, b []Affected) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i].EcosystemSpecific, b[i].EcosystemSpecific) || !bytes.Equal(a[i].DatabaseSpecific, b[i].DatabaseSpecific) {
			return false
		}
	}
	return true
}

func sameSeverity(a, b *Advisory) bool {
	if !slices.Equal(a.Severity, b.Severity) || len(a.Affected) != len(b.Affected) {
		return false
	}
	for i := range a.Affected {
		if a.Affected[i].VendorSeverity != b.Affected[i].VendorSeverity || !slices.Equal(a.Affected[i].Severity, b.Affected[i].Severity) {
			return false
		}
	}
	return true
}

// fixedByKey maps each key to its sorted fixed versions.
func fixedByKey(a *Advisory) map[Key][]string {
	m := map[Key][]string{}
	for i := range a.Affected {
		k := a.Affected[i].Key()
		for _, r := range a.Affected[i].Ranges {
			for _, e := range r.Events {
				if e.Fixed != "" && !slices.Contains(m[k], e.Fixed) {
					m[k] = append(m[k], e.Fixed)
				}
			}
		}
	}
	for k := range m {
		sort.Strings(m[k])
	}
	return m
}

func statusByKey(a *Advisory) map[Key]Status {
	m := map[Key]Status{}
	for i := range a.Affected {
		if s := a.Affected[i].Status; s != StatusAffected {
			m[a.Affected[i].Key()] = s
		}
	}
	return m
}

// unionKeys returns the distinct keys of both lists, sorted.
func unionKeys(lists ...[]Key) []Key {
	var out []Key
	seen := map[Key]bool{}
	for _, l := range lists {
		for _, k := range l {
			if !seen[k] {
				seen[k] = true
				out = append(out, k)
			}
		}
	}
	sortKeys(out)
	return out
}

func sortKeys(keys []Key) {
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].Ecosystem != keys[j].Ecosystem {
			return keys[i].Ecosystem < keys[j].Ecosystem
		}
		return keys[i].Package < keys[j].Package
	})
}

// marshalKeys encodes keys as a JSON array of [ecosystem, package] pairs.
func marshalKeys(keys []Key) string {
	pairs := make([][2]string, len(keys))
	for i, k := range keys {
		pairs[i] = [2]string{k.Ecosystem, k.Package}
	}
	b, _ := json.Marshal(pairs)
	return string(b)
}

func unmarshalKeys(s string) ([]Key, error) {
	var pairs [][2]string
	if err := json.Unmarshal([]byte(s), &pairs); err != nil {
		return nil, err
	}
	keys := make([]Key, len(pairs))
	for i, p := range pairs {
		keys[i] = Key{Ecosystem: p[0], Package: p[1]}
	}
	return keys, nil
}

// materialEnrichmentChange reports whether the KEV membership or the NVD
// ratings differ.
func materialEnrichmentChange(old, cur *Enrichment) bool {
	if old == nil || cur == nil {
		return (old != nil && (old.KEV != nil || len(old.NVD) > 0)) || (cur != nil && (cur.KEV != nil || len(cur.NVD) > 0))
	}
	return !reflect.DeepEqual(old.KEV, cur.KEV) || !slices.Equal(old.NVD, cur.NVD)
}

// isCVE reports whether id looks like a CVE id.
func isCVE(id string) bool { return strings.HasPrefix(id, "CVE-") }

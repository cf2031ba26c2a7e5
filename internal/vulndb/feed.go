package vulndb

import (
	"context"
	"errors"
	"fmt"
)

// Feed is one upstream source of vulnerability data (an OSV all.zip, the
// Alpine secdb of a release, an ALAS updateinfo.xml, Red Hat CSAF VEX, NVD,
// CISA KEV, EPSS, ...). Each sync asks every configured feed for its
// complete current content; the database computes what changed.
type Feed interface {
	// Name is the feed's configured name; it is stored with each advisory
	// as Advisory.Source and names the feed in status and errors.
	Name() string
	// Fetch returns the feed's complete current content. prev is the state
	// returned by the last successful fetch; a feed whose upstream says
	// nothing changed (ETag, If-Modified-Since) returns ErrNotModified.
	Fetch(ctx context.Context, prev FetchState) (*FeedData, FetchState, error)
}

// FetchState is what a feed remembers between fetches to ask upstream for
// changes only.
type FetchState struct {
	ETag         string `json:"etag,omitempty"`
	LastModified string `json:"last_modified,omitempty"`
	// Checksum is the SHA-256 of the last content, for sources without
	// ETag or Last-Modified (files, directories).
	Checksum string `json:"checksum,omitempty"`
}

// ErrNotModified is returned by Feed.Fetch when upstream is unchanged.
var ErrNotModified = errors.New("feed not modified")

// FeedData is the content of one fetch.
type FeedData struct {
	// Advisories holds every advisory the feed publishes now; one missing
	// from a later fetch of the same feed is gone upstream.
	Advisories []Advisory
	// Enrichment holds CVE-level data (NVD, KEV, EPSS feeds).
	Enrichment []Enrichment
	// Rejected lists the records that failed to parse or validate; the
	// rest of the feed is still usable.
	Rejected []RecordError
	// Unchanged lists the ids of advisories the feed did not read again
	// because their records are the same bytes as in the fetch whose state
	// was passed in as prev (an OSV archive entry with the same name,
	// CRC-32 and size). The database keeps them as it holds them. A feed
	// may only use it when prev is the state of its own previous fetch; if
	// the database does not hold one of them, the sync fetches the feed
	// again with an empty state.
	Unchanged []string
}

// RecordError says which record of which feed was rejected and why.
type RecordError struct {
	Feed   string
	Record string // record id, file name or position in the feed
	Err    error
}

func (e RecordError) Error() string {
	return fmt.Sprintf("feed %s: record %s: %v", e.Feed, e.Record, e.Err)
}

func (e RecordError) Unwrap() error { return e.Err }

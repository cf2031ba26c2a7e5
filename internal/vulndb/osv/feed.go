package osv

import (
	"context"
	"fmt"
	"path"

	"github.com/drydockhq/drydock/internal/vulndb"
	"github.com/drydockhq/drydock/internal/vulndb/fetch"
)

// Feed is an OSV source: an all.zip (OSV publishes one per ecosystem), a
// JSON file with one record or an array of them, or a directory of
// records, at an http(s) URL, a file:// URL or a local path.
type Feed struct {
	name   string
	url    string
	client *fetch.Client
	limits Limits
}

// NewFeed returns the OSV feed name reading url through client.
func NewFeed(name, url string, client *fetch.Client, lim Limits) *Feed {
	return &Feed{name: name, url: url, client: client, limits: lim}
}

// Name is the configured name of the feed.
func (f *Feed) Name() string { return f.name }

// URL is where the feed is read from.
func (f *Feed) URL() string { return f.url }

// Fetch downloads the feed (or learns it is unchanged: vulndb.ErrNotModified)
// and parses every record. Records that fail are in FeedData.Rejected; an
// archive that cannot be read at all is an error, and the database keeps
// what it had.
func (f *Feed) Fetch(ctx context.Context, prev vulndb.FetchState) (*vulndb.FeedData, vulndb.FetchState, error) {
	body, state, err := f.client.Get(ctx, f.url, prev)
	if err != nil {
		return nil, state, err
	}
	defer body.Close()
	var data *vulndb.FeedData
	if body.Dir != "" {
		data, err = ReadDir(ctx, body.Dir, f.name, f.limits)
	} else {
		data, err = ReadReaderAt(ctx, body, body.Size, path.Base(f.url), f.name, f.limits)
	}
	if err != nil {
		return nil, prev, fmt.Errorf("feed %s: %w", f.name, err)
	}
	return data, state, nil
}

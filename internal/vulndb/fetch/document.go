package fetch

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/drydockhq/drydock/internal/vulndb"
)

// DocumentFeed is a vulndb.Feed whose whole content is one document at one
// URL (CISA KEV, an EPSS file): each fetch downloads it, unless upstream
// says it did not change, and parses it.
type DocumentFeed struct {
	name   string
	url    string
	client *Client
	parse  func(r io.Reader, feed string) (*vulndb.FeedData, error)
}

// NewDocumentFeed returns the feed named name reading the document at url
// (http(s), file URL or path) with client and parsing it with parse.
func NewDocumentFeed(name, url string, client *Client, parse func(r io.Reader, feed string) (*vulndb.FeedData, error)) *DocumentFeed {
	return &DocumentFeed{name: name, url: url, client: client, parse: parse}
}

// Name returns the feed's configured name.
func (f *DocumentFeed) Name() string { return f.name }

// Fetch downloads and parses the document; an unchanged one (ETag,
// Last-Modified or checksum) returns vulndb.ErrNotModified.
func (f *DocumentFeed) Fetch(ctx context.Context, prev vulndb.FetchState) (*vulndb.FeedData, vulndb.FetchState, error) {
	body, state, err := f.client.Get(ctx, f.url, prev)
	if err != nil {
		if errors.Is(err, vulndb.ErrNotModified) {
			return nil, state, err
		}
		return nil, prev, fmt.Errorf("feed %s: %w", f.name, err)
	}
	defer body.Close()
	data, err := f.parse(body, f.name)
	if err != nil {
		return nil, prev, fmt.Errorf("feed %s: %s: %w", f.name, f.url, err)
	}
	return data, state, nil
}

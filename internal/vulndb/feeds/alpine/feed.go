package alpine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/drydockhq/drydock/internal/vulndb"
	"github.com/drydockhq/drydock/internal/vulndb/fetch"
)

// DefaultURL is the live secdb: an index of releases (v3.x/, edge/), each
// holding main.json and community.json.
const DefaultURL = "https://secdb.alpinelinux.org/"

// DefaultRepos are the repositories read from each release.
var DefaultRepos = []string{"main", "community"}

// maxIndexSize bounds the release index page of an HTTP base.
const maxIndexSize = 4 << 20

// Feed is the Alpine secdb as a vulndb.Feed.
type Feed struct {
	name     string
	url      string
	client   *fetch.Client
	releases map[string]bool
	repos    []string
}

// Option configures a Feed.
type Option func(*Feed)

// WithReleases limits the feed to these releases ("v3.20", "edge"); by
// default every release the base lists is read.
func WithReleases(releases ...string) Option {
	return func(f *Feed) {
		f.releases = map[string]bool{}
		for _, r := range releases {
			f.releases[r] = true
		}
	}
}

// WithRepos sets the repositories read from each release (default main
// and community).
func WithRepos(repos ...string) Option {
	return func(f *Feed) { f.repos = repos }
}

// New returns the feed named name reading url, which is either
//   - one secdb document: an http(s) or file URL or a path whose name ends
//     in .json, .yaml or .yml (optionally .gz), or
//   - a base holding one directory per release (the live secdb,
//     DefaultURL, or a local mirror laid out the same way): the releases
//     are discovered from the base's index page or directory listing, and
//     for each one REPO.json is read (REPO.yaml, the older form, when
//     there is no JSON).
func New(name, url string, client *fetch.Client, opts ...Option) *Feed {
	f := &Feed{name: name, url: url, client: client, repos: DefaultRepos}
	for _, o := range opts {
		o(f)
	}
	return f
}

// Name returns the feed's configured name.
func (f *Feed) Name() string { return f.name }

// Fetch reads every document of the feed and merges them: one advisory per
// vulnerability across releases and repositories. The state is a checksum
// over all documents; when it equals prev.Checksum, Fetch returns
// vulndb.ErrNotModified.
func (f *Feed) Fetch(ctx context.Context, prev vulndb.FetchState) (*vulndb.FeedData, vulndb.FetchState, error) {
	docs, err := f.documents(ctx)
	if err != nil {
		return nil, prev, err
	}
	b := newBuilder(f.name)
	sums := sha256.New()
	read := 0
	for _, d := range docs {
		data, sum, err := f.readDocument(ctx, d)
		if err != nil {
			return nil, prev, err
		}
		if data == nil {
			continue // optional document absent
		}
		read++
		fmt.Fprintf(sums, "%s %s\n", d.url, sum)
		b.merge(data)
	}
	if read == 0 {
		return nil, prev, fmt.Errorf("feed %s: no secdb document found at %s", f.name, f.url)
	}
	state := vulndb.FetchState{Checksum: hex.EncodeToString(sums.Sum(nil))}
	if prev.Checksum != "" && prev.Checksum == state.Checksum {
		return nil, state, vulndb.ErrNotModified
	}
	return b.data(), state, nil
}

// document is one secdb file to read, with its alternatives (the YAML
// name when the JSON one is absent). optional documents may be missing.
type document struct {
	url      string
	alt      []string
	optional bool
}

func (f *Feed) readDocument(ctx context.Context, d document) (*vulndb.FeedData, string, error) {
	for _, u := range append([]string{d.url}, d.alt...) {
		body, _, err := f.client.Get(ctx, u, vulndb.FetchState{})
		if isNotFound(err) {
			continue
		}
		if err != nil {
			return nil, "", fmt.Errorf("feed %s: %w", f.name, err)
		}
		data, err := Parse(body, f.name)
		body.Close()
		if err != nil {
			return nil, "", fmt.Errorf("feed %s: %s: %w", f.name, u, err)
		}
		return data, body.Checksum, nil
	}
	if d.optional {
		return nil, "", nil
	}
	return nil, "", fmt.Errorf("feed %s: %s not found", f.name, d.url)
}

func isNotFound(err error) bool {
	var he *fetch.HTTPError
	if errors.As(err, &he) {
		return he.StatusCode == http.StatusNotFound
	}
	return errors.Is(err, os.ErrNotExist)
}

// isDocumentName reports whether a source names one secdb document.
func isDocumentName(name string) bool {
	name = strings.TrimSuffix(strings.ToLower(name), ".gz")
	return strings.HasSuffix(name, ".json") || strings.HasSuffix(name, ".yaml") || strings.HasSuffix(name, ".yml")
}

var releaseName = regexp.MustCompile(`^(v\d+\.\d+|edge)$`)

// documents lists the documents the feed reads.
func (f *Feed) documents(ctx context.Context) ([]document, error) {
	if isDocumentName(f.url) {
		return []document{{url: f.url}}, nil
	}
	releases, err := f.discover(ctx)
	if err != nil {
		return nil, err
	}
	var docs []document
	for _, rel := range releases {
		if f.releases != nil && !f.releases[rel] {
			continue
		}
		for _, repo := range f.repos {
			base := joinURL(f.url, rel, repo)
			docs = append(docs, document{
				url:      base + ".json",
				alt:      []string{base + ".yaml"},
				optional: true, // not every release has every repository
			})
		}
	}
	if len(docs) == 0 {
		return nil, fmt.Errorf("feed %s: no releases found at %s", f.name, f.url)
	}
	return docs, nil
}

func joinURL(base string, parts ...string) string {
	if !strings.Contains(base, "://") {
		return filepath.Join(append([]string{base}, parts...)...)
	}
	return strings.TrimSuffix(base, "/") + "/" + strings.Join(parts, "/")
}

var hrefPattern = regexp.MustCompile(`href="([^"?#]+)/"`)

// discover lists the releases at the base: subdirectories of a local
// directory, or the links of an HTTP index page.
func (f *Feed) discover(ctx context.Context) ([]string, error) {
	src := f.url
	if strings.HasPrefix(src, "http://") || strings.HasPrefix(src, "https://") {
		if !strings.HasSuffix(src, "/") {
			src += "/"
		}
	}
	body, _, err := f.client.Get(ctx, src, vulndb.FetchState{})
	if err != nil {
		return nil, fmt.Errorf("feed %s: release index: %w", f.name, err)
	}
	defer body.Close()
	var names []string
	if body.Dir != "" {
		entries, err := os.ReadDir(body.Dir)
		if err != nil {
			return nil, fmt.Errorf("feed %s: %w", f.name, err)
		}
		for _, e := range entries {
			if e.IsDir() {
				names = append(names, e.Name())
			}
		}
	} else {
		page, err := io.ReadAll(io.LimitReader(body, maxIndexSize))
		if err != nil {
			return nil, fmt.Errorf("feed %s: release index: %w", f.name, err)
		}
		for _, m := range hrefPattern.FindAllSubmatch(page, -1) {
			names = append(names, strings.TrimPrefix(string(m[1]), "./"))
		}
	}
	seen := map[string]bool{}
	var releases []string
	for _, n := range names {
		if releaseName.MatchString(n) && !seen[n] {
			seen[n] = true
			releases = append(releases, n)
		}
	}
	sort.Strings(releases)
	return releases, nil
}

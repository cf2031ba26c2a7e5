// Package nvd reads CVSS ratings from the NVD CVE API 2.0 (and from files
// in the same JSON layout: a saved API page or NVD's yearly JSON 2.0 feed
// files) into CVE-level enrichment.
//
// The API is paged: Fetch asks for startIndex 0, 2000, 4000, ... until it
// has totalResults records, pausing between pages as NVD asks (6 s without
// an API key, 0.6 s with one).
package nvd

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/drydockhq/drydock/internal/vulndb"
	"github.com/drydockhq/drydock/internal/vulndb/fetch"
)

// DefaultURL is the NVD CVE API 2.0.
const DefaultURL = "https://services.nvd.nist.gov/rest/json/cves/2.0"

// Paging defaults, as NVD documents them: at most 2,000 CVEs a page, and
// 5 requests per rolling 30 s without a key (50 with one).
const (
	DefaultPageSize     = 2000
	DefaultPageDelay    = 6 * time.Second
	DefaultKeyPageDelay = 600 * time.Millisecond
)

var cveID = regexp.MustCompile(`^CVE-\d{4}-\d{4,}$`)

// Page is one NVD JSON document: an API response or a feed file.
type Page struct {
	ResultsPerPage int
	StartIndex     int
	TotalResults   int
	// Records is how many vulnerabilities the page held, kept or not.
	Records int
	Data    *vulndb.FeedData
}

type cveItem struct {
	CVE struct {
		ID         string              `json:"id"`
		VulnStatus string              `json:"vulnStatus"`
		Metrics    map[string][]metric `json:"metrics"`
	} `json:"cve"`
}

type metric struct {
	Source   string `json:"source"`
	Type     string `json:"type"`
	CVSSData struct {
		Version      string   `json:"version"`
		VectorString string   `json:"vectorString"`
		BaseScore    *float64 `json:"baseScore"`
	} `json:"cvssData"`
}

// metricTypes maps NVD metric keys to severity types, in output order.
var metricTypes = []struct{ key, typ string }{
	{"cvssMetricV40", vulndb.SeverityCVSSv4},
	{"cvssMetricV31", vulndb.SeverityCVSSv3},
	{"cvssMetricV30", vulndb.SeverityCVSSv3},
	{"cvssMetricV2", vulndb.SeverityCVSSv2},
}

// Parse reads one NVD JSON 2.0 document and returns the CVSS ratings of
// its CVEs, each as NVD states it: the vector, the base score and the
// source that assigned it (nvd@nist.gov, or a CNA). CVEs without CVSS
// metrics and rejected CVEs yield nothing. A record that does not decode
// or has no valid id is rejected; a metric without a vector or with a
// score outside [0, 10] is rejected alone.
func Parse(r io.Reader, feed string) (*vulndb.FeedData, error) {
	p, err := ParsePage(r, feed)
	if err != nil {
		return nil, err
	}
	return p.Data, nil
}

// ParsePage is Parse with the paging fields of the document. It streams
// the vulnerabilities array, so a yearly feed file is never held whole.
func ParsePage(r io.Reader, feed string) (*Page, error) {
	dec := json.NewDecoder(r)
	if err := expectDelim(dec, '{'); err != nil {
		return nil, fmt.Errorf("nvd: %w", err)
	}
	p := &Page{Data: &vulndb.FeedData{}}
	sawVulns := false
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("nvd: %w", err)
		}
		key, _ := tok.(string)
		switch key {
		case "resultsPerPage":
			err = dec.Decode(&p.ResultsPerPage)
		case "startIndex":
			err = dec.Decode(&p.StartIndex)
		case "totalResults":
			err = dec.Decode(&p.TotalResults)
		case "vulnerabilities":
			sawVulns = true
			err = p.readVulnerabilities(dec, feed)
		default:
			var skip json.RawMessage
			err = dec.Decode(&skip)
		}
		if err != nil {
			return nil, fmt.Errorf("nvd: %s: %w", key, err)
		}
	}
	if err := expectDelim(dec, '}'); err != nil {
		return nil, fmt.Errorf("nvd: %w", err)
	}
	if !sawVulns {
		return nil, errors.New("nvd: no vulnerabilities array: not an NVD CVE 2.0 document")
	}
	return p, nil
}

func expectDelim(dec *json.Decoder, want json.Delim) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if d, ok := tok.(json.Delim); !ok || d != want {
		return fmt.Errorf("expected %q, found %v", want, tok)
	}
	return nil
}

func (p *Page) readVulnerabilities(dec *json.Decoder, feed string) error {
	if err := expectDelim(dec, '['); err != nil {
		return err
	}
	for i := 0; dec.More(); i++ {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return err // a syntax error: the document is broken
		}
		p.Records++
		var item cveItem
		if err := json.Unmarshal(raw, &item); err != nil {
			p.reject(feed, fmt.Sprintf("vulnerabilities[%d]", i), err)
			continue
		}
		id := item.CVE.ID
		if !cveID.MatchString(id) {
			p.reject(feed, fmt.Sprintf("vulnerabilities[%d]", i), fmt.Errorf("id %q is not a CVE id", id))
			continue
		}
		if item.CVE.VulnStatus == "Rejected" {
			continue
		}
		var sevs []vulndb.Severity
		for _, mt := range metricTypes {
			for j, m := range item.CVE.Metrics[mt.key] {
				s, err := severity(mt.typ, m)
				if err != nil {
					p.reject(feed, fmt.Sprintf("%s %s[%d]", id, mt.key, j), err)
					continue
				}
				sevs = append(sevs, s)
			}
		}
		if len(sevs) > 0 {
			p.Data.Enrichment = append(p.Data.Enrichment, vulndb.Enrichment{CVE: id, NVD: sevs})
		}
	}
	return expectDelim(dec, ']')
}

func (p *Page) reject(feed, record string, err error) {
	p.Data.Rejected = append(p.Data.Rejected, vulndb.RecordError{Feed: feed, Record: record, Err: err})
}

func severity(typ string, m metric) (vulndb.Severity, error) {
	v := strings.TrimSpace(m.CVSSData.VectorString)
	if v == "" {
		return vulndb.Severity{}, errors.New("no vectorString")
	}
	want := map[string]string{vulndb.SeverityCVSSv3: "CVSS:3.", vulndb.SeverityCVSSv4: "CVSS:4.0/"}[typ]
	if want != "" && !strings.HasPrefix(v, want) {
		return vulndb.Severity{}, fmt.Errorf("vector %q is not %s", v, typ)
	}
	if typ == vulndb.SeverityCVSSv2 && strings.HasPrefix(v, "CVSS:") {
		return vulndb.Severity{}, fmt.Errorf("vector %q is not CVSS v2", v)
	}
	if m.CVSSData.BaseScore == nil {
		return vulndb.Severity{}, errors.New("no baseScore")
	}
	score := *m.CVSSData.BaseScore
	if math.IsNaN(score) || score < 0 || score > 10 {
		return vulndb.Severity{}, fmt.Errorf("baseScore %v is outside [0, 10]", score)
	}
	return vulndb.Severity{Type: typ, Score: v, BaseScore: score, Source: m.Source}, nil
}

// Feed is NVD as a vulndb.Feed.
type Feed struct {
	name      string
	url       string
	client    *fetch.Client
	apiKey    string
	pageSize  int
	pageDelay time.Duration
	delaySet  bool
}

// Option configures a Feed.
type Option func(*Feed)

// WithAPIKey sends NVD's apiKey header, which raises the rate limit. The
// key is never logged.
func WithAPIKey(key string) Option { return func(f *Feed) { f.apiKey = key } }

// WithPageSize sets resultsPerPage (1–2000).
func WithPageSize(n int) Option { return func(f *Feed) { f.pageSize = n } }

// WithPageDelay sets the pause between API pages.
func WithPageDelay(d time.Duration) Option {
	return func(f *Feed) { f.pageDelay, f.delaySet = d, true }
}

// New returns the feed named name reading url, which is either
//   - the NVD CVE API 2.0 (DefaultURL, or a mirror of it): read page by
//     page; any query parameters in url (a filter) are kept, or
//   - NVD JSON documents: a URL or path ending in .json or .json.gz (an
//     API page saved to a file, or one of NVD's yearly JSON 2.0 feed
//     files), or a local directory of them.
func New(name, url string, client *fetch.Client, opts ...Option) *Feed {
	f := &Feed{name: name, url: url, client: client, pageSize: DefaultPageSize}
	for _, o := range opts {
		o(f)
	}
	if f.pageSize <= 0 || f.pageSize > DefaultPageSize {
		f.pageSize = DefaultPageSize
	}
	if !f.delaySet {
		f.pageDelay = DefaultPageDelay
		if f.apiKey != "" {
			f.pageDelay = DefaultKeyPageDelay
		}
	}
	return f
}

// Name returns the feed's configured name.
func (f *Feed) Name() string { return f.name }

// Fetch reads every page or document and returns the CVSS ratings of all
// CVEs. The API has no validators for a whole collection, so the state is
// a checksum of the result: an unchanged result returns
// vulndb.ErrNotModified.
func (f *Feed) Fetch(ctx context.Context, prev vulndb.FetchState) (*vulndb.FeedData, vulndb.FetchState, error) {
	var (
		data *vulndb.FeedData
		err  error
	)
	if isDocument(f.url) {
		data, err = f.fetchDocuments(ctx)
	} else {
		data, err = f.fetchAPI(ctx)
	}
	if err != nil {
		return nil, prev, fmt.Errorf("feed %s: %w", f.name, err)
	}
	data.Enrichment = dedupe(data.Enrichment)
	state := vulndb.FetchState{Checksum: checksum(data)}
	if prev.Checksum != "" && prev.Checksum == state.Checksum {
		return nil, state, vulndb.ErrNotModified
	}
	return data, state, nil
}

func isDocument(src string) bool {
	if !strings.HasPrefix(src, "http://") && !strings.HasPrefix(src, "https://") {
		return true // file URL, path or directory
	}
	u, err := url.Parse(src)
	if err != nil {
		return false
	}
	p := strings.TrimSuffix(u.Path, ".gz")
	return strings.HasSuffix(p, ".json")
}

func (f *Feed) get(ctx context.Context, src string) (*fetch.Body, error) {
	var opts []fetch.RequestOption
	if f.apiKey != "" {
		opts = append(opts, fetch.WithHeader("apiKey", f.apiKey))
	}
	body, _, err := f.client.Get(ctx, src, vulndb.FetchState{}, opts...)
	return body, err
}

func (f *Feed) fetchAPI(ctx context.Context) (*vulndb.FeedData, error) {
	base, err := url.Parse(f.url)
	if err != nil {
		return nil, err
	}
	out := &vulndb.FeedData{}
	for start, pages := 0, 0; ; pages++ {
		if pages > 0 && f.pageDelay > 0 {
			t := time.NewTimer(f.pageDelay)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil, ctx.Err()
			case <-t.C:
			}
		}
		q := base.Query()
		q.Set("startIndex", strconv.Itoa(start))
		q.Set("resultsPerPage", strconv.Itoa(f.pageSize))
		u := *base
		u.RawQuery = q.Encode()
		body, err := f.get(ctx, u.String())
		if err != nil {
			return nil, err
		}
		p, err := ParsePage(body, f.name)
		body.Close()
		if err != nil {
			return nil, fmt.Errorf("page at startIndex %d: %w", start, err)
		}
		if p.StartIndex != start {
			return nil, fmt.Errorf("page at startIndex %d answered startIndex %d", start, p.StartIndex)
		}
		out.Enrichment = append(out.Enrichment, p.Data.Enrichment...)
		out.Rejected = append(out.Rejected, p.Data.Rejected...)
		start += p.Records
		if start >= p.TotalResults {
			return out, nil
		}
		if p.Records == 0 {
			return nil, fmt.Errorf("page at startIndex %d is empty, but totalResults is %d", start, p.TotalResults)
		}
	}
}

func (f *Feed) fetchDocuments(ctx context.Context) (*vulndb.FeedData, error) {
	body, err := f.get(ctx, f.url)
	if err != nil {
		return nil, err
	}
	if body.Dir == "" {
		defer body.Close()
		return Parse(body, f.name)
	}
	entries, err := os.ReadDir(body.Dir)
	if err != nil {
		return nil, err
	}
	out := &vulndb.FeedData{}
	n := 0
	for _, e := range entries {
		name := strings.TrimSuffix(e.Name(), ".gz")
		if e.IsDir() || !strings.HasSuffix(name, ".json") {
			continue
		}
		b, err := f.get(ctx, filepath.Join(body.Dir, e.Name()))
		if err != nil {
			return nil, err
		}
		d, err := Parse(b, f.name)
		b.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", e.Name(), err)
		}
		out.Enrichment = append(out.Enrichment, d.Enrichment...)
		out.Rejected = append(out.Rejected, d.Rejected...)
		n++
	}
	if n == 0 {
		return nil, fmt.Errorf("no .json or .json.gz files in %s", body.Dir)
	}
	return out, nil
}

// dedupe keeps one entry per CVE (the last one read: pages and yearly
// files overlap when a CVE changes during a sync) and sorts by CVE.
func dedupe(es []vulndb.Enrichment) []vulndb.Enrichment {
	idx := map[string]int{}
	out := es[:0]
	for _, e := range es {
		if i, ok := idx[e.CVE]; ok {
			out[i] = e
			continue
		}
		idx[e.CVE] = len(out)
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].CVE < out[j].CVE })
	return out
}

func checksum(d *vulndb.FeedData) string {
	h := sha256.New()
	enc := json.NewEncoder(h)
	for _, e := range d.Enrichment {
		_ = enc.Encode(e)
	}
	return hex.EncodeToString(h.Sum(nil))
}

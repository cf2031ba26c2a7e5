package alas

import (
	"bufio"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/drydockhq/drydock/internal/vulndb"
	"github.com/drydockhq/drydock/internal/vulndb/fetch"
)

// DefaultURL returns the mirror list of the x86_64 core repository of an
// Amazon Linux release ("2", "2022", "2023"), or "" for an unknown one.
// Each architecture's repository carries the same advisories.
func DefaultURL(release string) string {
	switch release {
	case "2":
		return "https://cdn.amazonlinux.com/2/core/latest/x86_64/mirror.list"
	case "2022":
		return "https://cdn.amazonlinux.com/al2022/core/mirrors/latest/x86_64/mirror.list"
	case "2023":
		return "https://cdn.amazonlinux.com/al2023/core/mirrors/latest/x86_64/mirror.list"
	}
	return ""
}

// maxMetadata bounds a mirror list or repomd.xml.
const maxMetadata = 1 << 20

// Feed is one Amazon Linux release's advisories as a vulndb.Feed.
type Feed struct {
	name    string
	release string
	url     string
	client  *fetch.Client
}

// New returns the feed named name for an Amazon Linux release ("2",
// "2022", "2023") reading url, which is one of
//   - a mirror list (DefaultURL(release)): its first line is the
//     repository, whose repodata/repomd.xml locates updateinfo;
//   - a repository's repodata/repomd.xml;
//   - an updateinfo.xml or updateinfo.xml.gz itself (URL, file URL or path).
func New(name, release, url string, client *fetch.Client) *Feed {
	return &Feed{name: name, release: release, url: url, client: client}
}

// Name returns the feed's configured name.
func (f *Feed) Name() string { return f.name }

// Fetch locates and downloads updateinfo and parses it. An unchanged
// updateinfo (ETag, Last-Modified or checksum) returns
// vulndb.ErrNotModified. When repomd.xml states the SHA-256 of the
// decompressed updateinfo, the download is checked against it.
func (f *Feed) Fetch(ctx context.Context, prev vulndb.FetchState) (*vulndb.FeedData, vulndb.FetchState, error) {
	src, wantSum, err := f.locate(ctx)
	if err != nil {
		return nil, prev, fmt.Errorf("feed %s: %w", f.name, err)
	}
	body, state, err := f.client.Get(ctx, src, prev)
	if errors.Is(err, vulndb.ErrNotModified) {
		return nil, state, err
	}
	if err != nil {
		return nil, prev, fmt.Errorf("feed %s: %w", f.name, err)
	}
	defer body.Close()
	if wantSum != "" && !strings.EqualFold(wantSum, body.Checksum) {
		return nil, prev, fmt.Errorf("feed %s: %s: SHA-256 %s, repomd.xml says %s", f.name, src, body.Checksum, wantSum)
	}
	data, err := Parse(body, f.name, f.release)
	if err != nil {
		return nil, prev, fmt.Errorf("feed %s: %s: %w", f.name, src, err)
	}
	return data, state, nil
}

// locate returns the updateinfo URL and, when known, the SHA-256 of its
// decompressed content.
func (f *Feed) locate(ctx context.Context) (string, string, error) {
	u := f.url
	if strings.HasSuffix(u, "mirror.list") {
		repo, err := f.mirror(ctx, u)
		if err != nil {
			return "", "", err
		}
		u = repo + "/repodata/repomd.xml"
	}
	if strings.HasSuffix(u, "repomd.xml") {
		return f.repomd(ctx, u)
	}
	return u, "", nil
}

func (f *Feed) readSmall(ctx context.Context, src string) ([]byte, error) {
	body, _, err := f.client.Get(ctx, src, vulndb.FetchState{})
	if err != nil {
		return nil, err
	}
	defer body.Close()
	if body.Size > maxMetadata {
		return nil, fmt.Errorf("%s: %d bytes is too large for repository metadata", src, body.Size)
	}
	return io.ReadAll(body)
}

// mirror reads the first repository URL of a mirror list.
func (f *Feed) mirror(ctx context.Context, src string) (string, error) {
	raw, err := f.readSmall(ctx, src)
	if err != nil {
		return "", err
	}
	sc := bufio.NewScanner(strings.NewReader(string(raw)))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if !strings.HasPrefix(line, "http://") && !strings.HasPrefix(line, "https://") {
			return "", fmt.Errorf("%s: %q is not a repository URL", src, line)
		}
		line = strings.ReplaceAll(line, "$basearch", "x86_64")
		return strings.TrimSuffix(line, "/"), nil
	}
	return "", fmt.Errorf("%s: no repository listed", src)
}

type repomdDoc struct {
	XMLName xml.Name `xml:"repomd"`
	Data    []struct {
		Type         string `xml:"type,attr"`
		OpenChecksum struct {
			Type  string `xml:"type,attr"`
			Value string `xml:",chardata"`
		} `xml:"open-checksum"`
		Location struct {
			Href string `xml:"href,attr"`
		} `xml:"location"`
	} `xml:"data"`
}

// repomd finds updateinfo in a repository's repomd.xml.
func (f *Feed) repomd(ctx context.Context, src string) (string, string, error) {
	raw, err := f.readSmall(ctx, src)
	if err != nil {
		return "", "", err
	}
	var doc repomdDoc
	if err := xml.Unmarshal(raw, &doc); err != nil {
		return "", "", fmt.Errorf("%s: %w", src, err)
	}
	base := strings.TrimSuffix(strings.TrimSuffix(src, "repomd.xml"), "/")
	base = strings.TrimSuffix(base, "repodata")
	for _, d := range doc.Data {
		if d.Type != "updateinfo" {
			continue
		}
		href := strings.TrimSpace(d.Location.Href)
		if href == "" || strings.Contains(href, "..") || strings.Contains(href, "://") || strings.HasPrefix(href, "/") {
			return "", "", fmt.Errorf("%s: updateinfo location %q", src, href)
		}
		sum := ""
		if strings.EqualFold(d.OpenChecksum.Type, "sha256") {
			sum = strings.TrimSpace(d.OpenChecksum.Value)
		}
		return strings.TrimSuffix(base, "/") + "/" + href, sum, nil
	}
	return "", "", fmt.Errorf("%s: no updateinfo in the repository metadata", src)
}

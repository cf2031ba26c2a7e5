// Package sources is the configuration of the vulnerability database's
// feeds: named sources, each of a kind (an OSV archive, the Alpine secdb,
// Amazon Linux updateinfo, Red Hat CSAF VEX, NVD, CISA KEV, EPSS) and a URL,
// with defaults pointing at the real upstream endpoints, and the
// construction of each source's vulndb.Feed.
//
// A configuration file (JSON) adds sources, overrides the defaults by name
// (another URL — a mirror, a file:// URL or a local path for air-gapped
// sites — or "enabled": false), or drops the defaults altogether:
//
//	{
//	  "interval": "6h",
//	  "sources": [
//	    {"name": "osv-Go", "url": "/srv/mirror/osv/Go/all.zip"},
//	    {"name": "osv-npm", "enabled": false},
//	    {"name": "nvd", "enabled": true, "api_key_env": "NVD_API_KEY"},
//	    {"name": "alpine-v3.20", "kind": "alpine-secdb", "url": "https://secdb.alpinelinux.org/", "releases": ["v3.20"]}
//	  ]
//	}
package sources

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"regexp"
	"slices"
	"time"

	"github.com/drydockhq/drydock/internal/vulndb"
	"github.com/drydockhq/drydock/internal/vulndb/feeds/alas"
	"github.com/drydockhq/drydock/internal/vulndb/feeds/alpine"
	"github.com/drydockhq/drydock/internal/vulndb/feeds/csaf"
	"github.com/drydockhq/drydock/internal/vulndb/feeds/epss"
	"github.com/drydockhq/drydock/internal/vulndb/feeds/kev"
	"github.com/drydockhq/drydock/internal/vulndb/feeds/nvd"
	"github.com/drydockhq/drydock/internal/vulndb/fetch"
	"github.com/drydockhq/drydock/internal/vulndb/osv"
)

// The kinds of source.
const (
	KindOSV        = "osv"
	KindAlpine     = "alpine-secdb"
	KindALAS       = "alas"
	KindRedHatCSAF = "redhat-csaf"
	KindNVD        = "nvd"
	KindKEV        = "kev"
	KindEPSS       = "epss"
)

var kinds = []string{KindOSV, KindAlpine, KindALAS, KindRedHatCSAF, KindNVD, KindKEV, KindEPSS}

// Source is one configured source.
type Source struct {
	Name string `json:"name"`
	Kind string `json:"kind,omitempty"`
	URL  string `json:"url,omitempty"`
	// Enabled leaves a source out of syncs when false; nil keeps the
	// default's setting (true for a source the configuration adds).
	Enabled *bool `json:"enabled,omitempty"`
	// Release is the Amazon Linux release of an alas source ("2",
	// "2022", "2023").
	Release string `json:"release,omitempty"`
	// Releases limits an alpine-secdb source to some releases ("v3.20",
	// "edge"); all by default.
	Releases []string `json:"releases,omitempty"`
	// APIKeyEnv names the environment variable holding an NVD API key
	// (never the key itself: configuration files get shared).
	APIKeyEnv string `json:"api_key_env,omitempty"`
}

// IsEnabled reports whether the source takes part in syncs.
func (s Source) IsEnabled() bool { return s.Enabled == nil || *s.Enabled }

// Duration is a time.Duration written as "6h" or "90m" in JSON.
type Duration time.Duration

// UnmarshalJSON reads a duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration: %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// MarshalJSON writes a duration string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// DefaultInterval is how often a server syncs when the configuration does
// not say.
const DefaultInterval = 6 * time.Hour

// Config is the sources configuration.
type Config struct {
	// NoDefaults drops the built-in sources: only the listed ones remain.
	NoDefaults bool `json:"no_defaults,omitempty"`
	// Interval is the time between scheduled syncs in the server.
	Interval Duration `json:"interval,omitempty"`
	Sources  []Source `json:"sources,omitempty"`
}

// OSVBase is where OSV publishes one all.zip per ecosystem
// (OSVBase + url.PathEscape(ecosystem) + "/all.zip").
const OSVBase = "https://osv-vulnerabilities.storage.googleapis.com/"

// DefaultOSVEcosystems are the OSV ecosystems synced by default: the
// language ecosystems Drydock catalogs and the distributions its images
// run.
var DefaultOSVEcosystems = []string{
	"Go", "PyPI", "npm", "Maven", "NuGet", "RubyGems", "crates.io", "Packagist", "Hex", "Pub",
	"Debian", "Ubuntu", "Alpine", "AlmaLinux", "Rocky Linux", "Red Hat", "SUSE", "openSUSE",
	"Wolfi", "Chainguard", "Azure Linux", "Photon OS",
}

// OSVURL is the all.zip of an OSV ecosystem.
func OSVURL(ecosystem string) string { return OSVBase + url.PathEscape(ecosystem) + "/all.zip" }

// OSVName is the default source name of an OSV ecosystem ("osv-Go",
// "osv-Rocky-Linux").
func OSVName(ecosystem string) string { return "osv-" + nameUnsafe.ReplaceAllString(ecosystem, "-") }

var nameUnsafe = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// Defaults returns the built-in sources. The heavy ones (Red Hat's CSAF VEX
// archive, the whole NVD through its rate-limited API) are present but
// disabled: OSV's Red Hat ecosystem and the ratings OSV records carry cover
// the common case.
func Defaults() []Source {
	off := false
	var out []Source
	for _, e := range DefaultOSVEcosystems {
		out = append(out, Source{Name: OSVName(e), Kind: KindOSV, URL: OSVURL(e)})
	}
	out = append(out, Source{Name: "alpine-secdb", Kind: KindAlpine, URL: alpine.DefaultURL})
	for _, r := range []string{"2", "2023"} {
		out = append(out, Source{Name: "alas-al" + r, Kind: KindALAS, Release: r, URL: alas.DefaultURL(r)})
	}
	out = append(out,
		Source{Name: "alas-al2022", Kind: KindALAS, Release: "2022", URL: alas.DefaultURL("2022"), Enabled: &off},
		Source{Name: "redhat-csaf", Kind: KindRedHatCSAF, URL: csaf.DefaultURL, Enabled: &off},
		Source{Name: "nvd", Kind: KindNVD, URL: nvd.DefaultURL, APIKeyEnv: "NVD_API_KEY", Enabled: &off},
		Source{Name: "kev", Kind: KindKEV, URL: kev.DefaultURL},
		Source{Name: "epss", Kind: KindEPSS, URL: epss.DefaultURL},
	)
	return out
}

// Load reads a configuration file; an empty path means the defaults alone.
func Load(path string) (*Config, error) {
	c := &Config{}
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("sources: %w", err)
		}
		if err := Parse(b, c); err != nil {
			return nil, fmt.Errorf("sources: %s: %w", path, err)
		}
	}
	if _, err := c.Resolve(); err != nil {
		return nil, fmt.Errorf("sources: %s: %w", path, err)
	}
	return c, nil
}

// Parse decodes a configuration, refusing unknown fields.
func Parse(b []byte, c *Config) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	return dec.Decode(c)
}

// SyncInterval is the configured interval, or DefaultInterval.
func (c *Config) SyncInterval() time.Duration {
	if c.Interval <= 0 {
		return DefaultInterval
	}
	return time.Duration(c.Interval)
}

// Resolve merges the configuration with the defaults: every source, enabled
// or not, in order (defaults first, then the sources the file adds).
func (c *Config) Resolve() ([]Source, error) {
	var out []Source
	if !c.NoDefaults {
		out = Defaults()
	}
	for _, s := range c.Sources {
		if s.Name == "" {
			return nil, errors.New("a source without a name")
		}
		if !nameOK.MatchString(s.Name) {
			return nil, fmt.Errorf("source name %q: use letters, digits, '.', '_' and '-'", s.Name)
		}
		i := slices.IndexFunc(out, func(d Source) bool { return d.Name == s.Name })
		if i < 0 {
			out = append(out, s)
			continue
		}
		d := &out[i]
		if s.Kind != "" {
			d.Kind = s.Kind
		}
		if s.URL != "" {
			d.URL = s.URL
		}
		if s.Enabled != nil {
			d.Enabled = s.Enabled
		}
		if s.Release != "" {
			d.Release = s.Release
		}
		if s.Releases != nil {
			d.Releases = s.Releases
		}
		if s.APIKeyEnv != "" {
			d.APIKeyEnv = s.APIKeyEnv
		}
	}
	for _, s := range out {
		if !slices.Contains(kinds, s.Kind) {
			return nil, fmt.Errorf("source %s: unknown kind %q (known: %v)", s.Name, s.Kind, kinds)
		}
		if s.URL == "" {
			return nil, fmt.Errorf("source %s: no url", s.Name)
		}
		if s.Kind == KindALAS && s.Release == "" {
			return nil, fmt.Errorf("source %s: an alas source needs a release (2, 2022, 2023)", s.Name)
		}
	}
	return out, nil
}

var nameOK = regexp.MustCompile(`^[A-Za-z0-9._-]{1,100}$`)

// Options are what building the feeds needs from the process.
type Options struct {
	// Client fetches every feed.
	Client *fetch.Client
	// Getenv reads the variables named by api_key_env; os.Getenv when nil.
	Getenv func(string) string
	// Limits bound OSV archives; osv.DefaultLimits when zero.
	Limits osv.Limits
}

// Feeds builds the feeds of the enabled sources, or of the sources named
// in only (enabled or not). A name in only that no source has is an error.
func (c *Config) Feeds(opts Options, only ...string) ([]vulndb.SourceFeed, error) {
	all, err := c.Resolve()
	if err != nil {
		return nil, err
	}
	for _, name := range only {
		if !slices.ContainsFunc(all, func(s Source) bool { return s.Name == name }) {
			return nil, fmt.Errorf("no source named %q", name)
		}
	}
	if opts.Getenv == nil {
		opts.Getenv = os.Getenv
	}
	if opts.Limits == (osv.Limits{}) {
		opts.Limits = osv.DefaultLimits
	}
	var out []vulndb.SourceFeed
	for _, s := range all {
		if len(only) > 0 && !slices.Contains(only, s.Name) || len(only) == 0 && !s.IsEnabled() {
			continue
		}
		f, err := s.feed(opts)
		if err != nil {
			return nil, fmt.Errorf("source %s: %w", s.Name, err)
		}
		out = append(out, vulndb.SourceFeed{Feed: f, Kind: s.Kind, URL: s.URL})
	}
	return out, nil
}

func (s Source) feed(o Options) (vulndb.Feed, error) {
	switch s.Kind {
	case KindOSV:
		return osv.NewFeed(s.Name, s.URL, o.Client, o.Limits), nil
	case KindAlpine:
		var opts []alpine.Option
		if len(s.Releases) > 0 {
			opts = append(opts, alpine.WithReleases(s.Releases...))
		}
		return alpine.New(s.Name, s.URL, o.Client, opts...), nil
	case KindALAS:
		return alas.New(s.Name, s.Release, s.URL, o.Client), nil
	case KindRedHatCSAF:
		return csaf.New(s.Name, s.URL, o.Client), nil
	case KindNVD:
		var opts []nvd.Option
		if s.APIKeyEnv != "" {
			if key := o.Getenv(s.APIKeyEnv); key != "" {
				opts = append(opts, nvd.WithAPIKey(key))
			}
		}
		return nvd.New(s.Name, s.URL, o.Client, opts...), nil
	case KindKEV:
		return kev.New(s.Name, s.URL, o.Client), nil
	case KindEPSS:
		return epss.New(s.Name, s.URL, o.Client), nil
	}
	return nil, fmt.Errorf("unknown kind %q", s.Kind)
}

// NewSyncer returns the Syncer of the configuration's enabled sources, for
// a server's scheduled sync:
//
//	cfg, err := sources.Load(path)
//	syncer, err := cfg.NewSyncer(db, index, sources.Options{Client: fetch.New(...)}, log)
//	go syncer.Run(ctx, cfg.SyncInterval(), onSync)
//
// index may be nil.
func (c *Config) NewSyncer(db *vulndb.DB, index *vulndb.Index, opts Options, log *slog.Logger) (*vulndb.Syncer, error) {
	feeds, err := c.Feeds(opts)
	if err != nil {
		return nil, err
	}
	return &vulndb.Syncer{DB: db, Sources: feeds, Index: index, Log: log}, nil
}

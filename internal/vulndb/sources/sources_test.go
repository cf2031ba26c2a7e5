package sources

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/drydockhq/drydock/internal/store/storetest"
	"github.com/drydockhq/drydock/internal/testutil"
	"github.com/drydockhq/drydock/internal/vulndb"
	"github.com/drydockhq/drydock/internal/vulndb/fetch"
)

func TestMain(m *testing.M) { os.Exit(storetest.Main(m)) }

func TestDefaults(t *testing.T) {
	c, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	all, err := c.Resolve()
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]Source{}
	for _, s := range all {
		if _, dup := byName[s.Name]; dup {
			t.Errorf("source %s twice", s.Name)
		}
		byName[s.Name] = s
	}
	for name, url := range map[string]string{
		"osv-Go":          "https://osv-vulnerabilities.storage.googleapis.com/Go/all.zip",
		"osv-Rocky-Linux": "https://osv-vulnerabilities.storage.googleapis.com/Rocky%20Linux/all.zip",
		"osv-Red-Hat":     "https://osv-vulnerabilities.storage.googleapis.com/Red%20Hat/all.zip",
		"kev":             "https://www.cisa.gov/sites/default/files/feeds/known_exploited_vulnerabilities.json",
	} {
		if byName[name].URL != url || !byName[name].IsEnabled() {
			t.Errorf("%s: %+v", name, byName[name])
		}
	}
	if byName["nvd"].IsEnabled() || byName["redhat-csaf"].IsEnabled() {
		t.Error("the heavy sources are enabled by default")
	}
	if c.SyncInterval() != DefaultInterval {
		t.Errorf("interval %v", c.SyncInterval())
	}
	feeds, err := c.Feeds(Options{Client: fetch.New(fetch.Options{})})
	if err != nil {
		t.Fatal(err)
	}
	enabled := 0
	for _, s := range all {
		if s.IsEnabled() {
			enabled++
		}
	}
	if len(feeds) != enabled {
		t.Errorf("%d feeds for %d enabled sources", len(feeds), enabled)
	}
	for _, f := range feeds {
		if byName[f.Feed.Name()].URL != f.URL || byName[f.Feed.Name()].Kind != f.Kind {
			t.Errorf("feed %s: %s %s", f.Feed.Name(), f.Kind, f.URL)
		}
	}
}

func TestConfigOverrides(t *testing.T) {
	var c Config
	if err := Parse([]byte(`{"interval":"90m","sources":[
		{"name":"osv-Go","url":"/srv/mirror/Go/all.zip"},
		{"name":"osv-npm","enabled":false},
		{"name":"nvd","enabled":true},
		{"name":"alpine-v3.20","kind":"alpine-secdb","url":"https://secdb.alpinelinux.org/","releases":["v3.20"]}]}`), &c); err != nil {
		t.Fatal(err)
	}
	all, err := c.Resolve()
	if err != nil {
		t.Fatal(err)
	}
	get := func(name string) Source {
		i := slices.IndexFunc(all, func(s Source) bool { return s.Name == name })
		if i < 0 {
			t.Fatalf("no source %s", name)
		}
		return all[i]
	}
	if s := get("osv-Go"); s.URL != "/srv/mirror/Go/all.zip" || s.Kind != KindOSV || !s.IsEnabled() {
		t.Errorf("osv-Go %+v", s)
	}
	if get("osv-npm").IsEnabled() || !get("nvd").IsEnabled() || get("nvd").APIKeyEnv != "NVD_API_KEY" {
		t.Error("enabled flags not applied")
	}
	if s := get("alpine-v3.20"); !slices.Equal(s.Releases, []string{"v3.20"}) {
		t.Errorf("added source %+v", s)
	}
	if c.SyncInterval() != 90*time.Minute {
		t.Errorf("interval %v", c.SyncInterval())
	}
	feeds, err := c.Feeds(Options{Client: fetch.New(fetch.Options{})}, "osv-npm", "nvd")
	if err != nil || len(feeds) != 2 {
		t.Errorf("named feeds: %d, %v", len(feeds), err)
	}
	if _, err := c.Feeds(Options{Client: fetch.New(fetch.Options{})}, "osv-Nope"); err == nil {
		t.Error("an unknown source name was accepted")
	}

	for name, bad := range map[string]string{
		"unknown kind":   `{"sources":[{"name":"x","kind":"rss","url":"http://x"}]}`,
		"no url":         `{"no_defaults":true,"sources":[{"name":"x","kind":"osv"}]}`,
		"bad name":       `{"sources":[{"name":"a b","kind":"osv","url":"x"}]}`,
		"alas release":   `{"sources":[{"name":"al","kind":"alas","url":"x"}]}`,
		"unknown field":  `{"sourcez":[]}`,
		"bad interval":   `{"interval":"soon"}`,
		"nameless entry": `{"sources":[{"kind":"osv","url":"x"}]}`,
	} {
		dir := t.TempDir()
		p := filepath.Join(dir, "sources.json")
		os.WriteFile(p, []byte(bad), 0o600)
		if _, err := Load(p); err == nil {
			t.Errorf("%s: accepted %s", name, bad)
		}
	}
}

// TestSyncFromConfig syncs a configuration of real local sources — OSV
// records, the Alpine secdb of v3.10 and CISA's KEV catalogue — through the
// other engineer's feed adapters, and finds KEV's word on Log4Shell through
// the GHSA advisory's alias.
func TestSyncFromConfig(t *testing.T) {
	cfgPath := filepath.Join(t.TempDir(), "sources.json")
	cfg := `{"no_defaults":true,"sources":[
		{"name":"osv-records","kind":"osv","url":"` + testutil.Fixture(t, "feeds/osv/records") + `"},
		{"name":"alpine-v3.10","kind":"alpine-secdb","url":"` + testutil.Fixture(t, "feeds/alpine-secdb/v3.10/main.yaml") + `"},
		{"name":"kev","kind":"kev","url":"` + testutil.Fixture(t, "enrichment/kev/known_exploited_vulnerabilities.json") + `"}]}`
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	feeds, err := c.Feeds(Options{Client: fetch.New(fetch.Options{TempDir: t.TempDir()})})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	db, err := vulndb.Open(ctx, storetest.SQLite(t))
	if err != nil {
		t.Fatal(err)
	}
	ix, err := vulndb.OpenIndex(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	res, err := (&vulndb.Syncer{DB: db, Sources: feeds, Index: ix}).Sync(ctx, vulndb.SyncOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range res.Sources {
		if s.Outcome != vulndb.OutcomeChanged {
			t.Errorf("%s: %s %v", s.Name, s.Outcome, s.Err)
		}
	}
	// The KEV catalogue of 2025-08-25 has 1,404 entries.
	if kev := res.Sources[slices.IndexFunc(res.Sources, func(s vulndb.SourceResult) bool { return s.Name == "kev" })]; kev.Enrichment != 1404 {
		t.Errorf("kev: %d records", kev.Enrichment)
	}
	s := ix.Snapshot()
	ms := s.LookupPackage("Maven", "org.apache.logging.log4j:log4j-core")
	// The record has three entries for log4j-core (up to 2.3.1, 2.4 to
	// 2.12.2, 2.13.0 to 2.15.0).
	if len(ms) != 3 || ms[0].Advisory.ID != "GHSA-jfh8-c2jp-5v3q" || ms[2].Advisory != ms[0].Advisory {
		t.Fatalf("log4j-core: %v", ms)
	}
	es := s.Enrichment(ms[0].Advisory)
	if len(es) != 1 || es[0].KEV == nil || !strings.Contains(es[0].KEV.VulnerabilityName, "Log4j") {
		t.Errorf("Log4Shell enrichment %+v", es)
	}
	// The secdb of v3.10 lists openssl fixes (fixture README).
	if ms := s.LookupPackage("Alpine:v3.10", "openssl"); len(ms) == 0 {
		t.Error("no Alpine v3.10 openssl advisories")
	}
}

package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/drydockhq/drydock/internal/index/source"
	"github.com/drydockhq/drydock/internal/match"
	"github.com/drydockhq/drydock/internal/report"
	"github.com/drydockhq/drydock/internal/store"
	"github.com/drydockhq/drydock/internal/vulndb"
)

const scanUsage = `[flags] TARGET

Scans an image for known vulnerabilities against the local vulnerability
database (fill it first with 'drydock db update' or 'drydock db import').

TARGET is one of:
  oci:DIR[:TAG|@DIGEST]            an OCI image layout directory
  oci-archive:FILE[:TAG|@DIGEST]   a tar of an OCI layout (plain, gzip or zstd)
  docker-archive:FILE[:REPO:TAG]   a 'docker save' tarball (plain or gzip)
  dir:PATH                         a root filesystem directory
  registry:REF, docker://REF, REF  an image in a registry (docker/podman credentials)

Exit status: 0, or the --exit-code value when findings remain after the
filters; 1 when the scan could not be made (no database, unreadable image);
2 for a usage error.`

// defaultDBMaxAge is how old the database's last update may be before a
// scan warns that it is stale.
const defaultDBMaxAge = 72 * time.Hour

func runScan(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "scan", scanUsage)
	format := fs.String("o", "table", "output format: table, json")
	severity := fs.String("severity", "", "report only these severity levels (comma-separated: CRITICAL,HIGH,MEDIUM,LOW,INFORMATIONAL,UNTRIAGED)")
	ignoreUnfixed := fs.Bool("ignore-unfixed", false, "leave out findings without a fix (fixAvailable NO)")
	pkgTypes := fs.String("pkg-types", "os,library", "package types to report: os, library, or both")
	exitCode := fs.Int("exit-code", 0, "exit with this status when findings remain after the filters")
	dataDir := fs.String("data-dir", "drydock-data", "data directory holding the vulnerability database")
	storeURL := fs.String("store", "", "metadata store: postgres://... for PostgreSQL (default: SQLite in the data directory)")
	maxAge := fs.Duration("db-max-age", defaultDBMaxAge, "warn when the database's last successful update is older than this")
	platform := fs.String("platform", "", "scan only this platform of a multi-platform image (os/arch[/variant])")
	out := fs.String("out", "", "write to this file instead of standard output")
	cacheDSN := fs.String("cache", "", "layer cache: a SQLite file or postgres:// URL of a Drydock store (default: none)")
	insecure := fs.Bool("insecure", false, "allow plain HTTP to the registry")
	if err := parseFlags(e, fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return fmt.Errorf("%w: want exactly one TARGET", errUsage)
	}
	if *format != "table" && *format != "json" {
		return fmt.Errorf("%w: unknown output format %q", errUsage, *format)
	}
	filters, err := scanFilters(*severity, *ignoreUnfixed, *pkgTypes)
	if err != nil {
		return err
	}
	if *exitCode < 0 || *exitCode > 125 {
		return fmt.Errorf("%w: --exit-code %d is not between 0 and 125", errUsage, *exitCode)
	}
	target, err := source.Parse(fs.Arg(0))
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}

	// The database first: a scan without one must fail, never report
	// "no vulnerabilities".
	if *storeURL == "" {
		path := filepath.Join(*dataDir, store.DefaultFile)
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("no vulnerability database at %s: run 'drydock db update' (or 'drydock db import FILE') first, or point --data-dir or --store at one", path)
		}
	}
	st, err := store.Open(ctx, *storeURL, *dataDir)
	if err != nil {
		return err
	}
	defer st.Close()
	vdb, err := vulndb.Open(ctx, st)
	if err != nil {
		return err
	}
	status, err := vdb.Status(ctx)
	if err != nil {
		return err
	}
	if status.Generation == 0 || status.Advisories == 0 {
		return errors.New("the vulnerability database is empty: run 'drydock db update' (or 'drydock db import FILE') first")
	}
	now := time.Now().UTC()
	dbInfo := databaseInfo(status, now, *maxAge)
	for _, w := range dbInfo.Warnings {
		e.log.Warn(w)
	}

	invs, err := indexTarget(ctx, e, target, *cacheDSN, source.Options{Platform: *platform, Insecure: *insecure})
	if err != nil {
		return err
	}

	ix, err := vulndb.OpenIndex(ctx, vdb)
	if err != nil {
		return err
	}
	snap := ix.Snapshot()
	m := match.New(snap)
	doc := &report.Scan{
		SchemaVersion: report.ScanSchemaVersion,
		Tool:          report.ScanTool{Name: "drydock", Version: buildVersion()},
		CreatedAt:     now,
		Target:        fs.Arg(0),
		Database:      dbInfo,
		Filters:       filters,
	}
	doc.Database.Generation = snap.Generation()
	full := fullAdvisories{db: vdb, cache: map[[2]string]*vulndb.Advisory{}}
	for _, inv := range invs {
		res, err := m.Match(ctx, inv.Packages)
		if err != nil {
			return err
		}
		details := make([]match.Details, len(res.Findings))
		for i := range res.Findings {
			f := &res.Findings[i]
			adv, err := full.get(ctx, f.Advisory)
			if err != nil {
				return err
			}
			details[i] = match.Describe(f, adv, snap.Enrichment(f.Advisory))
		}
		doc.Images = append(doc.Images, report.NewScanImage(inv, details, filters, res.Warnings))
	}

	if err := writeScan(*out, *format, e, doc); err != nil {
		return err
	}
	if *exitCode != 0 && doc.Count() > 0 {
		return exitError{code: *exitCode}
	}
	return nil
}

// scanFilters reads the filter flags.
func scanFilters(severity string, ignoreUnfixed bool, pkgTypes string) (report.ScanFilters, error) {
	f := report.ScanFilters{IgnoreUnfixed: ignoreUnfixed}
	for _, s := range splitList(severity) {
		lvl := strings.ToUpper(s)
		if match.SeverityRank(lvl) < 0 {
			return f, fmt.Errorf("%w: unknown severity %q (CRITICAL, HIGH, MEDIUM, LOW, INFORMATIONAL, UNTRIAGED)", errUsage, s)
		}
		if !slices.Contains(f.Severities, lvl) {
			f.Severities = append(f.Severities, lvl)
		}
	}
	types := splitList(pkgTypes)
	if len(types) == 0 {
		return f, fmt.Errorf("%w: --pkg-types needs os, library or both", errUsage)
	}
	for _, t := range types {
		t = strings.ToLower(t)
		if t != report.PkgTypeOS && t != report.PkgTypeLibrary {
			return f, fmt.Errorf("%w: unknown package type %q (os, library)", errUsage, t)
		}
		if !slices.Contains(f.PkgTypes, t) {
			f.PkgTypes = append(f.PkgTypes, t)
		}
	}
	if len(f.PkgTypes) == 2 {
		f.PkgTypes = nil // both: no filter
	}
	return f, nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// databaseInfo describes the database for the report, with a warning when
// its last update is older than maxAge or a source is failing.
func databaseInfo(st *vulndb.DBStatus, now time.Time, maxAge time.Duration) report.ScanDatabase {
	info := report.ScanDatabase{Generation: st.Generation, GeneratedAt: st.GeneratedAt, Advisories: st.Advisories - st.Withdrawn}
	for _, s := range st.Sources {
		if s.LastSuccess.After(info.UpdatedAt) {
			info.UpdatedAt = s.LastSuccess.UTC()
		}
		if s.Failing() {
			info.Warnings = append(info.Warnings, fmt.Sprintf("source %s is failing since %s (%s); its last good data is used", s.Name, s.LastErrorAt.Format(time.RFC3339), s.LastError))
		}
	}
	if info.UpdatedAt.IsZero() {
		info.UpdatedAt = st.GeneratedAt
	}
	if age := now.Sub(info.UpdatedAt); age > maxAge {
		info.Stale = true
		info.Warnings = append([]string{fmt.Sprintf("the vulnerability database is stale: last updated %s (%d days ago); findings may miss recent advisories: run 'drydock db update'",
			info.UpdatedAt.Format(time.RFC3339), int(age.Hours()/24))}, info.Warnings...)
	}
	return info
}

// fullAdvisories reads the whole stored advisories (the lookup index keeps
// them without details and references), once each.
type fullAdvisories struct {
	db    *vulndb.DB
	cache map[[2]string]*vulndb.Advisory
}

func (fa fullAdvisories) get(ctx context.Context, slim *vulndb.Advisory) (*vulndb.Advisory, error) {
	k := [2]string{slim.Source, slim.ID}
	if a, ok := fa.cache[k]; ok {
		return a, nil
	}
	a, err := fa.db.Advisory(ctx, slim.Source, slim.ID)
	if errors.Is(err, vulndb.ErrNotFound) {
		a, err = nil, nil // removed since the index was read: the slim copy says enough
	}
	if err != nil {
		return nil, err
	}
	fa.cache[k] = a
	return a, nil
}

func writeScan(out, format string, e *env, doc *report.Scan) error {
	w := e.stdout
	var f *os.File
	if out != "" {
		var err error
		if f, err = os.Create(out); err != nil {
			return err
		}
		defer f.Close()
		w = f
	}
	bw := bufio.NewWriter(w)
	var err error
	if format == "json" {
		err = report.WriteScanJSON(bw, doc)
	} else {
		err = report.WriteScanTable(bw, doc)
	}
	if err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	if f != nil {
		return f.Close()
	}
	return nil
}

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/drydockhq/drydock/internal/store"
	"github.com/drydockhq/drydock/internal/vulndb"
	"github.com/drydockhq/drydock/internal/vulndb/fetch"
	"github.com/drydockhq/drydock/internal/vulndb/osv"
	"github.com/drydockhq/drydock/internal/vulndb/sources"
)

const dbUsage = `update [--source NAME]... | status | changes [GENERATION] | import FILE|DIR | export FILE

  update   fetch the configured sources and apply them as a new generation
  status   sources, last success, record counts, age, generation
  changes  the change set of a generation (default: the latest)
  import   apply an export file, an OSV all.zip, a directory of OSV records
           or one OSV JSON record
  export   write the current generation to one file (plus FILE.sha256)`

// runDB is drydock db: the vulnerability database, worked on directly in
// the store (no server needed; a running server picks the new generation
// up at its next refresh).
func runDB(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "db", dbUsage)
	dataDir := fs.String("data-dir", "drydock-data", "data directory")
	storeURL := fs.String("store", "", "metadata store: postgres://... for PostgreSQL (default: SQLite in the data directory)")
	sourcesFile := fs.String("sources", "", "sources configuration file (JSON; default: the built-in sources)")
	var only stringList
	fs.Var(&only, "source", "update: only this source (repeatable); import: the source name to import OSV records as")
	allowShrink := fs.Bool("allow-shrink", false, "update, import: apply a feed even when it holds less than half of what it held")
	force := fs.Bool("force", false, "update: fetch whole feeds even when upstream says they did not change")
	asJSON := fs.Bool("json", false, "status, changes: print JSON")
	timeout := fs.Duration("fetch-timeout", fetch.DefaultTimeout, "update: time limit for downloading one feed")
	rest, err := parseInterspersed(e, fs, args)
	if err != nil {
		return err
	}
	if len(rest) == 0 {
		fs.Usage()
		return fmt.Errorf("%w: missing subcommand", errUsage)
	}
	sub, rest := rest[0], rest[1:]
	wantArgs := map[string][2]int{"update": {0, 0}, "status": {0, 0}, "changes": {0, 1}, "import": {1, 1}, "export": {1, 1}}
	n, ok := wantArgs[sub]
	if !ok {
		return fmt.Errorf("%w: unknown subcommand %q", errUsage, sub)
	}
	if len(rest) < n[0] || len(rest) > n[1] {
		return fmt.Errorf("%w: db %s takes %d to %d arguments", errUsage, sub, n[0], n[1])
	}
	cfg, err := sources.Load(*sourcesFile)
	if err != nil {
		return err
	}

	st, err := store.Open(ctx, *storeURL, *dataDir)
	if err != nil {
		return err
	}
	defer st.Close()
	db, err := vulndb.Open(ctx, st)
	if err != nil {
		return err
	}
	switch sub {
	case "update":
		client := fetch.New(fetch.Options{Timeout: *timeout, Logger: e.log})
		feeds, err := cfg.Feeds(sources.Options{Client: client, Getenv: e.getenv}, only...)
		if err != nil {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
		syncer := &vulndb.Syncer{DB: db, Sources: feeds, Log: e.log}
		res, err := syncer.Sync(ctx, vulndb.SyncOptions{AllowShrink: *allowShrink, Force: *force})
		if err != nil {
			return err
		}
		return reportApply(e.stdout, res)
	case "status":
		return printStatus(ctx, e.stdout, db, *asJSON)
	case "changes":
		return printChanges(ctx, e.stdout, db, rest, *asJSON)
	case "import":
		if len(only) > 1 {
			return fmt.Errorf("%w: import takes one --source", errUsage)
		}
		name := ""
		if len(only) == 1 {
			name = only[0]
		}
		res, err := importPath(ctx, db, rest[0], name, *allowShrink)
		if err != nil {
			return err
		}
		return reportApply(e.stdout, res)
	case "export":
		sum, fileSum, err := db.ExportFile(ctx, rest[0])
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "exported generation %d: %d advisories, %d enrichment records to %s\nsha256 %s (also in %s.sha256)\n",
			sum.Generation, sum.Advisories, sum.Enrichment, rest[0], fileSum, rest[0])
		return nil
	}
	return nil
}

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

var _ flag.Value = (*stringList)(nil)

// reportApply prints each source's outcome and the generation; an error
// (exit status 1) when a source failed or was refused.
func reportApply(w io.Writer, res *vulndb.ApplyResult) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SOURCE\tOUTCOME\tADVISORIES\tADDED\tMODIFIED\tWITHDRAWN\tREMOVED\tENRICHMENT\tREJECTED\tERROR")
	for _, s := range res.Sources {
		msg := ""
		if s.Err != nil {
			msg = s.Err.Error()
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\n", s.Name, s.Outcome, s.Advisories, s.Counts.Added, s.Counts.Modified,
			s.Counts.Withdrawn, s.Counts.Removed, s.Enrichment, len(s.Rejected), msg)
	}
	tw.Flush()
	for _, s := range res.Sources {
		for i, re := range s.Rejected {
			if i == 10 {
				fmt.Fprintf(w, "  %s: %d more rejected records\n", s.Name, len(s.Rejected)-i)
				break
			}
			fmt.Fprintf(w, "  rejected: %v\n", re)
		}
	}
	if res.Generation > 0 {
		c := res.ChangeSet.Counts()
		fmt.Fprintf(w, "generation %d: %d added, %d modified, %d withdrawn, %d removed, %d enrichment records changed, %d package keys touched\n",
			res.Generation, c.Added, c.Modified, c.Withdrawn, c.Removed, c.EnrichmentChanged, len(res.ChangeSet.Keys))
	} else {
		fmt.Fprintln(w, "no changes: no new generation")
	}
	if failed := res.Failed(); len(failed) > 0 {
		names := make([]string, len(failed))
		for i, f := range failed {
			names[i] = f.Name
		}
		return fmt.Errorf("%d source(s) not applied, their previous data kept: %s", len(failed), strings.Join(names, ", "))
	}
	return nil
}

func printStatus(ctx context.Context, w io.Writer, db *vulndb.DB, asJSON bool) error {
	st, err := db.Status(ctx)
	if err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
	now := time.Now()
	if st.Generation == 0 {
		fmt.Fprintln(w, "generation 0: the database is empty; run drydock db update or drydock db import")
	} else {
		fmt.Fprintf(w, "generation %d, made %s (%s ago)\n", st.Generation, st.GeneratedAt.Format(time.RFC3339), age(now, st.GeneratedAt))
	}
	fmt.Fprintf(w, "%d advisories (%d withdrawn) on %d packages; enrichment for %d CVEs\n\n", st.Advisories, st.Withdrawn, st.Keys, st.Enrichment)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SOURCE\tKIND\tADVISORIES\tENRICHMENT\tREJECTED\tLAST SUCCESS\tAGE\tSTATE")
	for _, s := range st.Sources {
		last, ago := "never", "-"
		if !s.LastSuccess.IsZero() {
			last, ago = s.LastSuccess.Format(time.RFC3339), age(now, s.LastSuccess)
		}
		state := "ok"
		if s.Failing() {
			state = "failing since " + s.LastErrorAt.Format(time.RFC3339) + ": " + s.LastError
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%s\t%s\t%s\n", s.Name, s.Kind, s.Advisories, s.Enrichment, s.Rejected, last, ago, state)
	}
	return tw.Flush()
}

func age(now, t time.Time) string {
	d := now.Sub(t)
	switch {
	case d < time.Minute:
		return d.Round(time.Second).String()
	case d < 48*time.Hour:
		return d.Round(time.Minute).String()
	default:
		return fmt.Sprintf("%dd", int(d.Hours()/24))
	}
}

func printChanges(ctx context.Context, w io.Writer, db *vulndb.DB, args []string, asJSON bool) error {
	gen, err := db.Generation(ctx)
	if err != nil {
		return err
	}
	if len(args) == 1 {
		if _, err := fmt.Sscan(args[0], &gen); err != nil {
			return fmt.Errorf("%w: generation %q is not a number", errUsage, args[0])
		}
	}
	if gen == 0 {
		return errors.New("the database has no generation yet")
	}
	cs, err := db.ChangeSet(ctx, gen)
	if err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(cs)
	}
	c := cs.Counts()
	fmt.Fprintf(w, "generation %d, made %s: %d added, %d modified, %d withdrawn, %d removed, %d enrichment records changed, %d package keys\n",
		cs.Generation, cs.CreatedAt.Format(time.RFC3339), c.Added, c.Modified, c.Withdrawn, c.Removed, c.EnrichmentChanged, len(cs.Keys))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KIND\tSOURCE\tADVISORY\tWHAT\tPACKAGES")
	for _, ch := range cs.Changes {
		keys := make([]string, len(ch.Keys))
		for i, k := range ch.Keys {
			keys[i] = k.String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", ch.Kind, ch.Source, ch.ID, strings.Join(ch.Aspects, ","), strings.Join(keys, " "))
	}
	return tw.Flush()
}

// importPath applies an export file, an OSV zip, an OSV directory or an
// OSV JSON file. OSV records go into the source named name, or, when name
// is empty, the default source of their ecosystem (osv-Go for Go records:
// the same source drydock db update fills), or osv-import when they span
// several ecosystems.
func importPath(ctx context.Context, db *vulndb.DB, path, name string, allowShrink bool) (*vulndb.ApplyResult, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		isExport, err := sniffGzip(path)
		if err != nil {
			return nil, err
		}
		if isExport {
			if name != "" {
				return nil, fmt.Errorf("%w: an export file keeps its own source names; drop --source", errUsage)
			}
			f, err := os.Open(path)
			if err != nil {
				return nil, err
			}
			defer f.Close()
			_, updates, err := vulndb.ReadExport(bufio.NewReaderSize(f, 1<<20))
			if err != nil {
				return nil, fmt.Errorf("%s: %w", path, err)
			}
			for i := range updates {
				updates[i].AllowShrink = allowShrink
			}
			return db.Apply(ctx, updates)
		}
	}
	data, err := osv.ReadPath(ctx, path, "osv-import", osv.DefaultLimits)
	if err != nil {
		return nil, err
	}
	if len(data.Advisories) == 0 {
		return nil, fmt.Errorf("%s holds no OSV record that could be read (%d rejected)", path, len(data.Rejected))
	}
	if name == "" {
		name = "osv-import"
		if eco := commonEcosystem(data.Advisories); eco != "" {
			name = sources.OSVName(eco)
		}
	}
	for i := range data.Advisories {
		data.Advisories[i].Source = name
	}
	for i := range data.Rejected {
		data.Rejected[i].Feed = name
	}
	abs, _ := filepath.Abs(path)
	return db.Apply(ctx, []vulndb.SourceUpdate{{Name: name, Kind: sources.KindOSV, URL: abs, Data: data, AllowShrink: allowShrink}})
}

// sniffGzip reports whether the file is gzip-compressed (an export; OSV
// archives are zip files).
func sniffGzip(path string) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	var magic [2]byte
	if _, err := io.ReadFull(f, magic[:]); err != nil {
		return false, nil
	}
	return magic[0] == 0x1f && magic[1] == 0x8b, nil
}

// commonEcosystem returns the ecosystem (without release) every affected
// entry of the advisories shares, or "".
func commonEcosystem(advs []vulndb.Advisory) string {
	eco := ""
	for _, a := range advs {
		for _, af := range a.Affected {
			base, _, _ := strings.Cut(af.Ecosystem, ":")
			if eco == "" {
				eco = base
			} else if base != eco {
				return ""
			}
		}
	}
	return eco
}

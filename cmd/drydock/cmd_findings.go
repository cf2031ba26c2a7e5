package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/drydockhq/drydock/internal/scan"
	"github.com/drydockhq/drydock/internal/store"
)

const findingsUsage = `list [--repository R]... [--new-since T] [--fixable-since T] [--closed-since T] [--status S]... [--severity S]... [--limit N] [--json]
       drydock findings summary [--repository R]... [--since T] [--until T] [--json]
  T is a time (2026-11-20, 2026-11-20T08:00:00Z) or an age (7d, 36h).
  (both take --data-dir DIR and --store URL, and read the store directly)`

// runFindings answers the findings ledger's questions: what is new, what
// became fixable, what closed since a time (list), and per repository the
// open findings and the mean time to remediate (summary).
func runFindings(ctx context.Context, e *env, args []string) error {
	usage := func() { fmt.Fprintf(e.stderr, "usage: drydock findings %s\n", findingsUsage) }
	if len(args) == 0 {
		usage()
		return fmt.Errorf("%w: missing subcommand", errUsage)
	}
	sub, args := args[0], args[1:]
	if sub != "list" && sub != "summary" {
		usage()
		return fmt.Errorf("%w: unknown subcommand %q", errUsage, sub)
	}
	fs := newFlagSet(e, "findings "+sub, "")
	fs.Usage = func() { usage(); fs.PrintDefaults() }
	dataDir := fs.String("data-dir", "drydock-data", "data directory (holds the SQLite store)")
	storeURL := fs.String("store", "", "metadata store URL (default: SQLite in the data directory)")
	var repos, statuses, severities listFlag
	fs.Var(&repos, "repository", "only this repository (repeatable)")
	asJSON := fs.Bool("json", false, "print JSON")
	var newSince, fixableSince, closedSince, since, until string
	var limit int
	if sub == "list" {
		fs.StringVar(&newSince, "new-since", "", "findings first observed at or after T")
		fs.StringVar(&fixableSince, "fixable-since", "", "findings whose fix became available at or after T")
		fs.StringVar(&closedSince, "closed-since", "", "findings closed (or suppressed) at or after T")
		fs.Var(&statuses, "status", "ACTIVE, SUPPRESSED or CLOSED (repeatable; default all)")
		fs.Var(&severities, "severity", "CRITICAL, HIGH, MEDIUM, LOW, INFORMATIONAL, UNTRIAGED or UNDEFINED (repeatable)")
		fs.IntVar(&limit, "limit", 1000, "at most this many findings, most recently updated first")
	} else {
		fs.StringVar(&since, "since", "30d", "start of the period")
		fs.StringVar(&until, "until", "", "end of the period (default: now)")
	}
	if err := parseFlags(e, fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	now := time.Now().UTC()
	var q scan.FindingQuery
	var from, to time.Time
	for name, v := range map[string]struct {
		raw string
		dst *time.Time
	}{
		"new-since": {newSince, &q.FirstObservedSince}, "fixable-since": {fixableSince, &q.FixAvailableSince},
		"closed-since": {closedSince, &q.ClosedSince}, "since": {since, &from}, "until": {until, &to},
	} {
		if v.raw == "" {
			continue
		}
		t, err := parseWhen(v.raw, now)
		if err != nil {
			return fmt.Errorf("%w: --%s: %v", errUsage, name, err)
		}
		*v.dst = t
	}
	for _, s := range statuses {
		if s != scan.FindingActive && s != scan.FindingSuppressed && s != scan.FindingClosed {
			return fmt.Errorf("%w: --status %q: want ACTIVE, SUPPRESSED or CLOSED", errUsage, s)
		}
	}
	q.Repositories, q.Statuses, q.Severities = repos, statuses, severities
	db, err := store.Open(ctx, *storeURL, *dataDir)
	if err != nil {
		return err
	}
	defer db.Close()
	svc, err := scan.New(ctx, scan.Options{Store: db, Log: e.log})
	if err != nil {
		return err
	}
	if sub == "summary" {
		if to.IsZero() {
			to = now
		}
		stats, err := svc.Remediation(ctx, repos, from, to)
		if err != nil {
			return err
		}
		return printSummary(e, stats, from, to, *asJSON)
	}
	if limit <= 0 {
		return fmt.Errorf("%w: --limit must be positive", errUsage)
	}
	var out []scan.Finding
	page := scan.Page{Limit: min(limit, 1000)}
	for len(out) < limit {
		list, next, err := svc.ListFindings(ctx, q, page)
		if err != nil {
			return err
		}
		out = append(out, list...)
		if next == "" {
			break
		}
		page.After = next
	}
	if len(out) > limit {
		out = out[:limit]
	}
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "REPOSITORY\tIMAGE\tVULNERABILITY\tPACKAGE\tSEVERITY\tSTATUS\tFIRST OBSERVED\tFIXABLE SINCE\tCLOSED\tREASON")
	for _, f := range out {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s %s\t%s\t%s\t%s\t%s\t%s\t%s\n", f.Repository, shortDigest(f.Digest), f.VulnerabilityID,
			f.Package.Name, f.Package.Version, f.Severity, f.Status, stamp(f.FirstObservedAt), stamp(f.FixAvailableSince), stamp(f.ClosedAt), f.ClosedReason)
	}
	return tw.Flush()
}

func printSummary(e *env, stats []scan.RemediationStats, from, to time.Time, asJSON bool) error {
	if asJSON {
		type row struct {
			scan.RemediationStats
			MeanTimeToRemediateSeconds float64 `json:"meanTimeToRemediateSeconds"`
		}
		out := struct {
			Since        time.Time `json:"since"`
			Until        time.Time `json:"until"`
			Repositories []row     `json:"repositories"`
		}{Since: from, Until: to, Repositories: []row{}}
		for _, s := range stats {
			out.Repositories = append(out.Repositories, row{s, s.MeanTimeToRemediate.Seconds()})
		}
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	fmt.Fprintf(e.stdout, "period %s to %s\n", from.Format(time.RFC3339), to.Format(time.RFC3339))
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "REPOSITORY\tOPEN\tSUPPRESSED\tNEW\tBECAME FIXABLE\tCLOSED\tREMEDIATED\tMEAN TIME TO REMEDIATE")
	for _, s := range stats {
		closed := 0
		for _, n := range s.Closed {
			closed += n
		}
		mttr := "-"
		if s.Remediated > 0 {
			mttr = s.MeanTimeToRemediate.Round(time.Second).String()
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%s\n", s.Repository, s.Open, s.Suppressed, s.New, s.Fixable, closed, s.Remediated, mttr)
	}
	return tw.Flush()
}

// parseWhen reads a time: RFC 3339, a date (midnight UTC), or an age
// before now ("7d", "36h", "90m").
func parseWhen(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		if n, err := strconv.Atoi(days); err == nil && n >= 0 {
			return now.AddDate(0, 0, -n), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("%q is not a time (2026-11-20, 2026-11-20T08:00:00Z) or an age (7d, 36h)", s)
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func shortDigest(d string) string {
	if _, hex, ok := strings.Cut(d, ":"); ok && len(hex) > 12 {
		return hex[:12]
	}
	return d
}

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

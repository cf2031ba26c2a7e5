package main

import (
	"context"
	"encoding/json"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/drydockhq/drydock/internal/registry"
	"github.com/drydockhq/drydock/internal/scan"
	"github.com/drydockhq/drydock/internal/store"
)

// usageDay is one repository's scans on one UTC day, as drydock usage
// prints them.
type usageDay struct {
	Day             string `json:"day"`
	Repository      string `json:"repository"`
	InitialBasic    int64  `json:"initialScansBasic"`
	InitialEnhanced int64  `json:"initialScansEnhanced"`
	Rescans         int64  `json:"rescans"`
}

type usageReport struct {
	Since      string     `json:"since"`
	Repository string     `json:"repository,omitempty"`
	Days       []usageDay `json:"days"`
	Totals     usageDay   `json:"totals"`
}

// runUsage prints the metered scans (drydock usage [--since DATE]
// [--repository R] [--json]) from the store: per UTC day and repository,
// initial scans (basic, enhanced) and re-scans, with their totals.
func runUsage(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "usage", "[--since YYYY-MM-DD] [--repository NAME] [--json]")
	dataDir := fs.String("data-dir", "drydock-data", "data directory")
	storeURL := fs.String("store", "", "metadata store: postgres://... for PostgreSQL (default: SQLite in the data directory)")
	since := fs.String("since", "", "first UTC day to count, YYYY-MM-DD (default: 29 days before today, so 30 days in all)")
	repo := fs.String("repository", "", "count this repository only")
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	if err := parseFlags(e, fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	from := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -29)
	if *since != "" {
		t, err := time.Parse(time.DateOnly, *since)
		if err != nil {
			return fmt.Errorf("%w: --since %q: want a date as YYYY-MM-DD", errUsage, *since)
		}
		from = t
	}
	if *repo != "" {
		if err := registry.ValidateName(*repo); err != nil {
			return fmt.Errorf("%w: --repository %q: %v", errUsage, *repo, err)
		}
	}
	db, err := store.Open(ctx, *storeURL, *dataDir)
	if err != nil {
		return err
	}
	defer db.Close()
	svc, err := scan.New(ctx, scan.Options{Store: db, Log: e.log})
	if err != nil {
		return err
	}
	rows, err := svc.Usage(ctx, from, time.Time{}, *repo)
	if err != nil {
		return err
	}
	rep := usageReport{Since: from.Format(time.DateOnly), Repository: *repo, Days: []usageDay{}, Totals: usageDay{Day: "TOTAL"}}
	for _, r := range rows {
		d := r.Day.Format(time.DateOnly)
		if n := len(rep.Days); n == 0 || rep.Days[n-1].Day != d || rep.Days[n-1].Repository != r.Repository {
			rep.Days = append(rep.Days, usageDay{Day: d, Repository: r.Repository})
		}
		cur := &rep.Days[len(rep.Days)-1]
		for _, u := range []*usageDay{cur, &rep.Totals} {
			switch r.Kind {
			case scan.UsageInitialBasic:
				u.InitialBasic += r.Count
			case scan.UsageInitialEnhanced:
				u.InitialEnhanced += r.Count
			case scan.UsageRescan:
				u.Rescans += r.Count
			}
		}
	}
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DAY (UTC)\tREPOSITORY\tINITIAL BASIC\tINITIAL ENHANCED\tRESCANS")
	for _, d := range append(rep.Days, rep.Totals) {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\n", d.Day, d.Repository, d.InitialBasic, d.InitialEnhanced, d.Rescans)
	}
	return tw.Flush()
}

// reindexRate is drydock serve's --reindex-rate as scan.RunOptions wants
// it: 0 or less turns the re-indexer off.
func reindexRate(perMinute int) int {
	if perMinute <= 0 {
		return -1
	}
	return perMinute
}

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/drydockhq/drydock/internal/awsapi"
	"github.com/drydockhq/drydock/internal/events"
	"github.com/drydockhq/drydock/internal/store"
)

const eventsUsage = `targets add --name NAME --url URL [--secret SECRET | --secret-file FILE] [--pattern JSON | --pattern-file FILE] [--disabled]
       drydock events targets list [--json]
       drydock events targets remove|enable|disable NAME
       drydock events tail [--follow] [--from-start]
       drydock events dead-letters [--json] [--limit N]
  (all take --data-dir DIR and --store URL, and work on the store directly)`

// runEvents manages webhook targets and shows events and failed deliveries.
func runEvents(ctx context.Context, e *env, args []string) error {
	usage := func() { fmt.Fprintf(e.stderr, "usage: drydock events %s\n", eventsUsage) }
	if len(args) == 0 {
		usage()
		return fmt.Errorf("%w: missing subcommand", errUsage)
	}
	sub, args := args[0], args[1:]
	if sub == "targets" {
		if len(args) == 0 {
			usage()
			return fmt.Errorf("%w: missing targets subcommand", errUsage)
		}
		sub, args = "targets "+args[0], args[1:]
	}
	fs := newFlagSet(e, "events "+sub, "")
	fs.Usage = func() { usage(); fs.PrintDefaults() }
	dataDir := fs.String("data-dir", "drydock-data", "data directory (holds the SQLite store)")
	storeURL := fs.String("store", "", "metadata store URL (default: SQLite in the data directory)")
	var name, url, secret, secretFile, pattern, patternFile string
	var disabled, asJSON, follow, fromStart bool
	var limit int
	var poll time.Duration
	switch sub {
	case "targets add":
		fs.StringVar(&name, "name", "", "target name")
		fs.StringVar(&url, "url", "", "webhook URL (http or https) the events are POSTed to")
		fs.StringVar(&secret, "secret", "", "HMAC-SHA256 signing secret (default: a random one, printed once)")
		fs.StringVar(&secretFile, "secret-file", "", "read the signing secret from this file")
		fs.StringVar(&pattern, "pattern", "", "EventBridge event pattern (JSON) the events must match (default: all events)")
		fs.StringVar(&patternFile, "pattern-file", "", "read the event pattern from this file")
		fs.BoolVar(&disabled, "disabled", false, "add the target disabled")
	case "targets list", "dead-letters":
		fs.BoolVar(&asJSON, "json", false, "print JSON")
		if sub == "dead-letters" {
			fs.IntVar(&limit, "limit", 100, "how many to list, newest first")
		}
	case "targets remove", "targets enable", "targets disable":
	case "tail":
		fs.BoolVar(&follow, "follow", false, "keep printing events as they are written")
		fs.BoolVar(&fromStart, "from-start", false, "start with the oldest events still in the outboxes")
		fs.DurationVar(&poll, "poll", 500*time.Millisecond, "how often --follow checks for new events")
	default:
		usage()
		return fmt.Errorf("%w: unknown subcommand %q", errUsage, sub)
	}
	if err := parseFlags(e, fs, args); err != nil {
		return err
	}
	switch sub {
	case "targets remove", "targets enable", "targets disable":
		if fs.NArg() != 1 {
			return fmt.Errorf("%w: events %s takes one target name", errUsage, sub)
		}
	default:
		if fs.NArg() != 0 {
			return fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
		}
	}
	if sub == "targets add" {
		if name == "" || url == "" {
			return fmt.Errorf("%w: --name and --url are required", errUsage)
		}
		var err error
		if secret, err = fromFile(secret, secretFile, "secret"); err != nil {
			return err
		}
		if pattern, err = fromFile(pattern, patternFile, "pattern"); err != nil {
			return err
		}
	}

	db, err := store.Open(ctx, *storeURL, *dataDir)
	if err != nil {
		return err
	}
	defer db.Close()
	svc, err := openEvents(ctx, e, db)
	if err != nil {
		return err
	}
	switch sub {
	case "targets add":
		generated := secret == ""
		if generated {
			if secret, err = events.NewSecret(); err != nil {
				return err
			}
		}
		if err := svc.AddTarget(ctx, events.Target{Name: name, URL: url, Secret: secret, Pattern: pattern, Enabled: !disabled}); err != nil {
			return err
		}
		if generated {
			fmt.Fprintf(e.stdout, "%s\n", secret)
			fmt.Fprintf(e.stderr, "target %s added; its signing secret (above) is shown only now\n", name)
		}
		return nil
	case "targets list":
		return listTargets(ctx, e, svc, asJSON)
	case "targets remove":
		return svc.RemoveTarget(ctx, fs.Arg(0))
	case "targets enable", "targets disable":
		return svc.SetEnabled(ctx, fs.Arg(0), sub == "targets enable")
	case "dead-letters":
		return listDeadLetters(ctx, e, svc, limit, asJSON)
	default:
		return tailEvents(ctx, e, svc, follow, fromStart, poll)
	}
}

// openEvents opens the event service the way serve does.
func openEvents(ctx context.Context, e *env, db *store.DB) (*events.Service, error) {
	account, err := awsapi.LoadAccount(ctx, db)
	if err != nil {
		return nil, err
	}
	return events.New(ctx, events.Options{Store: db, Account: account.ID, Log: e.log})
}

func fromFile(value, file, what string) (string, error) {
	if file == "" {
		return value, nil
	}
	if value != "" {
		return "", fmt.Errorf("%w: give --%s or --%s-file, not both", errUsage, what, what)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

func listTargets(ctx context.Context, e *env, svc *events.Service, asJSON bool) error {
	ts, err := svc.Targets(ctx)
	if err != nil {
		return err
	}
	if asJSON {
		type target struct {
			Name      string          `json:"name"`
			URL       string          `json:"url"`
			Pattern   json.RawMessage `json:"pattern,omitempty"`
			Enabled   bool            `json:"enabled"`
			CreatedAt time.Time       `json:"createdAt"`
		}
		out := []target{}
		for _, t := range ts {
			out = append(out, target{t.Name, t.URL, json.RawMessage(t.Pattern), t.Enabled, t.CreatedAt})
		}
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tURL\tENABLED\tPATTERN")
	for _, t := range ts {
		p := t.Pattern
		if p == "" {
			p = "(all events)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%v\t%s\n", t.Name, t.URL, t.Enabled, p)
	}
	return tw.Flush()
}

func listDeadLetters(ctx context.Context, e *env, svc *events.Service, limit int, asJSON bool) error {
	ds, err := svc.DeadLetters(ctx, limit)
	if err != nil {
		return err
	}
	if asJSON {
		type dead struct {
			EventID    string          `json:"eventId"`
			Target     string          `json:"target"`
			DetailType string          `json:"detailType"`
			Attempts   int             `json:"attempts"`
			LastError  string          `json:"lastError"`
			FailedAt   time.Time       `json:"failedAt"`
			Event      json.RawMessage `json:"event"`
		}
		out := []dead{}
		for _, d := range ds {
			out = append(out, dead{d.EventID, d.Target, d.DetailType, d.Attempts, d.LastError, d.UpdatedAt, d.Body})
		}
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FAILED AT\tTARGET\tEVENT ID\tDETAIL TYPE\tATTEMPTS\tLAST ERROR")
	for _, d := range ds {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\n", d.UpdatedAt.Format(time.RFC3339), d.Target, d.EventID, d.DetailType, d.Attempts, d.LastError)
	}
	return tw.Flush()
}

// tailEvents prints events as JSON lines: those written from now on (or
// all still in the outboxes with fromStart), until ctx ends with follow.
func tailEvents(ctx context.Context, e *env, svc *events.Service, follow, fromStart bool, poll time.Duration) error {
	var pos events.Position
	if !fromStart && follow {
		var err error
		if pos, err = svc.End(ctx); err != nil {
			return err
		}
	}
	enc := json.NewEncoder(e.stdout)
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		for {
			evs, next, err := svc.Read(ctx, pos, 500)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
			for _, ev := range evs {
				if err := enc.Encode(ev); err != nil {
					return err
				}
			}
			if next == pos {
				break
			}
			pos = next
		}
		if !follow {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

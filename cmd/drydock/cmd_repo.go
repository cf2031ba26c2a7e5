package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/drydockhq/drydock/internal/registry"
	"github.com/drydockhq/drydock/internal/store"
)

// parseInterspersed parses flags that may come before, between or after
// the positional arguments (drydock repo create NAME --data-dir DIR) and
// returns the positional ones.
func parseInterspersed(e *env, fs *flag.FlagSet, args []string) ([]string, error) {
	if err := parseFlags(e, fs, args); err != nil {
		return nil, err
	}
	var pos []string
	for rest := fs.Args(); len(rest) > 0; rest = fs.Args() {
		pos = append(pos, rest[0])
		if err := fs.Parse(rest[1:]); err != nil {
			if err == flag.ErrHelp {
				return nil, err
			}
			return nil, fmt.Errorf("%w: %v", errUsage, err)
		}
	}
	return pos, nil
}

// runRepo manages repositories directly in the store (no server needed):
// drydock repo create|list|delete [NAME].
func runRepo(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "repo", "create NAME | list | delete NAME")
	dataDir := fs.String("data-dir", "drydock-data", "data directory")
	storeURL := fs.String("store", "", "metadata store: postgres://... for PostgreSQL (default: SQLite in the data directory)")
	rest, err := parseInterspersed(e, fs, args)
	if err != nil {
		return err
	}
	if len(rest) == 0 {
		fs.Usage()
		return fmt.Errorf("%w: missing subcommand", errUsage)
	}
	sub, rest := rest[0], rest[1:]
	want := 1
	if sub == "list" {
		want = 0
	}
	if len(rest) != want {
		return fmt.Errorf("%w: repo %s takes %d argument(s)", errUsage, sub, want)
	}
	if want == 1 {
		if err := registry.ValidateName(rest[0]); err != nil {
			return fmt.Errorf("%w: %q: %v", errUsage, rest[0], err)
		}
	}
	switch sub {
	case "create", "list", "delete":
	default:
		return fmt.Errorf("%w: unknown subcommand %q", errUsage, sub)
	}
	db, err := store.Open(ctx, *storeURL, *dataDir)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := db.MigrateRegistry(ctx); err != nil {
		return err
	}
	reg := db.Registry()
	switch sub {
	case "create":
		repo, err := reg.CreateRepository(ctx, rest[0], time.Now())
		if errors.Is(err, store.ErrRepositoryExists) {
			return fmt.Errorf("repository %s already exists", rest[0])
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "created repository %s\n", repo.Name)
	case "delete":
		err := reg.DeleteRepository(ctx, rest[0])
		if errors.Is(err, store.ErrRepositoryNotFound) {
			return fmt.Errorf("repository %s does not exist", rest[0])
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "deleted repository %s (its blobs go at the next drydock gc)\n", rest[0])
	case "list":
		repos, err := reg.Repositories(ctx, "", 0)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tCREATED")
		for _, r := range repos {
			fmt.Fprintf(tw, "%s\t%s\n", r.Name, r.CreatedAt.Format(time.RFC3339))
		}
		return tw.Flush()
	}
	return nil
}

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/drydockhq/drydock/internal/auth"
	"github.com/drydockhq/drydock/internal/store"
)

// grantFlag collects the repository patterns of a repeatable flag.
type grantFlag []string

func (g *grantFlag) String() string { return strings.Join(*g, ",") }

func (g *grantFlag) Set(v string) error {
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*g = append(*g, p)
		}
	}
	return nil
}

const keysUsage = `create --name NAME [--admin] [--pull PATTERN]... [--push PATTERN]... [--delete PATTERN]... [--read-findings PATTERN]... [--out FILE]
       drydock keys revoke --name NAME [--admin] [--pull PATTERN]... [--push PATTERN]... [--delete PATTERN]... [--read-findings PATTERN]...
       drydock keys list [--json]
       drydock keys disable|enable|delete KEY-ID
  (all take --data-dir DIR and --store URL, and work on the store directly)`

// runKeys manages access keys and their principals' permissions.
func runKeys(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 {
		fmt.Fprintf(e.stderr, "usage: drydock keys %s\n", keysUsage)
		return fmt.Errorf("%w: missing subcommand", errUsage)
	}
	sub, args := args[0], args[1:]
	fs := newFlagSet(e, "keys "+sub, "")
	fs.Usage = func() {
		fmt.Fprintf(e.stderr, "usage: drydock keys %s\n", keysUsage)
		fs.PrintDefaults()
	}
	dataDir := fs.String("data-dir", "drydock-data", "data directory (holds the SQLite store)")
	storeURL := fs.String("store", "", "metadata store URL (default: SQLite in the data directory)")
	var name, out string
	var admin, asJSON bool
	var pull, push, del, findings grantFlag
	switch sub {
	case "create", "revoke":
		fs.StringVar(&name, "name", "", "principal the key belongs to (created if new); for revoke, the principal to take grants from")
		fs.BoolVar(&admin, "admin", false, "grant everything on the registry")
		fs.Var(&pull, "pull", "grant pull on repositories matching `PATTERN` ('*' matches any characters; repeatable)")
		fs.Var(&push, "push", "grant push (and pull) on repositories matching `PATTERN` (repeatable)")
		fs.Var(&del, "delete", "grant deleting images of repositories matching `PATTERN` (repeatable)")
		fs.Var(&findings, "read-findings", "grant reading scan findings of repositories matching `PATTERN` (repeatable)")
		if sub == "create" {
			fs.StringVar(&out, "out", "", "write the new key to this file (mode 0600) instead of standard output")
		}
	case "list":
		fs.BoolVar(&asJSON, "json", false, "print JSON")
	case "disable", "enable", "delete":
	default:
		fmt.Fprintf(e.stderr, "usage: drydock keys %s\n", keysUsage)
		return fmt.Errorf("%w: unknown subcommand %q", errUsage, sub)
	}
	if err := parseFlags(e, fs, args); err != nil {
		return err
	}
	var keyID string
	switch sub {
	case "disable", "enable", "delete":
		if fs.NArg() != 1 {
			return fmt.Errorf("%w: keys %s takes one access key id", errUsage, sub)
		}
		keyID = fs.Arg(0)
	default:
		if fs.NArg() != 0 {
			return fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
		}
	}
	var grants []auth.Grant
	if sub == "create" || sub == "revoke" {
		if name == "" {
			return fmt.Errorf("%w: keys %s needs --name", errUsage, sub)
		}
		if admin {
			grants = append(grants, auth.Grant{Action: auth.ActionAdmin, Pattern: "*"})
		}
		for _, set := range []struct {
			action   auth.Action
			patterns grantFlag
		}{{auth.ActionPull, pull}, {auth.ActionPush, push}, {auth.ActionDelete, del}, {auth.ActionReadFindings, findings}} {
			for _, p := range set.patterns {
				g := auth.Grant{Action: set.action, Pattern: p}
				if err := g.Validate(); err != nil {
					return fmt.Errorf("%w: %v", errUsage, err)
				}
				grants = append(grants, g)
			}
		}
		if sub == "revoke" && len(grants) == 0 {
			return fmt.Errorf("%w: keys revoke needs the grants to take away", errUsage)
		}
	}

	db, err := store.Open(ctx, *storeURL, *dataDir)
	if err != nil {
		return err
	}
	defer db.Close()
	svc, err := auth.Open(ctx, db, auth.Options{Logger: e.log})
	if err != nil {
		return err
	}
	switch sub {
	case "create":
		return keysCreate(ctx, e, svc, name, grants, out)
	case "revoke":
		return svc.RevokeGrants(ctx, name, grants)
	case "list":
		return keysList(ctx, e, svc, asJSON)
	case "disable", "enable":
		return svc.SetKeyDisabled(ctx, keyID, sub == "disable")
	default:
		return svc.DeleteKey(ctx, keyID)
	}
}

func keysCreate(ctx context.Context, e *env, svc *auth.Service, name string, grants []auth.Grant, out string) error {
	k, err := svc.CreateKey(ctx, name, grants)
	if err != nil {
		return err
	}
	if out != "" {
		if err := auth.WriteKeyFile(out, k); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "%s\n", k.ID)
		return nil
	}
	enc := json.NewEncoder(e.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(auth.KeyFile{AccessKeyID: k.ID, SecretAccessKey: k.Secret, Principal: k.Principal, Created: k.Created.UTC()})
}

// keyJSON is one line of `keys list --json`.
type keyJSON struct {
	AccessKeyID string    `json:"accessKeyId"`
	Principal   string    `json:"principal"`
	Status      string    `json:"status"`
	Created     time.Time `json:"created"`
	Grants      []string  `json:"grants"`
}

func keysList(ctx context.Context, e *env, svc *auth.Service, asJSON bool) error {
	keys, err := svc.ListKeys(ctx)
	if err != nil {
		return err
	}
	rows := make([]keyJSON, 0, len(keys))
	for _, k := range keys {
		r := keyJSON{AccessKeyID: k.ID, Principal: k.Principal, Status: "Active", Created: k.Created.UTC(), Grants: []string{}}
		if k.Disabled {
			r.Status = "Inactive"
		}
		for _, g := range k.Grants {
			r.Grants = append(r.Grants, g.String())
		}
		rows = append(rows, r)
	}
	if asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ACCESS KEY ID\tPRINCIPAL\tSTATUS\tCREATED\tGRANTS")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.AccessKeyID, r.Principal, r.Status, r.Created.Format(time.RFC3339), strings.Join(r.Grants, " "))
	}
	return errors.Join(tw.Flush())
}

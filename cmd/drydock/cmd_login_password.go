package main

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/drydockhq/drydock/internal/auth"
	"github.com/drydockhq/drydock/internal/store"
)

// runLoginPassword prints a registry login password, like
// `aws ecr get-login-password`, for
//
//	drydock login-password | podman login --username AWS --password-stdin HOST
//
// By default it signs the password with the admin key file of the data
// directory, without a server; --key-id makes one for any key in the store.
func runLoginPassword(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "login-password", "[--data-dir DIR | --key-file FILE | --key-id ID [--store URL]]")
	dataDir := fs.String("data-dir", "drydock-data", "data directory whose admin key file signs the password")
	keyFile := fs.String("key-file", "", "access key file to sign with (default DATA-DIR/"+auth.AdminKeyFile+")")
	keyID := fs.String("key-id", "", "make the password for this access key, reading its secret from the store")
	storeURL := fs.String("store", "", "metadata store URL for --key-id (default: SQLite in the data directory)")
	ttl := fs.Duration("ttl", auth.DefaultTokenTTL, "lifetime of the password (the registry refuses more than its own token lifetime)")
	if err := parseFlags(e, fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	if *keyID != "" && *keyFile != "" {
		return fmt.Errorf("%w: give --key-id or --key-file, not both", errUsage)
	}
	var pw string
	if *keyID != "" {
		db, err := store.Open(ctx, *storeURL, *dataDir)
		if err != nil {
			return err
		}
		defer db.Close()
		svc, err := auth.Open(ctx, db, auth.Options{TokenTTL: *ttl, Logger: e.log})
		if err != nil {
			return err
		}
		if pw, _, err = svc.LoginPassword(ctx, *keyID); err != nil {
			return err
		}
	} else {
		path := *keyFile
		if path == "" {
			path = filepath.Join(*dataDir, auth.AdminKeyFile)
		}
		k, err := auth.ReadKeyFile(path)
		if err != nil {
			return err
		}
		if pw, err = auth.NewLoginPassword(k.AccessKeyID, k.SecretAccessKey, time.Now().Add(*ttl)); err != nil {
			return err
		}
	}
	_, err := fmt.Fprintln(e.stdout, pw)
	return err
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/drydockhq/drydock/internal/auth"
	"github.com/drydockhq/drydock/internal/store"
)

// runDrydock runs the drydock command line in-process and returns its exit
// status, standard output and standard error.
func runDrydock(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	e := &env{
		stdin:  strings.NewReader(""),
		stdout: &stdout,
		stderr: &stderr,
		log:    slog.New(slog.NewTextHandler(&stderr, nil)),
		getenv: func(string) string { return "" },
	}
	code := run(context.Background(), e, args)
	return code, stdout.String(), stderr.String()
}

func TestKeysAndLoginPassword(t *testing.T) {
	dir := t.TempDir()
	code, out, errOut := runDrydock(t, "keys", "create", "--data-dir", dir, "--name", "ci", "--push", "team/*", "--read-findings", "*")
	if code != 0 {
		t.Fatalf("keys create: exit %d: %s", code, errOut)
	}
	var kf auth.KeyFile
	if err := json.Unmarshal([]byte(out), &kf); err != nil {
		t.Fatalf("keys create output %q: %v", out, err)
	}
	if strings.Contains(errOut, kf.SecretAccessKey) {
		t.Errorf("the secret reached the log: %s", errOut)
	}
	keyFile := filepath.Join(dir, "ci.json")
	code, out, errOut = runDrydock(t, "keys", "create", "--data-dir", dir, "--name", "ro", "--pull", "base/*", "--out", keyFile)
	if code != 0 {
		t.Fatalf("keys create --out: exit %d: %s", code, errOut)
	}
	roID := strings.TrimSpace(out)
	if st, err := os.Stat(keyFile); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file %v, %v: want mode 0600", st, err)
	}
	if strings.Contains(out+errOut, "secret") {
		t.Errorf("--out printed the secret: %s %s", out, errOut)
	}

	code, out, _ = runDrydock(t, "keys", "list", "--data-dir", dir, "--json")
	var listed []keyJSON
	if code != 0 || json.Unmarshal([]byte(out), &listed) != nil || len(listed) != 2 {
		t.Fatalf("keys list: exit %d: %s", code, out)
	}
	if strings.Contains(out, kf.SecretAccessKey) {
		t.Error("keys list printed a secret")
	}
	if listed[0].Principal != "ci" || strings.Join(listed[0].Grants, " ") != "push:team/* read-findings:*" {
		t.Errorf("listed %+v", listed[0])
	}

	// A password from the key file, and one from the store by key id, both
	// authenticate against the store.
	code, pwFile, errOut := runDrydock(t, "login-password", "--key-file", keyFile)
	if code != 0 {
		t.Fatalf("login-password --key-file: %d %s", code, errOut)
	}
	code, pwStore, errOut := runDrydock(t, "login-password", "--data-dir", dir, "--key-id", kf.AccessKeyID)
	if code != 0 {
		t.Fatalf("login-password --key-id: %d %s", code, errOut)
	}
	ctx := context.Background()
	db, err := store.Open(ctx, "", dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// No key cache: the CLI changes keys behind this service's back.
	svc, err := auth.Open(ctx, db, auth.Options{KeyCacheTTL: -1, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	check := func(pw, repo string, action auth.Action) error {
		r := httptest.NewRequest("GET", "/v2/", nil)
		r.SetBasicAuth("AWS", strings.TrimSuffix(pw, "\n"))
		_, err := svc.Authorize(r, repo, action)
		return err
	}
	if err := check(pwFile, "base/debian", auth.ActionPull); err != nil {
		t.Errorf("password from key file: %v", err)
	}
	if err := check(pwFile, "team/app", auth.ActionPull); !errors.Is(err, auth.ErrDenied) {
		t.Errorf("ro key pulling outside its grant: %v", err)
	}
	if err := check(pwStore, "team/app", auth.ActionPush); err != nil {
		t.Errorf("password by key id: %v", err)
	}

	// Revoking a grant takes it away; the rest stay.
	if code, _, errOut := runDrydock(t, "keys", "revoke", "--data-dir", dir, "--name", "ci", "--push", "team/*"); code != 0 {
		t.Fatalf("keys revoke: %s", errOut)
	}
	if err := check(pwStore, "team/app", auth.ActionPush); !errors.Is(err, auth.ErrDenied) {
		t.Errorf("push after revoking it: %v", err)
	}
	if err := check(pwStore, "team/app", auth.ActionReadFindings); err != nil {
		t.Errorf("read-findings after revoking push: %v", err)
	}
	if code, _, _ := runDrydock(t, "keys", "revoke", "--data-dir", dir, "--name", "nobody", "--pull", "*"); code != 1 {
		t.Errorf("revoking from an unknown principal: exit %d, want 1", code)
	}

	if code, _, errOut := runDrydock(t, "keys", "disable", "--data-dir", dir, roID); code != 0 {
		t.Fatalf("keys disable: %s", errOut)
	}
	if err := check(pwFile, "base/debian", auth.ActionPull); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Errorf("disabled key: %v", err)
	}
	if code, _, errOut := runDrydock(t, "keys", "enable", "--data-dir", dir, roID); code != 0 {
		t.Fatalf("keys enable: %s", errOut)
	}
	if err := check(pwFile, "base/debian", auth.ActionPull); err != nil {
		t.Errorf("re-enabled key: %v", err)
	}
	if code, _, errOut := runDrydock(t, "keys", "delete", "--data-dir", dir, roID); code != 0 {
		t.Fatalf("keys delete: %s", errOut)
	}
	if code, _, _ := runDrydock(t, "keys", "delete", "--data-dir", dir, roID); code != 1 {
		t.Errorf("deleting a deleted key: exit %d, want 1", code)
	}
	for _, bad := range [][]string{
		{"keys"},
		{"keys", "frob"},
		{"keys", "create", "--data-dir", dir},
		{"keys", "create", "--data-dir", dir, "--name", "x", "--pull", "UPPER"},
		{"keys", "disable", "--data-dir", dir},
		{"keys", "revoke", "--data-dir", dir, "--name", "ci"},
		{"login-password", "--key-file", keyFile, "--key-id", roID},
	} {
		if code, _, _ := runDrydock(t, bad...); code != 2 {
			t.Errorf("%q: exit %d, want 2 (usage)", bad, code)
		}
	}
}

package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// AdminPrincipal is the principal Bootstrap creates.
const AdminPrincipal = "admin"

// AdminKeyFile is the name of the file, in the data directory, that holds
// the admin access key Bootstrap created.
const AdminKeyFile = "admin-key.json"

// KeyFile is the JSON content of an access key file.
type KeyFile struct {
	AccessKeyID     string    `json:"accessKeyId"`
	SecretAccessKey string    `json:"secretAccessKey"`
	Principal       string    `json:"principal"`
	Created         time.Time `json:"created"`
}

// Bootstrap makes sure the registry has an admin. On the first start (no
// principal named AdminPrincipal in the store) it creates one with an
// access key and writes the key to dataDir/admin-key.json, mode 0600, in a
// directory of mode 0700. It logs where the file is, never the secret.
// Later starts, and replicas that lose the race to create the admin, change
// nothing and return the file's path if it exists.
func (s *Service) Bootstrap(ctx context.Context, dataDir string) (keyFile string, created bool, err error) {
	keyFile = filepath.Join(dataDir, AdminKeyFile)
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM auth_principals WHERE name = ?`, AdminPrincipal).Scan(&n); err != nil {
		return "", false, fmt.Errorf("auth: bootstrap: %w", err)
	}
	if n > 0 {
		if _, err := os.Stat(keyFile); err != nil {
			s.log.Info("admin principal exists; its key file is not in this data directory", "data_dir", dataDir)
			return "", false, nil
		}
		s.log.Info("admin access key file", "key_file", keyFile)
		return keyFile, false, nil
	}
	// The file is written before the key is committed: a crash in between
	// leaves a file naming a key the store does not have, and the next
	// start, finding no admin, makes a new key and replaces the file. The
	// other order could leave an admin whose secret nobody has.
	key, err := s.newAccessKey(AdminPrincipal, nil)
	if err != nil {
		return "", false, err
	}
	if err := WriteKeyFile(keyFile, key); err != nil {
		return "", false, err
	}
	err = s.insertKey(ctx, key, []Grant{{ActionAdmin, "*"}}, true)
	if errors.Is(err, errPrincipalExists) {
		// Another replica sharing the store was first; this file names a
		// key that does not exist.
		removeKeyFile(keyFile, key.ID)
		return s.Bootstrap(ctx, dataDir)
	}
	if err != nil {
		removeKeyFile(keyFile, key.ID)
		return "", false, err
	}
	s.log.Info("created the admin access key; keep its file secret", "key_id", key.ID, "key_file", keyFile)
	return keyFile, true, nil
}

// WriteKeyFile writes an access key to path as JSON, mode 0600, creating
// its directory with mode 0700. It replaces an existing file atomically.
func WriteKeyFile(path string, k AccessKey) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("auth: key file directory: %w", err)
	}
	body, err := json.MarshalIndent(KeyFile{AccessKeyID: k.ID, SecretAccessKey: k.Secret, Principal: k.Principal, Created: k.Created.UTC()}, "", "  ")
	if err != nil {
		return fmt.Errorf("auth: key file: %w", err)
	}
	f, err := os.CreateTemp(dir, ".key-*.tmp")
	if err != nil {
		return fmt.Errorf("auth: key file: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // after a successful rename this fails harmlessly
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("auth: key file: %w", err)
	}
	if _, err := f.Write(append(body, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("auth: write key file: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("auth: write key file: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("auth: write key file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("auth: write key file: %w", err)
	}
	return nil
}

// ReadKeyFile reads an access key file written by WriteKeyFile (or by
// hand, with at least accessKeyId and secretAccessKey).
func ReadKeyFile(path string) (KeyFile, error) {
	body, err := os.ReadFile(path)
	if err != nil {
		return KeyFile{}, fmt.Errorf("auth: read key file: %w", err)
	}
	var k KeyFile
	if err := json.Unmarshal(body, &k); err != nil {
		return KeyFile{}, fmt.Errorf("auth: key file %s: %w", path, err)
	}
	if k.AccessKeyID == "" || k.SecretAccessKey == "" {
		return KeyFile{}, fmt.Errorf("auth: key file %s lacks accessKeyId or secretAccessKey", path)
	}
	return k, nil
}

// removeKeyFile removes the key file at path if it still names key id.
func removeKeyFile(path, id string) {
	if k, err := ReadKeyFile(path); err == nil && k.AccessKeyID == id {
		os.Remove(path)
	}
}

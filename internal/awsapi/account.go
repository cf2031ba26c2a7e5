package awsapi

import (
	"context"
	"crypto/rand"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"math/big"
	"regexp"

	"github.com/drydockhq/drydock/internal/store"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Account is what the AWS-compatible APIs of one Drydock installation
// share: the 12-digit id that stands for the AWS account (ECR's registryId,
// Inspector's awsAccountId, the account field of ARNs) and the key that
// seals pagination tokens. Both are made on first use and kept in the
// metadata store, so every replica and every restart agree.
type Account struct {
	// ID is the 12-digit registry (account) id.
	ID     string
	tokens *Tokens
}

// Tokens seals and opens this installation's pagination tokens.
func (a *Account) Tokens() *Tokens { return a.tokens }

// RegistryIDPattern is the shape of a registry (account) id.
var RegistryIDPattern = regexp.MustCompile(`^[0-9]{12}$`)

// LoadAccount applies the awsapi migrations to db and returns the
// installation's account, creating its id and token key the first time.
// Replicas starting together agree: the first insert wins and everyone
// reads it back.
func LoadAccount(ctx context.Context, db *store.DB) (*Account, error) {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return nil, fmt.Errorf("awsapi: %w", err)
	}
	if err := db.Migrate(ctx, "awsapi", sub); err != nil {
		return nil, fmt.Errorf("awsapi: %w", err)
	}
	id, err := setting(ctx, db, "registry_id", newRegistryID)
	if err != nil {
		return nil, err
	}
	if !RegistryIDPattern.MatchString(id) {
		return nil, fmt.Errorf("awsapi: stored registry id %q is not 12 digits", id)
	}
	keyHex, err := setting(ctx, db, "token_key", newTokenKey)
	if err != nil {
		return nil, err
	}
	key, err := hex.DecodeString(keyHex)
	if err != nil {
		return nil, fmt.Errorf("awsapi: stored token key: %w", err)
	}
	tokens, err := NewTokens(key)
	if err != nil {
		return nil, err
	}
	return &Account{ID: id, tokens: tokens}, nil
}

// setting returns a stored setting, storing make()'s value first if there
// is none.
func setting(ctx context.Context, db *store.DB, name string, make func() (string, error)) (string, error) {
	v, err := make()
	if err != nil {
		return "", fmt.Errorf("awsapi: %s: %w", name, err)
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO awsapi_settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING`, name, v); err != nil {
		return "", fmt.Errorf("awsapi: store %s: %w", name, err)
	}
	if err := db.QueryRowContext(ctx, `SELECT value FROM awsapi_settings WHERE name = ?`, name).Scan(&v); err != nil {
		return "", fmt.Errorf("awsapi: read %s: %w", name, err)
	}
	return v, nil
}

// newRegistryID draws 12 random decimal digits.
func newRegistryID() (string, error) {
	n, err := rand.Int(rand.Reader, big.NewInt(1_000_000_000_000))
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%012d", n.Int64()), nil
}

func newTokenKey() (string, error) {
	var k [32]byte
	if _, err := rand.Read(k[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(k[:]), nil
}

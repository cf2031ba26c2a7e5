package auth

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base32"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"time"

	"github.com/drydockhq/drydock/internal/store"
)

// KeyIDPrefix starts every access key id Drydock makes. Ids have the shape
// of AWS access key ids (20 upper-case letters and digits) so that tools
// and secret scanners treat them alike.
const KeyIDPrefix = "DDAK"

// ErrNotFound is returned for an access key or principal that does not
// exist.
var ErrNotFound = errors.New("not found")

var principalName = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)

// newKeyID returns KeyIDPrefix and 16 random base32 characters.
func newKeyID() (string, error) {
	var b [10]byte // 80 bits = 16 base32 characters
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("auth: key id: %w", err)
	}
	return KeyIDPrefix + base32.StdEncoding.EncodeToString(b[:]), nil
}

// newSecret returns 40 characters of standard base64 (240 random bits),
// the length of an AWS secret access key.
func newSecret() (string, error) {
	var b [30]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("auth: secret: %w", err)
	}
	return base64.StdEncoding.EncodeToString(b[:]), nil
}

// AccessKey is an access key with its secret, as shown once on creation.
type AccessKey struct {
	ID        string
	Secret    string
	Principal string
	Created   time.Time
}

// KeyInfo describes an access key without its secret.
type KeyInfo struct {
	ID        string
	Principal string
	Disabled  bool
	Created   time.Time
	// Grants are the permissions of the key's principal.
	Grants []Grant
}

// CreateKey makes a new access key for the principal named name, creating
// the principal if it does not exist, and adds grants to the principal's
// permissions.
func (s *Service) CreateKey(ctx context.Context, name string, grants []Grant) (AccessKey, error) {
	key, err := s.newAccessKey(name, grants)
	if err != nil {
		return AccessKey{}, err
	}
	if err := s.insertKey(ctx, key, grants, false); err != nil {
		return AccessKey{}, err
	}
	return key, nil
}

// newAccessKey validates a request for a key and draws its id and secret.
func (s *Service) newAccessKey(name string, grants []Grant) (AccessKey, error) {
	if !principalName.MatchString(name) {
		return AccessKey{}, fmt.Errorf("auth: principal name %q: use 1 to 64 lower-case letters, digits, '.', '_' or '-'", name)
	}
	for _, g := range grants {
		if err := g.Validate(); err != nil {
			return AccessKey{}, err
		}
	}
	id, err := newKeyID()
	if err != nil {
		return AccessKey{}, err
	}
	secret, err := newSecret()
	if err != nil {
		return AccessKey{}, err
	}
	return AccessKey{ID: id, Secret: secret, Principal: name, Created: time.Unix(s.now().Unix(), 0)}, nil
}

// errPrincipalExists is returned by insertKey when newPrincipal is set and
// the principal exists already.
var errPrincipalExists = errors.New("principal exists")

// insertKey stores key, its principal (which must not exist yet when
// newPrincipal is set) and grants in one transaction.
func (s *Service) insertKey(ctx context.Context, key AccessKey, grants []Grant, newPrincipal bool) error {
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		q := `INSERT INTO auth_principals (name, created_at) VALUES (?, ?) ON CONFLICT (name) DO NOTHING`
		if newPrincipal {
			q = `INSERT INTO auth_principals (name, created_at) VALUES (?, ?)`
		}
		if _, err := tx.ExecContext(ctx, q, key.Principal, key.Created.Unix()); err != nil {
			if newPrincipal && store.IsUniqueViolation(err) {
				return errPrincipalExists
			}
			return fmt.Errorf("create principal: %w", err)
		}
		for _, g := range grants {
			if _, err := tx.ExecContext(ctx, `INSERT INTO auth_grants (principal, action, pattern) VALUES (?, ?, ?)
				ON CONFLICT (principal, action, pattern) DO NOTHING`, key.Principal, string(g.Action), g.Pattern); err != nil {
				return fmt.Errorf("grant %s: %w", g, err)
			}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO auth_keys (id, principal, secret, disabled, created_at) VALUES (?, ?, ?, 0, ?)`,
			key.ID, key.Principal, key.Secret, key.Created.Unix()); err != nil {
			return fmt.Errorf("create key: %w", err)
		}
		return nil
	})
	if errors.Is(err, errPrincipalExists) {
		return err
	}
	if err != nil {
		return fmt.Errorf("auth: create access key for %s: %w", key.Principal, err)
	}
	if len(grants) > 0 {
		// Grants added to an existing principal apply to its cached keys.
		s.keys.forget("")
	}
	s.log.Info("access key created", "key_id", key.ID, "principal", key.Principal)
	return nil
}

// ListKeys returns every access key, without secrets, ordered by principal
// and creation time.
func (s *Service) ListKeys(ctx context.Context) ([]KeyInfo, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, principal, disabled, created_at FROM auth_keys ORDER BY principal, created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("auth: list keys: %w", err)
	}
	var keys []KeyInfo
	for rows.Next() {
		var k KeyInfo
		var disabled int
		var created int64
		if err := rows.Scan(&k.ID, &k.Principal, &disabled, &created); err != nil {
			rows.Close()
			return nil, fmt.Errorf("auth: list keys: %w", err)
		}
		k.Disabled, k.Created = disabled != 0, time.Unix(created, 0)
		keys = append(keys, k)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("auth: list keys: %w", err)
	}
	grants := map[string][]Grant{}
	for i := range keys {
		name := keys[i].Principal
		if _, ok := grants[name]; !ok {
			g, err := s.grants(ctx, name)
			if err != nil {
				return nil, err
			}
			grants[name] = g
		}
		keys[i].Grants = grants[name]
	}
	return keys, nil
}

// SetKeyDisabled disables or re-enables an access key. A disabled key
// authenticates nothing: its SigV4 requests and its login passwords are
// refused at once, on every replica.
func (s *Service) SetKeyDisabled(ctx context.Context, id string, disabled bool) error {
	v := 0
	if disabled {
		v = 1
	}
	defer s.keys.forget(id)
	res, err := s.db.ExecContext(ctx, `UPDATE auth_keys SET disabled = ? WHERE id = ?`, v, id)
	if err != nil {
		return fmt.Errorf("auth: update key %s: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("auth: access key %s: %w", id, ErrNotFound)
	}
	s.log.Info("access key updated", "key_id", id, "disabled", disabled)
	return nil
}

// DeleteKey deletes an access key. Its principal and grants stay.
func (s *Service) DeleteKey(ctx context.Context, id string) error {
	defer s.keys.forget(id)
	res, err := s.db.ExecContext(ctx, `DELETE FROM auth_keys WHERE id = ?`, id)
	if err != nil {
		return fmt.Errorf("auth: delete key %s: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("auth: access key %s: %w", id, ErrNotFound)
	}
	s.log.Info("access key deleted", "key_id", id)
	return nil
}

// RevokeGrants removes grants from the principal named name. Grants it
// does not have are ignored; an unknown principal is ErrNotFound.
func (s *Service) RevokeGrants(ctx context.Context, name string, grants []Grant) error {
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM auth_principals WHERE name = ?`, name).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return ErrNotFound
		}
		for _, g := range grants {
			if _, err := tx.ExecContext(ctx, `DELETE FROM auth_grants WHERE principal = ? AND action = ? AND pattern = ?`,
				name, string(g.Action), g.Pattern); err != nil {
				return err
			}
		}
		return nil
	})
	s.keys.forget("")
	if err != nil {
		return fmt.Errorf("auth: revoke grants of %s: %w", name, err)
	}
	s.log.Info("grants revoked", "principal", name, "count", len(grants))
	return nil
}

// grants returns the grants of a principal, sorted.
func (s *Service) grants(ctx context.Context, principal string) ([]Grant, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT action, pattern FROM auth_grants WHERE principal = ?`, principal)
	if err != nil {
		return nil, fmt.Errorf("auth: grants of %s: %w", principal, err)
	}
	defer rows.Close()
	var gs []Grant
	for rows.Next() {
		var g Grant
		if err := rows.Scan(&g.Action, &g.Pattern); err != nil {
			return nil, fmt.Errorf("auth: grants of %s: %w", principal, err)
		}
		gs = append(gs, g)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("auth: grants of %s: %w", principal, err)
	}
	sort.Slice(gs, func(i, j int) bool {
		if gs[i].Action != gs[j].Action {
			return gs[i].Action < gs[j].Action
		}
		return gs[i].Pattern < gs[j].Pattern
	})
	return gs, nil
}

// activeKey is an enabled access key with its secret and principal.
type activeKey struct {
	secret    string
	principal Principal
}

// lookupKey returns an enabled key and its principal's grants, from the
// key cache or with one query. A missing or disabled key is ErrNotFound.
func (s *Service) lookupKey(ctx context.Context, id string) (activeKey, error) {
	now := s.now()
	if k, ok := s.keys.get(id, now); ok {
		return k, nil
	}
	k, err := s.loadKey(ctx, id)
	if err != nil {
		return activeKey{}, err
	}
	s.keys.put(id, k, now)
	return k, nil
}

// loadKey reads an enabled key and its principal's grants from the store.
func (s *Service) loadKey(ctx context.Context, id string) (activeKey, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT k.secret, k.principal, k.disabled, g.action, g.pattern
		FROM auth_keys k LEFT JOIN auth_grants g ON g.principal = k.principal
		WHERE k.id = ?`, id)
	if err != nil {
		return activeKey{}, fmt.Errorf("auth: look up key: %w", err)
	}
	defer rows.Close()
	var k activeKey
	found, disabled := false, false
	for rows.Next() {
		var d int
		var action, pattern sql.NullString
		if err := rows.Scan(&k.secret, &k.principal.Name, &d, &action, &pattern); err != nil {
			return activeKey{}, fmt.Errorf("auth: look up key: %w", err)
		}
		found, disabled = true, d != 0
		if action.Valid {
			k.principal.Grants = append(k.principal.Grants, Grant{Action(action.String), pattern.String})
		}
	}
	if err := rows.Err(); err != nil {
		return activeKey{}, fmt.Errorf("auth: look up key: %w", err)
	}
	if !found || disabled {
		return activeKey{}, ErrNotFound
	}
	k.principal.KeyID = id
	return k, nil
}

// LoginPassword makes a login password for an enabled access key, valid
// for the service's token lifetime.
func (s *Service) LoginPassword(ctx context.Context, keyID string) (string, time.Time, error) {
	k, err := s.lookupKey(ctx, keyID)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("auth: login password for %s: %w", keyID, err)
	}
	exp := s.now().Add(s.ttl).Truncate(time.Second)
	pw, err := NewLoginPassword(keyID, k.secret, exp)
	if err != nil {
		return "", time.Time{}, err
	}
	return pw, exp, nil
}

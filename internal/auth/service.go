package auth

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/drydockhq/drydock/internal/store"
)

//go:embed migrations/*.sql
var migrations embed.FS

// DefaultTokenTTL is how long a login password is valid, as in ECR.
const DefaultTokenTTL = 12 * time.Hour

// Options configure a Service.
type Options struct {
	// AnonymousPull lets requests without credentials pull from every
	// repository.
	AnonymousPull bool
	// TokenTTL is the lifetime of login passwords (DefaultTokenTTL when 0).
	TokenTTL time.Duration
	// Realm is the realm of the Basic challenge ("drydock" when empty).
	Realm string
	// Logger receives the service's logs (slog.Default() when nil). Secrets
	// and passwords are never logged.
	Logger *slog.Logger
	// Now is the clock (time.Now when nil); tests move it.
	Now func() time.Time
	// KeyCacheTTL is how long an access key loaded from the store is
	// trusted before it is loaded again (DefaultKeyCacheTTL when 0; a
	// negative value disables the cache). Disabling or deleting a key takes
	// effect at once on the replica that does it and within this time on
	// the others.
	KeyCacheTTL time.Duration
}

// Service authenticates requests against the access keys in the metadata
// store and checks their principals' permissions. It keeps no session
// state: every replica sharing the store accepts what any other issued.
type Service struct {
	db        *store.DB
	anonymous bool
	ttl       time.Duration
	realm     string
	log       *slog.Logger
	now       func() time.Time
	keys      keyCache
}

// Service implements Authorizer.
var _ Authorizer = (*Service)(nil)

// Open applies the auth migrations to db and returns a Service on it.
func Open(ctx context.Context, db *store.DB, opts Options) (*Service, error) {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	if err := db.Migrate(ctx, "auth", sub); err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	s := &Service{
		db:        db,
		anonymous: opts.AnonymousPull,
		ttl:       opts.TokenTTL,
		realm:     opts.Realm,
		log:       opts.Logger,
		now:       opts.Now,
	}
	if s.ttl <= 0 {
		s.ttl = DefaultTokenTTL
	}
	if s.realm == "" {
		s.realm = "drydock"
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.keys.ttl = opts.KeyCacheTTL
	if s.keys.ttl == 0 {
		s.keys.ttl = DefaultKeyCacheTTL
	}
	return s, nil
}

// TokenTTL is the lifetime of the login passwords this service makes.
func (s *Service) TokenTTL() time.Duration { return s.ttl }

// Challenge is the WWW-Authenticate value of a 401 answer.
func (s *Service) Challenge() string {
	return `Basic realm="` + strings.ReplaceAll(s.realm, `"`, "") + `"`
}

// Error is an authentication failure with an AWS-style error code that the
// ECR and Inspector APIs can return as is. It matches ErrUnauthenticated
// with errors.Is.
type Error struct {
	// Code is the AWS error name: MissingAuthenticationTokenException,
	// IncompleteSignatureException, UnrecognizedClientException,
	// InvalidSignatureException.
	Code string
	// Message is safe to show the client.
	Message string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Unwrap makes errors.Is(err, ErrUnauthenticated) true.
func (e *Error) Unwrap() error { return ErrUnauthenticated }

func authError(code, format string, args ...any) error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Authorize authenticates r and checks that its principal may perform
// action on repo. It returns ErrUnauthenticated (possibly as an *Error)
// when the request has no valid credentials, and ErrDenied when the
// principal lacks the permission. An anonymous request that is not allowed
// gets ErrUnauthenticated, so the client is asked to log in.
func (s *Service) Authorize(r *http.Request, repo string, action Action) (Principal, error) {
	p, err := s.Authenticate(r)
	if err != nil {
		return Principal{}, err
	}
	if err := s.Permit(p, repo, action); err != nil {
		return p, err
	}
	return p, nil
}

// Permit checks an authenticated principal's permission, for callers that
// authenticate once and check many repositories (batch APIs).
func (s *Service) Permit(p Principal, repo string, action Action) error {
	if p.Can(repo, action) {
		return nil
	}
	if p.Anonymous {
		return ErrUnauthenticated
	}
	return fmt.Errorf("%w: %s may not %s %s", ErrDenied, p.Name, action, repoOrRegistry(repo))
}

func repoOrRegistry(repo string) string {
	if repo == "" {
		return "on this registry"
	}
	return "repository " + repo
}

// Authenticate establishes who made r: HTTP Basic with the user name "AWS"
// and a login password, or an AWS SigV4 signature, or nobody when anonymous
// pull is on and r carries no credentials. Invalid credentials never fall
// back to anonymous.
func (s *Service) Authenticate(r *http.Request) (Principal, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		if s.anonymous {
			return Principal{Name: "anonymous", Anonymous: true, Grants: []Grant{{ActionPull, "*"}}}, nil
		}
		return Principal{}, authError("MissingAuthenticationTokenException", "missing authentication token")
	}
	scheme, _, _ := strings.Cut(h, " ")
	switch {
	case strings.EqualFold(scheme, "Basic"):
		return s.authenticateBasic(r)
	case scheme == sigV4Algorithm:
		return s.authenticateSigV4(r, h)
	default:
		return Principal{}, authError("IncompleteSignatureException", "unsupported authorization scheme")
	}
}

func (s *Service) authenticateBasic(r *http.Request) (Principal, error) {
	user, pw, ok := r.BasicAuth()
	if !ok {
		return Principal{}, authError("IncompleteSignatureException", "malformed Basic credentials")
	}
	if user != "AWS" {
		return Principal{}, authError("UnrecognizedClientException", "the user name must be AWS with a login password")
	}
	return s.VerifyLoginPassword(r.Context(), pw)
}

// VerifyLoginPassword checks a login password: well-formed, made by an
// enabled access key, not tampered with, not expired.
func (s *Service) VerifyLoginPassword(ctx context.Context, pw string) (Principal, error) {
	parsed, err := parsePassword(pw)
	if err != nil {
		return Principal{}, authError("UnrecognizedClientException", "invalid login password")
	}
	now := s.now()
	if !now.Before(parsed.expires) {
		return Principal{}, authError("ExpiredTokenException", "the login password has expired")
	}
	if parsed.expires.After(now.Add(s.ttl + time.Minute)) {
		// Made with a longer lifetime than this registry grants.
		return Principal{}, authError("UnrecognizedClientException", "invalid login password")
	}
	k, err := s.lookupKey(ctx, parsed.keyID)
	if errors.Is(err, ErrNotFound) {
		s.log.Debug("login password for an unknown or disabled key", "key_id", parsed.keyID)
		return Principal{}, authError("UnrecognizedClientException", "invalid login password")
	}
	if err != nil {
		return Principal{}, err
	}
	if !parsed.verify(k.secret) {
		s.log.Debug("login password with a bad signature", "key_id", parsed.keyID)
		return Principal{}, authError("UnrecognizedClientException", "invalid login password")
	}
	return k.principal, nil
}

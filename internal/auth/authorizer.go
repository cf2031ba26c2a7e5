// Package auth holds Drydock's identities and how requests prove them:
// access keys (id and secret) belonging to principals with permissions,
// ECR-style registry login tokens, and AWS SigV4 request verification.
package auth

import (
	"context"
	"errors"
	"net/http"
)

// Action is what a request does to a repository.
type Action string

// The actions the registry and the APIs check.
const (
	ActionPull    Action = "pull"
	ActionPush    Action = "push"
	ActionDelete  Action = "delete"
	ActionCatalog Action = "catalog"
	// ActionReadFindings reads scan results and findings.
	ActionReadFindings Action = "read-findings"
	// ActionAdmin manages repositories, scanning configuration and keys.
	ActionAdmin Action = "admin"
)

// Errors an Authorizer returns. The registry answers ErrUnauthenticated with
// 401 and a WWW-Authenticate challenge, ErrDenied with 403.
var (
	ErrUnauthenticated = errors.New("authentication required")
	ErrDenied          = errors.New("access denied")
)

// Principal is the identity behind a request.
type Principal struct {
	// KeyID is the access key the request was made with ("" when
	// anonymous).
	KeyID string
	// Name is the principal's name ("admin", "ci", ...).
	Name string
	// Anonymous is true for unauthenticated requests allowed by
	// configuration (anonymous pull).
	Anonymous bool
	// Grants are the principal's permissions; see Can.
	Grants []Grant
}

// Authorizer decides whether a request may perform an action on a
// repository. repo is "" for registry-wide actions (catalog, admin).
type Authorizer interface {
	Authorize(r *http.Request, repo string, action Action) (Principal, error)
}

type principalKey struct{}

// WithPrincipal returns a context carrying p.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the principal stored in ctx by WithPrincipal.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}

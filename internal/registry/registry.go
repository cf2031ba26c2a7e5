// Package registry serves the OCI Distribution Specification v1.1 HTTP API
// (/v2/): pull, push (monolithic, chunked and streamed uploads, cross-
// repository mounts), tags, the catalog, the referrers API and deletion.
//
// Metadata lives in the store (repositories, manifests, tags, blob links,
// uploads) and bytes in a blob.Store. Repositories must exist before
// anything is pushed into them, as in Amazon ECR, unless the handler is
// configured to create them on push.
package registry

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/drydockhq/drydock/internal/auth"
	"github.com/drydockhq/drydock/internal/blob"
	"github.com/drydockhq/drydock/internal/store"
)

// DefaultChallenge is the WWW-Authenticate value sent with 401 answers when
// Options.Challenge is empty.
const DefaultChallenge = `Basic realm="drydock"`

// Options configure a Handler.
type Options struct {
	// Store holds the registry's metadata (migrated with MigrateRegistry).
	Store *store.DB
	// Blobs holds the bytes.
	Blobs blob.Store
	// Auth decides who may do what; nil allows everything (tests only).
	Auth auth.Authorizer
	// Challenge is the WWW-Authenticate header of 401 answers.
	Challenge string
	// CreateOnPush creates a missing repository on the first push into it
	// instead of answering NAME_UNKNOWN.
	CreateOnPush bool
	// Log receives server-side errors; nil discards them.
	Log *slog.Logger
	// IdleTimeout is how long an upload body may send nothing before the
	// request fails and the upload is released (default two minutes).
	IdleTimeout time.Duration
	// Uploads, when set, is told when a request that sends or commits blob
	// data (PATCH, PUT, a POST with the whole blob) starts and ends, however
	// it ends (the uploads-in-flight metric).
	Uploads UploadObserver
	// MaxBlobSize is the largest blob an upload may hold, in bytes; 0 means
	// no limit. A request that would take an upload past it is answered
	// 413 SIZE_INVALID and the upload is removed with its data.
	MaxBlobSize int64
	// PullRecordInterval is how stale a manifest's last pull time may get
	// before a pull updates it (default one minute), which keeps pulls from
	// writing to the store on every request.
	PullRecordInterval time.Duration
}

// UploadObserver is told when requests carrying blob data start and end.
// Every UploadStarted is followed by one UploadFinished, also when the
// request fails or the client goes away, so a gauge kept by the two returns
// to zero whenever no upload request is being served.
type UploadObserver interface {
	UploadStarted()
	UploadFinished()
}

type noObserver struct{}

func (noObserver) UploadStarted()  {}
func (noObserver) UploadFinished() {}

// Handler serves the /v2/ API. Create it with New.
type Handler struct {
	reg          *store.Registry
	blobs        blob.Store
	auth         auth.Authorizer
	challenge    string
	createOnPush bool
	log          *slog.Logger
	pullInterval time.Duration
	idleTimeout  time.Duration
	uploads      UploadObserver
	maxBlobSize  int64
}

// New returns a Handler.
func New(o Options) *Handler {
	h := &Handler{
		reg:          o.Store.Registry(),
		blobs:        o.Blobs,
		auth:         o.Auth,
		challenge:    o.Challenge,
		createOnPush: o.CreateOnPush,
		log:          o.Log,
		pullInterval: o.PullRecordInterval,
		uploads:      o.Uploads,
		idleTimeout:  o.IdleTimeout,
		maxBlobSize:  o.MaxBlobSize,
	}
	if h.idleTimeout <= 0 {
		h.idleTimeout = 2 * time.Minute
	}
	if h.uploads == nil {
		h.uploads = noObserver{}
	}
	if h.challenge == "" {
		h.challenge = DefaultChallenge
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if h.pullInterval <= 0 {
		h.pullInterval = time.Minute
	}
	return h
}

// ServeHTTP implements http.Handler for paths under /v2.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	rt, e := parseRoute(r.URL.EscapedPath())
	if e != nil {
		writeError(w, r, e)
		return
	}
	action, ok := actionFor(rt, r.Method)
	if !ok {
		writeError(w, r, newError(http.StatusMethodNotAllowed, CodeUnsupported, "method %s not supported here", r.Method))
		return
	}
	principal, ok := h.authorize(w, r, rt.name, action)
	if !ok {
		return
	}
	var err *Error
	switch rt.kind {
	case routeBase:
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", "2")
		if r.Method == http.MethodGet {
			_, _ = w.Write([]byte("{}"))
		}
	case routeCatalog:
		err = h.catalog(w, r, principal)
	case routeTags:
		err = h.tags(w, r, rt)
	case routeReferrers:
		err = h.referrers(w, r, rt)
	case routeManifest:
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			err = h.getManifest(w, r, rt)
		case http.MethodPut:
			err = h.putManifest(w, r, rt)
		case http.MethodDelete:
			err = h.deleteManifest(w, r, rt)
		}
	case routeBlob:
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			err = h.getBlob(w, r, rt)
		case http.MethodDelete:
			err = h.deleteBlob(w, r, rt)
		}
	case routeUpload:
		switch r.Method {
		case http.MethodPost:
			err = h.startUpload(w, r, rt)
		case http.MethodGet:
			err = h.uploadStatus(w, r, rt)
		case http.MethodPatch:
			err = h.patchUpload(w, r, rt)
		case http.MethodPut:
			err = h.putUpload(w, r, rt)
		case http.MethodDelete:
			err = h.cancelUpload(w, r, rt)
		}
	}
	if err != nil {
		writeError(w, r, err)
	}
}

// actionFor maps an endpoint and method to the permission it needs.
func actionFor(rt route, method string) (auth.Action, bool) {
	read := method == http.MethodGet || method == http.MethodHead
	switch rt.kind {
	case routeBase:
		return auth.ActionPull, read
	case routeCatalog:
		return auth.ActionCatalog, read
	case routeTags, routeReferrers:
		return auth.ActionPull, method == http.MethodGet
	case routeManifest, routeBlob:
		switch {
		case read:
			return auth.ActionPull, true
		case method == http.MethodDelete:
			return auth.ActionDelete, true
		case method == http.MethodPut && rt.kind == routeManifest:
			return auth.ActionPush, true
		}
		return "", false
	case routeUpload:
		if rt.upload == "" {
			return auth.ActionPush, method == http.MethodPost
		}
		switch method {
		case http.MethodGet, http.MethodPatch, http.MethodPut, http.MethodDelete:
			return auth.ActionPush, true
		}
	}
	return "", false
}

// authorize checks the request with the Authorizer and answers 401 or 403
// itself when it fails.
func (h *Handler) authorize(w http.ResponseWriter, r *http.Request, repo string, action auth.Action) (auth.Principal, bool) {
	if h.auth == nil {
		return auth.Principal{}, true
	}
	p, err := h.auth.Authorize(r, repo, action)
	switch {
	case err == nil:
		return p, true
	case errors.Is(err, auth.ErrUnauthenticated):
		w.Header().Set("WWW-Authenticate", h.challenge)
		writeError(w, r, newError(http.StatusUnauthorized, CodeUnauthorized, "authentication required"))
	case errors.Is(err, auth.ErrDenied):
		writeError(w, r, newError(http.StatusForbidden, CodeDenied, "requested access to the resource is denied"))
	default:
		h.log.Error("authorize", "err", err)
		writeError(w, r, errInternal)
	}
	return auth.Principal{}, false
}

// permitter is implemented by Authorizers that can check an authenticated
// principal again without authenticating the request anew (auth.Service).
type permitter interface {
	Permit(p auth.Principal, repo string, action auth.Action) error
}

// canPull reports whether the request's principal may pull from repo.
func (h *Handler) canPull(r *http.Request, p auth.Principal, repo string) bool {
	if h.auth == nil {
		return true
	}
	if pm, ok := h.auth.(permitter); ok {
		return pm.Permit(p, repo, auth.ActionPull) == nil
	}
	return h.allowed(r, repo, auth.ActionPull)
}

// allowed asks the Authorizer without answering the request.
func (h *Handler) allowed(r *http.Request, repo string, action auth.Action) bool {
	if h.auth == nil {
		return true
	}
	_, err := h.auth.Authorize(r, repo, action)
	return err == nil
}

// internal logs a server-side failure and returns the generic error.
func (h *Handler) internal(r *http.Request, what string, err error) *Error {
	if errors.Is(err, context.Canceled) {
		h.log.Debug(what, "method", r.Method, "path", r.URL.Path, "err", err)
	} else {
		h.log.Error(what, "method", r.Method, "path", r.URL.Path, "err", err)
	}
	return errInternal
}

// storeError maps the store's not-found errors to the specification's.
func (h *Handler) storeError(r *http.Request, what string, err error) *Error {
	switch {
	case errors.Is(err, store.ErrRepositoryNotFound):
		return newError(http.StatusNotFound, CodeNameUnknown, "repository name not known to registry")
	case errors.Is(err, store.ErrBlobNotFound):
		return newError(http.StatusNotFound, CodeBlobUnknown, "blob unknown to registry")
	case errors.Is(err, store.ErrManifestNotFound), errors.Is(err, store.ErrTagNotFound):
		return newError(http.StatusNotFound, CodeManifestUnknown, "manifest unknown")
	}
	return h.internal(r, what, err)
}

// repoForPush returns the repository a push goes to, creating it when the
// handler creates repositories on push.
func (h *Handler) repoForPush(r *http.Request, name string) (store.Repository, *Error) {
	var repo store.Repository
	var err error
	if h.createOnPush {
		repo, err = h.reg.EnsureRepository(r.Context(), name, time.Now())
	} else {
		repo, err = h.reg.Repository(r.Context(), name)
	}
	if err != nil {
		return store.Repository{}, h.storeError(r, "repository", err)
	}
	return repo, nil
}

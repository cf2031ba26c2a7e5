package registry

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"

	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/drydockhq/drydock/internal/auth"
	"github.com/drydockhq/drydock/internal/store"
)

// DefaultPageSize is how many tags or repositories one list answer holds
// when the client gives no n; a Link header leads to the rest.
const DefaultPageSize = 1000

// MaxPageSize caps n.
const MaxPageSize = 10000

// pagination reads n and last. n == 0 asks for an empty page.
func pagination(r *http.Request) (n int, last string, e *Error) {
	q := r.URL.Query()
	n = DefaultPageSize
	if s := q.Get("n"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 0 {
			return 0, "", newError(http.StatusBadRequest, CodeUnsupported, "invalid n %q", truncate(s))
		}
		n = min(v, MaxPageSize)
	}
	return n, q.Get("last"), nil
}

// setNextLink sets the Link header of a page that has more after last.
func setNextLink(w http.ResponseWriter, path string, n int, last string) {
	q := url.Values{}
	q.Set("n", strconv.Itoa(n))
	q.Set("last", last)
	w.Header().Set("Link", "<"+path+"?"+q.Encode()+`>; rel="next"`)
}

func writeJSON(w http.ResponseWriter, r *http.Request, contentType string, v any) *Error {
	body, err := json.Marshal(v)
	if err != nil {
		return errInternal
	}
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
	return nil
}

// catalogScan is how many repository names the catalog reads from the
// store at a time while filtering them.
const catalogScan = 500

// catalog serves GET /v2/_catalog: the repositories the principal may pull
// from, in pages.
func (h *Handler) catalog(w http.ResponseWriter, r *http.Request, p auth.Principal) *Error {
	n, last, e := pagination(r)
	if e != nil {
		return e
	}
	names := []string{}
	cursor, more := last, false
	for n > 0 {
		batch, err := h.reg.Repositories(r.Context(), cursor, catalogScan)
		if err != nil {
			return h.internal(r, "catalog", err)
		}
		for _, repo := range batch {
			if len(names) == n {
				more = true
				break
			}
			cursor = repo.Name
			if h.canPull(r, p, repo.Name) {
				names = append(names, repo.Name)
			}
		}
		if more || len(batch) < catalogScan {
			break
		}
	}
	if more {
		setNextLink(w, "/v2/_catalog", n, cursor)
	}
	return writeJSON(w, r, "application/json", struct {
		Repositories []string `json:"repositories"`
	}{names})
}

// tags serves GET /v2/<name>/tags/list.
func (h *Handler) tags(w http.ResponseWriter, r *http.Request, rt route) *Error {
	n, last, e := pagination(r)
	if e != nil {
		return e
	}
	limit := n + 1
	if n == 0 {
		limit = 1 // still tells an unknown repository apart
	}
	tags, err := h.reg.Tags(r.Context(), rt.name, last, limit)
	if err != nil {
		return h.storeError(r, "tags", err)
	}
	if tags == nil || n == 0 {
		tags = []string{}
	}
	if len(tags) > n {
		tags = tags[:n]
		setNextLink(w, "/v2/"+rt.name+"/tags/list", n, tags[n-1])
	}
	return writeJSON(w, r, "application/json", struct {
		Name string   `json:"name"`
		Tags []string `json:"tags"`
	}{rt.name, tags})
}

// referrers serves GET /v2/<name>/referrers/<digest>.
func (h *Handler) referrers(w http.ResponseWriter, r *http.Request, rt route) *Error {
	d, e := parseDigest(rt.ref)
	if e != nil {
		return e
	}
	artifactType := r.URL.Query().Get("artifactType")
	descs, err := h.reg.Referrers(r.Context(), rt.name, d.String(), artifactType)
	// The specification forbids 404 here (it would mean "no referrers
	// API"): an unknown repository has no referrers.
	if err != nil && !errors.Is(err, store.ErrRepositoryNotFound) {
		return h.storeError(r, "referrers", err)
	}
	idx := v1.Index{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: v1.MediaTypeImageIndex,
		Manifests: make([]v1.Descriptor, 0, len(descs)),
	}
	for _, d := range descs {
		idx.Manifests = append(idx.Manifests, v1.Descriptor{
			MediaType:    d.MediaType,
			Digest:       digest.Digest(d.Digest),
			Size:         d.Size,
			ArtifactType: d.ArtifactType,
			Annotations:  d.Annotations,
		})
	}
	if artifactType != "" {
		w.Header().Set("OCI-Filters-Applied", "artifactType")
	}
	return writeJSON(w, r, v1.MediaTypeImageIndex, idx)
}

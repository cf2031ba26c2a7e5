package registry

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/drydockhq/drydock/internal/store"
)

// getManifest serves GET and HEAD of a manifest by tag or digest.
func (h *Handler) getManifest(w http.ResponseWriter, r *http.Request, rt route) *Error {
	byTag := !isDigestRef(rt.ref)
	if byTag {
		if !ValidTag(rt.ref) {
			return newError(http.StatusBadRequest, CodeTagInvalid, "invalid tag %q", truncate(rt.ref))
		}
	} else if _, e := parseDigest(rt.ref); e != nil {
		return e
	}
	head := r.Method == http.MethodHead
	m, err := h.reg.Manifest(r.Context(), rt.name, rt.ref, byTag, !head)
	if err != nil {
		return h.storeError(r, "manifest", err)
	}
	hd := w.Header()
	hd.Set("Content-Type", m.MediaType)
	hd.Set("Content-Length", strconv.FormatInt(m.Size, 10))
	hd.Set("Docker-Content-Digest", m.Digest)
	hd.Set("ETag", `"`+m.Digest+`"`)
	w.WriteHeader(http.StatusOK)
	if head {
		return nil
	}
	_, _ = w.Write(m.Content)
	// Record the pull (coarsely: at most once per interval per manifest, so
	// pulls do not turn into a write each). The client has its manifest:
	// its hanging up must not cancel the record, nor a failed record the
	// pull.
	now := time.Now()
	if now.Sub(m.LastPulledAt) >= h.pullInterval {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 10*time.Second)
		defer cancel()
		if err := h.reg.RecordPullCoarse(ctx, m.RepositoryID, m.Digest, now, h.pullInterval); err != nil {
			h.log.Warn("record pull time", "repository", rt.name, "digest", m.Digest, "err", err)
		}
	}
	return nil
}

// putManifest serves PUT of a manifest by tag or by digest (then with
// optional ?tag= parameters).
func (h *Handler) putManifest(w http.ResponseWriter, r *http.Request, rt route) *Error {
	var tags []string
	var want digest.Digest
	if isDigestRef(rt.ref) {
		d, e := parseDigest(rt.ref)
		if e != nil {
			return e
		}
		want = d
	} else {
		if !ValidTag(rt.ref) {
			return newError(http.StatusBadRequest, CodeTagInvalid, "invalid tag %q", truncate(rt.ref))
		}
		tags = append(tags, rt.ref)
	}
	for _, t := range r.URL.Query()["tag"] {
		if !ValidTag(t) {
			return newError(http.StatusBadRequest, CodeTagInvalid, "invalid tag %q", truncate(t))
		}
		if !contains(tags, t) {
			tags = append(tags, t)
		}
	}
	if r.ContentLength > MaxManifestSize {
		return newError(http.StatusRequestEntityTooLarge, CodeSizeInvalid, "manifest larger than %d bytes", MaxManifestSize)
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxManifestSize+1))
	if err != nil {
		return newError(http.StatusBadRequest, CodeManifestInvalid, "reading manifest: %v", err)
	}
	if len(body) > MaxManifestSize {
		return newError(http.StatusRequestEntityTooLarge, CodeSizeInvalid, "manifest larger than %d bytes", MaxManifestSize)
	}
	alg := digest.Canonical
	if want != "" {
		alg = want.Algorithm()
	}
	d := manifestDigest(body, alg)
	if want != "" && d != want {
		return newError(http.StatusBadRequest, CodeDigestInvalid, "manifest content does not match digest %s", want)
	}
	info, e := parseManifest(body, r.Header.Get("Content-Type"))
	if e != nil {
		return e
	}
	repo, e := h.repoForPush(r, rt.name)
	if e != nil {
		return e
	}
	err = h.reg.PutManifest(r.Context(), store.ManifestPut{
		RepositoryID: repo.ID,
		Repository:   rt.name,
		Digest:       d.String(),
		MediaType:    info.mediaType,
		ArtifactType: info.artifactType,
		Content:      body,
		Subject:      info.subject,
		Annotations:  info.annotations,
		Blobs:        info.blobs,
		Manifests:    info.manifests,
		Tags:         tags,
	}, time.Now())
	var re *store.RefError
	switch {
	case errors.As(err, &re) && re.SizeMismatch:
		return newError(http.StatusBadRequest, CodeManifestInvalid, "blob %s has another size than the manifest states", re.Digest).
			withDetail(map[string]string{"digest": re.Digest})
	case errors.As(err, &re) && re.Kind == "manifest":
		return newError(http.StatusBadRequest, CodeManifestBlobUnknown, "manifest %s referenced by the index is not in the repository", re.Digest).
			withDetail(map[string]string{"digest": re.Digest})
	case errors.As(err, &re):
		return newError(http.StatusBadRequest, CodeManifestBlobUnknown, "blob %s referenced by the manifest is not in the repository", re.Digest).
			withDetail(map[string]string{"digest": re.Digest})
	case err != nil:
		return h.internal(r, "put manifest", err)
	}
	hd := w.Header()
	hd.Set("Location", "/v2/"+rt.name+"/manifests/"+d.String())
	hd.Set("Docker-Content-Digest", d.String())
	if info.subject != "" {
		hd.Set("OCI-Subject", info.subject)
	}
	if want != "" && len(tags) > 0 {
		hd.Set("OCI-Tag", strings.Join(tags, ","))
	}
	hd.Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
	return nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// deleteManifest serves DELETE of a manifest by digest (the manifest and
// its tags) or by tag (the tag only).
func (h *Handler) deleteManifest(w http.ResponseWriter, r *http.Request, rt route) *Error {
	var err error
	if isDigestRef(rt.ref) {
		d, e := parseDigest(rt.ref)
		if e != nil {
			return e
		}
		err = h.reg.DeleteManifest(r.Context(), rt.name, d.String())
	} else {
		if !ValidTag(rt.ref) {
			return newError(http.StatusBadRequest, CodeTagInvalid, "invalid tag %q", truncate(rt.ref))
		}
		err = h.reg.DeleteTag(r.Context(), rt.name, rt.ref)
	}
	if err != nil {
		return h.storeError(r, "delete manifest", err)
	}
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusAccepted)
	return nil
}

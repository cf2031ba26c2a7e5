package registry

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/drydockhq/drydock/internal/auth"
	"github.com/drydockhq/drydock/internal/blob"
	"github.com/drydockhq/drydock/internal/store"
)

// getBlob serves GET and HEAD of a blob, with Range support.
func (h *Handler) getBlob(w http.ResponseWriter, r *http.Request, rt route) *Error {
	d, e := parseDigest(rt.ref)
	if e != nil {
		return e
	}
	if _, err := h.reg.Blob(r.Context(), rt.name, d.String()); err != nil {
		return h.storeError(r, "blob", err)
	}
	f, err := h.blobs.Open(r.Context(), d)
	if errors.Is(err, blob.ErrNotFound) {
		// Linked but gone: never expected (links keep blobs alive); say
		// unknown rather than fail.
		h.log.Error("blob linked but missing from the blob store", "repository", rt.name, "digest", d)
		return newError(http.StatusNotFound, CodeBlobUnknown, "blob unknown to registry")
	}
	if err != nil {
		return h.internal(r, "open blob", err)
	}
	defer f.Close()
	hd := w.Header()
	hd.Set("Docker-Content-Digest", d.String())
	hd.Set("Content-Type", "application/octet-stream")
	hd.Set("ETag", `"`+d.String()+`"`)
	hd.Set("Cache-Control", "max-age=31536000")
	// ServeContent answers Range and HEAD requests, and hands an *os.File
	// to the connection with sendfile.
	http.ServeContent(w, r, "", time.Time{}, f)
	return nil
}

// deleteBlob removes a blob from a repository.
func (h *Handler) deleteBlob(w http.ResponseWriter, r *http.Request, rt route) *Error {
	d, e := parseDigest(rt.ref)
	if e != nil {
		return e
	}
	if err := h.reg.UnlinkBlob(r.Context(), rt.name, d.String()); err != nil {
		return h.storeError(r, "delete blob", err)
	}
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusAccepted)
	return nil
}

func uploadLocation(name, id string) string { return "/v2/" + name + "/blobs/uploads/" + id }

func blobLocation(name string, d digest.Digest) string { return "/v2/" + name + "/blobs/" + d.String() }

// rangeHeader is the Range value of an upload holding size bytes.
func rangeHeader(size int64) string {
	if size <= 0 {
		return "0-0"
	}
	return fmt.Sprintf("0-%d", size-1)
}

func blobCreated(w http.ResponseWriter, name string, d digest.Digest) {
	hd := w.Header()
	hd.Set("Location", blobLocation(name, d))
	hd.Set("Docker-Content-Digest", d.String())
	hd.Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
}

func uploadAccepted(w http.ResponseWriter, status int, name, id string, size int64) {
	hd := w.Header()
	hd.Set("Location", uploadLocation(name, id))
	hd.Set("Range", rangeHeader(size))
	hd.Set("Docker-Upload-UUID", id)
	hd.Set("Content-Length", "0")
	w.WriteHeader(status)
}

// startUpload serves POST /v2/<name>/blobs/uploads/: a mount (?mount=), a
// monolithic upload (?digest= with the body), or a new upload session.
func (h *Handler) startUpload(w http.ResponseWriter, r *http.Request, rt route) *Error {
	repo, e := h.repoForPush(r, rt.name)
	if e != nil {
		return e
	}
	ctx := r.Context()
	q := r.URL.Query()
	if m := q.Get("mount"); m != "" {
		d, e := parseDigest(m)
		if e != nil {
			return e
		}
		from := q.Get("from")
		mountable := true
		if from != "" {
			// Mounting from a repository the client may not read would leak
			// its blobs; fall back to a normal upload instead.
			mountable = ValidateName(from) == nil && h.allowed(r, from, auth.ActionPull)
		} else {
			// Without from, mount from a repository holding the blob that
			// the client may read, if there is one.
			var err error
			if from, err = h.readableSource(r, d); err != nil {
				return h.internal(r, "mount source", err)
			}
			mountable = from != ""
		}
		if mountable {
			_, err := h.reg.MountBlob(ctx, repo.ID, d.String(), from, time.Now())
			if err == nil {
				blobCreated(w, rt.name, d)
				return nil
			}
			if !errors.Is(err, store.ErrBlobNotFound) {
				return h.internal(r, "mount blob", err)
			}
		}
	}
	if dg := q.Get("digest"); dg != "" && q.Get("mount") == "" {
		d, e := parseDigest(dg)
		if e != nil {
			return e
		}
		return h.monolithic(w, r, rt.name, repo.ID, d)
	}
	id, err := h.blobs.NewUpload(ctx, uploadOwner(repo.ID))
	if err != nil {
		return h.internal(r, "new upload", err)
	}
	uploadAccepted(w, http.StatusAccepted, rt.name, id, 0)
	return nil
}

// maxMountSources bounds how many repositories holding a blob are tried as
// the source of a mount without from.
const maxMountSources = 16

// readableSource returns a repository that holds blob d and that the
// client may pull from, or "".
func (h *Handler) readableSource(r *http.Request, d digest.Digest) (string, error) {
	names, err := h.reg.RepositoriesWithBlob(r.Context(), d.String(), maxMountSources)
	if err != nil {
		return "", err
	}
	for _, n := range names {
		if h.allowed(r, n, auth.ActionPull) {
			return n, nil
		}
	}
	return "", nil
}

// monolithic stores a blob sent whole in the POST that starts its upload.
func (h *Handler) monolithic(w http.ResponseWriter, r *http.Request, name string, repoID int64, d digest.Digest) *Error {
	h.uploads.UploadStarted()
	defer h.uploads.UploadFinished()
	if h.tooLarge(0, r.ContentLength) {
		return h.sizeError()
	}
	ctx := r.Context()
	owner := uploadOwner(repoID)
	id, err := h.blobs.NewUpload(ctx, owner)
	if err != nil {
		return h.internal(r, "new upload", err)
	}
	// The session lives only for this request; the garbage collector
	// removes it if the process dies mid-way.
	defer h.blobs.DeleteUpload(ctx, owner, id)
	up, err := h.blobs.OpenUpload(ctx, owner, id)
	if err != nil {
		return h.internal(r, "open upload", err)
	}
	defer up.Close()
	if _, err := up.Append(ctx, h.bodyReader(w, r, -1, 0), d.Algorithm()); err != nil {
		return h.appendError(r, err)
	}
	return h.commit(w, r, name, repoID, up, d)
}

// uploadOwner is the owner the blob store keeps with an upload: the id of
// its repository (a repository deleted and created again gets a new id, so
// its old uploads do not carry over).
func uploadOwner(repoID int64) string { return strconv.FormatInt(repoID, 10) }

// commit verifies an upload against d, stores the blob and links it.
func (h *Handler) commit(w http.ResponseWriter, r *http.Request, name string, repoID int64, up blob.Upload, d digest.Digest) *Error {
	ctx := r.Context()
	_, err := up.Commit(ctx, d, func(info blob.Info) error {
		return h.reg.CommitBlob(ctx, repoID, d.String(), info.Size, info.ModTime)
	})
	if errors.Is(err, blob.ErrDigestMismatch) {
		return newError(http.StatusBadRequest, CodeDigestInvalid, "uploaded content does not match digest %s", d)
	}
	if err != nil {
		return h.internal(r, "commit blob", err)
	}
	blobCreated(w, name, d)
	return nil
}

// appendError answers a failed Append: the client's body ended early or
// broke off (the upload is unchanged).
func (h *Handler) appendError(r *http.Request, err error) *Error {
	if errors.Is(err, errBlobTooLarge) {
		return h.sizeError()
	}
	var se *blob.SourceError
	if errors.As(err, &se) {
		h.log.Debug("upload body incomplete", "path", r.URL.Path, "err", err)
		return newError(http.StatusBadRequest, CodeBlobUploadInvalid, "upload body incomplete: %v", se.Err)
	}
	return h.internal(r, "write upload", err)
}

var errUploadUnknown = &Error{Status: http.StatusNotFound, Code: CodeBlobUploadUnknown, Message: "blob upload unknown to registry"}

// openUpload checks that an upload belongs to the repository and opens it.
func (h *Handler) openUpload(r *http.Request, rt route) (int64, blob.Upload, *Error) {
	repo, err := h.reg.Repository(r.Context(), rt.name)
	if err != nil {
		return 0, nil, h.storeError(r, "upload", err)
	}
	up, err := h.blobs.OpenUpload(r.Context(), uploadOwner(repo.ID), rt.upload)
	switch {
	case errors.Is(err, blob.ErrUploadNotFound):
		return 0, nil, newError(http.StatusNotFound, CodeBlobUploadUnknown, "blob upload unknown to registry")
	case errors.Is(err, blob.ErrUploadBusy):
		return 0, nil, newError(http.StatusConflict, CodeBlobUploadInvalid, "another request is writing to this upload")
	case err != nil:
		return 0, nil, h.internal(r, "open upload", err)
	}
	return repo.ID, up, nil
}

// statUpload returns an upload of the repository, without opening it.
func (h *Handler) statUpload(r *http.Request, rt route) (blob.Info, *Error) {
	repo, err := h.reg.Repository(r.Context(), rt.name)
	if err != nil {
		return blob.Info{}, h.storeError(r, "upload", err)
	}
	info, err := h.blobs.StatUpload(r.Context(), uploadOwner(repo.ID), rt.upload)
	if errors.Is(err, blob.ErrUploadNotFound) {
		return blob.Info{}, errUploadUnknown
	}
	if err != nil {
		return blob.Info{}, h.internal(r, "stat upload", err)
	}
	return info, nil
}

// uploadStatus serves GET of an upload: how many bytes it holds.
func (h *Handler) uploadStatus(w http.ResponseWriter, r *http.Request, rt route) *Error {
	info, e := h.statUpload(r, rt)
	if e != nil {
		return e
	}
	uploadAccepted(w, http.StatusNoContent, rt.name, rt.upload, info.Size)
	return nil
}

// errBlobTooLarge fails the read of a body that takes an upload past the
// maximum blob size.
var errBlobTooLarge = errors.New("blob larger than the maximum size")

// tooLarge reports whether an upload holding have bytes would pass the
// maximum blob size with n more (n < 0: not known yet).
func (h *Handler) tooLarge(have, n int64) bool {
	return h.maxBlobSize > 0 && n > h.maxBlobSize-have
}

func (h *Handler) sizeError() *Error {
	return newError(http.StatusRequestEntityTooLarge, CodeSizeInvalid, "blob larger than the maximum of %d bytes", h.maxBlobSize)
}

// appendChunk appends the request body to an upload, honouring
// Content-Range: a chunk must start where the upload ends. A chunk that
// takes the upload past the maximum blob size removes the upload.
func (h *Handler) appendChunk(w http.ResponseWriter, r *http.Request, rt route, repoID int64, up blob.Upload, alg digest.Algorithm) *Error {
	e := h.appendBody(w, r, rt, up, alg)
	if e != nil && e.Status == http.StatusRequestEntityTooLarge {
		// The upload is held, so no other request sees it half removed.
		if err := h.blobs.DeleteUpload(r.Context(), uploadOwner(repoID), rt.upload); err != nil {
			return h.internal(r, "delete oversized upload", err)
		}
	}
	return e
}

func (h *Handler) appendBody(w http.ResponseWriter, r *http.Request, rt route, up blob.Upload, alg digest.Algorithm) *Error {
	want := int64(-1)
	if cr := r.Header.Get("Content-Range"); cr != "" {
		start, end, ok := parseContentRange(cr)
		if !ok {
			return newError(http.StatusBadRequest, CodeBlobUploadInvalid, "invalid Content-Range %q", truncate(cr))
		}
		if start != up.Size() {
			w.Header().Set("Location", uploadLocation(rt.name, rt.upload))
			w.Header().Set("Range", rangeHeader(up.Size()))
			w.Header().Set("Docker-Upload-UUID", rt.upload)
			return newError(http.StatusRequestedRangeNotSatisfiable, CodeRangeInvalid,
				"chunk starts at %d but the upload holds %d bytes", start, up.Size())
		}
		want = end - start + 1
		if r.ContentLength >= 0 && r.ContentLength != want {
			return newError(http.StatusBadRequest, CodeSizeInvalid, "Content-Length %d does not match Content-Range %q", r.ContentLength, truncate(cr))
		}
	}
	if h.tooLarge(up.Size(), max(want, r.ContentLength)) {
		return h.sizeError()
	}
	if _, err := up.Append(r.Context(), h.bodyReader(w, r, want, up.Size()), alg); err != nil {
		return h.appendError(r, err)
	}
	return nil
}

// patchUpload serves PATCH: a chunk (with Content-Range) or a stream.
func (h *Handler) patchUpload(w http.ResponseWriter, r *http.Request, rt route) *Error {
	h.uploads.UploadStarted()
	defer h.uploads.UploadFinished()
	repoID, up, e := h.openUpload(r, rt)
	if e != nil {
		return e
	}
	defer up.Close()
	if e := h.appendChunk(w, r, rt, repoID, up, ""); e != nil {
		return e
	}
	uploadAccepted(w, http.StatusAccepted, rt.name, rt.upload, up.Size())
	return nil
}

// putUpload serves PUT: an optional last chunk, then the commit under
// ?digest=.
func (h *Handler) putUpload(w http.ResponseWriter, r *http.Request, rt route) *Error {
	h.uploads.UploadStarted()
	defer h.uploads.UploadFinished()
	d, e := parseDigest(r.URL.Query().Get("digest"))
	if e != nil {
		return e
	}
	repoID, up, e := h.openUpload(r, rt)
	if e != nil {
		return e
	}
	defer up.Close()
	owner := uploadOwner(repoID)
	if r.ContentLength != 0 || r.Header.Get("Content-Range") != "" {
		if e := h.appendChunk(w, r, rt, repoID, up, d.Algorithm()); e != nil {
			return e
		}
	}
	e = h.commit(w, r, rt.name, repoID, up, d)
	if e != nil && e.Code == CodeDigestInvalid {
		// The session is spent: a client retries with a new upload.
		_ = h.blobs.DeleteUpload(r.Context(), owner, rt.upload)
	}
	return e
}

// cancelUpload serves DELETE of an upload.
func (h *Handler) cancelUpload(w http.ResponseWriter, r *http.Request, rt route) *Error {
	info, e := h.statUpload(r, rt)
	if e != nil {
		return e
	}
	if err := h.blobs.DeleteUpload(r.Context(), info.Owner, rt.upload); err != nil {
		return h.internal(r, "delete upload", err)
	}
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// parseContentRange parses an upload chunk's range "start-end" (inclusive;
// a "bytes " or "bytes=" prefix is tolerated).
func parseContentRange(s string) (start, end int64, ok bool) {
	s = strings.TrimSpace(s)
	s = strings.TrimPrefix(s, "bytes")
	s = strings.TrimLeft(s, " =")
	if i := strings.IndexByte(s, '/'); i >= 0 {
		s = s[:i]
	}
	a, b, found := strings.Cut(s, "-")
	if !found {
		return 0, 0, false
	}
	start, err1 := strconv.ParseInt(a, 10, 64)
	end, err2 := strconv.ParseInt(b, 10, 64)
	if err1 != nil || err2 != nil || start < 0 || end < start {
		return 0, 0, false
	}
	return start, end, true
}

// bodyReader returns the request body, limited to exactly want bytes when
// want >= 0: a body that ends earlier fails with io.ErrUnexpectedEOF, so
// the upload is rolled back. A client that sends nothing for the idle
// timeout fails the read, so a stalled upload does not hold its lock. A
// body that takes an upload holding have bytes past the maximum blob size
// fails with errBlobTooLarge.
func (h *Handler) bodyReader(w http.ResponseWriter, r *http.Request, want, have int64) io.Reader {
	var body io.Reader = &idleReader{r: r.Body, rc: http.NewResponseController(w), idle: h.idleTimeout}
	if h.maxBlobSize > 0 {
		body = &capReader{r: body, left: h.maxBlobSize - have}
	}
	if want < 0 {
		return body
	}
	return &exactReader{r: body, left: want}
}

// capReader fails with errBlobTooLarge once its reader yields more than
// left bytes.
type capReader struct {
	r    io.Reader
	left int64
}

func (c *capReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.left -= int64(n)
	if c.left < 0 {
		return n, errBlobTooLarge
	}
	return n, err
}

// idleReader moves the connection's read deadline before each read.
type idleReader struct {
	r    io.Reader
	rc   *http.ResponseController
	idle time.Duration
	// unsupported is set when the connection has no deadlines (then reads
	// are not bounded).
	unsupported bool
}

func (i *idleReader) Read(p []byte) (int, error) {
	if !i.unsupported {
		if err := i.rc.SetReadDeadline(time.Now().Add(i.idle)); err != nil {
			i.unsupported = true
		}
	}
	return i.r.Read(p)
}

type exactReader struct {
	r    io.Reader
	left int64
}

func (e *exactReader) Read(p []byte) (int, error) {
	if e.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > e.left {
		p = p[:e.left]
	}
	n, err := e.r.Read(p)
	e.left -= int64(n)
	if err == io.EOF {
		if e.left > 0 {
			return n, io.ErrUnexpectedEOF
		}
		return n, io.EOF
	}
	return n, err
}

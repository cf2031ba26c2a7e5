// Package blob stores content-addressed blobs (image layers, configs) and the
// uploads that become them. A blob becomes visible under its digest only
// after its bytes were verified against that digest and made durable, so a
// reader never sees partial or wrong content.
//
// Store is the interface the registry uses; FS implements it on a local
// filesystem. An S3-compatible implementation can follow the same contract.
package blob

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/opencontainers/go-digest"
)

// Errors returned by stores.
var (
	// ErrNotFound means no blob with that digest is stored.
	ErrNotFound = errors.New("blob: not found")
	// ErrUploadNotFound means the upload does not exist (never created,
	// completed, cancelled or expired).
	ErrUploadNotFound = errors.New("blob: upload not found")
	// ErrUploadBusy means another request is writing to the same upload.
	ErrUploadBusy = errors.New("blob: upload is busy")
	// ErrDigestMismatch means the uploaded bytes do not hash to the digest
	// the client claimed.
	ErrDigestMismatch = errors.New("blob: content does not match digest")
	// ErrModified means a blob was not deleted because it was written more
	// recently than the caller's cut-off.
	ErrModified = errors.New("blob: modified after the cut-off")
)

// SourceError wraps a failure to read the bytes given to Upload.Append (a
// client that went away, a truncated body), as opposed to a failure of the
// store itself.
type SourceError struct{ Err error }

func (e *SourceError) Error() string { return "blob: reading upload data: " + e.Err.Error() }

// Unwrap returns the read error.
func (e *SourceError) Unwrap() error { return e.Err }

// Info describes a stored blob or upload.
type Info struct {
	Digest  digest.Digest
	Size    int64
	ModTime time.Time
	// Owner is set for uploads only.
	Owner string
}

// Reader reads a stored blob. It supports seeking, so it can serve HTTP
// Range requests.
type Reader interface {
	io.ReadSeekCloser
}

// Store holds blobs by digest and the uploads that produce them.
type Store interface {
	// Stat returns a blob's size, or ErrNotFound.
	Stat(ctx context.Context, d digest.Digest) (Info, error)
	// Open returns a reader of a blob, or ErrNotFound.
	Open(ctx context.Context, d digest.Digest) (Reader, error)
	// Delete removes a blob unless it was modified after notAfter (then it
	// returns ErrModified) or stillGarbage, called while no commit can
	// run, returns false (then it returns ErrModified too). A missing blob
	// is not an error.
	Delete(ctx context.Context, d digest.Digest, notAfter time.Time, stillGarbage func() (bool, error)) error
	// Walk calls fn for every stored blob.
	Walk(ctx context.Context, fn func(Info) error) error

	// NewUpload starts an empty upload belonging to owner (the registry
	// uses the repository's id; letters, digits, '-' and '_') and returns
	// its id. The upload session lives with its bytes: nothing else records
	// it. An upload is addressed by owner and id together, so an id used
	// with another owner is simply not found.
	NewUpload(ctx context.Context, owner string) (string, error)
	// OpenUpload opens an upload for writing. Only one caller may hold an
	// upload open at a time; others get ErrUploadBusy. The caller must
	// Close it.
	OpenUpload(ctx context.Context, owner, id string) (Upload, error)
	// StatUpload returns how many bytes an upload holds, when it was last
	// written and its owner, or ErrUploadNotFound.
	StatUpload(ctx context.Context, owner, id string) (Info, error)
	// DeleteUpload removes an upload and its data. A missing upload is not
	// an error.
	DeleteUpload(ctx context.Context, owner, id string) error
	// WalkUploads calls fn for every upload with its id and last write.
	WalkUploads(ctx context.Context, fn func(owner, id string, info Info) error) error
}

// Upload is an open upload: bytes appended in order, then committed under
// the digest they must hash to.
type Upload interface {
	// ID is the upload's identifier.
	ID() string
	// Size is the number of bytes received so far.
	Size() int64
	// Append copies r to the end of the upload. If copying fails part way
	// (a client that disconnects, a truncated body), the upload is restored
	// to its size before the call, so a failed Append changes nothing.
	// alg, when set and the upload is still empty, chooses the hash computed
	// while the bytes stream (the digest algorithm of a later Commit).
	Append(ctx context.Context, r io.Reader, alg digest.Algorithm) (int64, error)
	// Commit verifies the upload's bytes against d and, if they match,
	// stores them durably as blob d, calls record (if not nil) to record
	// the blob elsewhere, and removes the upload. record runs while no
	// Delete can run, so a garbage collector that asks the record before
	// deleting never removes a blob being committed. It returns
	// ErrDigestMismatch, leaving the upload in place, if the bytes do not
	// match, and record's error if it fails (the blob then stays stored,
	// unrecorded, for the garbage collector).
	Commit(ctx context.Context, d digest.Digest, record func(Info) error) (Info, error)
	// Close releases the upload for other writers. It does not delete it.
	Close() error
}

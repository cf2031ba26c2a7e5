package blob

import (
	"context"
	"crypto/rand"
	"encoding"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"

	// Register the hash functions go-digest looks up.
	_ "crypto/sha256"
	_ "crypto/sha512"
)

// FS is a Store on a local filesystem. Its layout under the root is
//
//	blobs/<algorithm>/<first two hex digits>/<hex>   committed blobs
//	uploads/<owner>/<id>                             bytes received so far
//	uploads/<owner>/<id>.hash                        hash state after them
//	gc.lock                                          commit/delete lock
//
// A blob is written as its upload file, fsynced, and renamed into
// blobs/ (then the directory is fsynced), so a crash at any point leaves
// either no blob or the whole verified blob. Commits hold a shared lock on
// gc.lock and Delete an exclusive one, so a garbage collector can never
// remove a blob between a concurrent commit's rename and its metadata
// update seeing it.
type FS struct {
	root string
	bufs sync.Pool
}

// Upload data moves in chunks of bufSize bytes, pipeDepth of them in
// flight per upload: large enough that the per-call overhead of reads,
// writes and hashing is negligible, small enough that a chunk is still in
// the CPU's cache when it is hashed and copied to the page cache.
const (
	bufSize   = 256 << 10
	pipeDepth = 4
)

// writebackUnit is how many bytes an upload writes before it asks the
// kernel to start writing them to the disk (where the kernel can be asked).
const writebackUnit = 8 << 20

// NewFS returns a filesystem store rooted at dir, creating it if needed.
func NewFS(dir string) (*FS, error) {
	for _, d := range []string{dir, filepath.Join(dir, "blobs"), filepath.Join(dir, "uploads")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("blob: create %s: %w", d, err)
		}
	}
	f, err := os.OpenFile(filepath.Join(dir, "gc.lock"), os.O_CREATE|os.O_RDONLY, 0o600)
	if err != nil {
		return nil, fmt.Errorf("blob: create lock file: %w", err)
	}
	f.Close()
	s := &FS{root: dir}
	s.bufs.New = func() any { b := make([]byte, bufSize); return &b }
	return s, nil
}

// Root returns the directory the store lives in.
func (s *FS) Root() string { return s.root }

func (s *FS) blobPath(d digest.Digest) (string, error) {
	if err := d.Validate(); err != nil {
		return "", fmt.Errorf("blob: %w", err)
	}
	h := d.Encoded()
	return filepath.Join(s.root, "blobs", string(d.Algorithm()), h[:2], h), nil
}

// Stat implements Store.
func (s *FS) Stat(_ context.Context, d digest.Digest) (Info, error) {
	p, err := s.blobPath(d)
	if err != nil {
		return Info{}, err
	}
	fi, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return Info{}, ErrNotFound
	}
	if err != nil {
		return Info{}, fmt.Errorf("blob: stat %s: %w", d, err)
	}
	return Info{Digest: d, Size: fi.Size(), ModTime: fi.ModTime()}, nil
}

// Open implements Store. The reader is an *os.File, so serving it over HTTP
// uses sendfile.
func (s *FS) Open(_ context.Context, d digest.Digest) (Reader, error) {
	p, err := s.blobPath(d)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("blob: open %s: %w", d, err)
	}
	return f, nil
}

// lock takes the commit/delete lock, shared or exclusive, and returns the
// function that releases it.
func (s *FS) lock(how int) (func(), error) {
	f, err := os.Open(filepath.Join(s.root, "gc.lock"))
	if err != nil {
		return nil, fmt.Errorf("blob: open lock: %w", err)
	}
	for {
		err = unix.Flock(int(f.Fd()), how)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("blob: lock: %w", err)
	}
	return func() { f.Close() }, nil // closing the file releases the lock
}

// Delete implements Store.
func (s *FS) Delete(_ context.Context, d digest.Digest, notAfter time.Time, stillGarbage func() (bool, error)) error {
	p, err := s.blobPath(d)
	if err != nil {
		return err
	}
	unlock, err := s.lock(unix.LOCK_EX)
	if err != nil {
		return err
	}
	defer unlock()
	fi, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("blob: stat %s: %w", d, err)
	}
	if fi.ModTime().After(notAfter) {
		return ErrModified
	}
	if stillGarbage != nil {
		ok, err := stillGarbage()
		if err != nil {
			return err
		}
		if !ok {
			return ErrModified
		}
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("blob: delete %s: %w", d, err)
	}
	return nil
}

// Walk implements Store.
func (s *FS) Walk(ctx context.Context, fn func(Info) error) error {
	base := filepath.Join(s.root, "blobs")
	return filepath.WalkDir(base, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if de.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(base, p)
		if err != nil {
			return err
		}
		parts := strings.Split(filepath.ToSlash(rel), "/")
		if len(parts) != 3 {
			return nil
		}
		d := digest.NewDigestFromEncoded(digest.Algorithm(parts[0]), parts[2])
		if d.Validate() != nil || !strings.HasPrefix(parts[2], parts[1]) {
			return nil // not a blob of ours
		}
		fi, err := de.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		return fn(Info{Digest: d, Size: fi.Size(), ModTime: fi.ModTime()})
	})
}

func validUploadID(id string) bool {
	if len(id) != 32 {
		return false
	}
	_, err := hex.DecodeString(id)
	return err == nil && strings.ToLower(id) == id
}

// validOwner accepts owners that are safe as one path component.
func validOwner(owner string) bool {
	if owner == "" || len(owner) > 64 {
		return false
	}
	for _, c := range owner {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// uploadPath returns the data file of an upload; its hash state is beside
// it with the suffix ".hash".
func (s *FS) uploadPath(owner, id string) (string, error) {
	if !validOwner(owner) || !validUploadID(id) {
		return "", ErrUploadNotFound
	}
	return filepath.Join(s.root, "uploads", owner, id), nil
}

// NewUpload implements Store.
func (s *FS) NewUpload(_ context.Context, owner string) (string, error) {
	if !validOwner(owner) {
		return "", fmt.Errorf("blob: invalid upload owner %q", owner)
	}
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("blob: upload id: %w", err)
	}
	id := hex.EncodeToString(b[:])
	p, _ := s.uploadPath(owner, id)
	// One file per upload, in a directory per owner: creating files is what
	// small pushes spend their time on. Not fsynced: an upload becomes
	// durable only when committed.
	f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if errors.Is(err, fs.ErrNotExist) {
		if err = os.MkdirAll(filepath.Dir(p), 0o700); err == nil {
			f, err = os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		}
	}
	if err != nil {
		return "", fmt.Errorf("blob: create upload: %w", err)
	}
	f.Close()
	return id, nil
}

// StatUpload implements Store.
func (s *FS) StatUpload(_ context.Context, owner, id string) (Info, error) {
	p, err := s.uploadPath(owner, id)
	if err != nil {
		return Info{}, err
	}
	fi, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return Info{}, ErrUploadNotFound
	}
	if err != nil {
		return Info{}, fmt.Errorf("blob: stat upload: %w", err)
	}
	return Info{Size: fi.Size(), ModTime: fi.ModTime(), Owner: owner}, nil
}

// DeleteUpload implements Store.
func (s *FS) DeleteUpload(_ context.Context, owner, id string) error {
	p, err := s.uploadPath(owner, id)
	if err != nil {
		return nil
	}
	for _, f := range []string{p, p + ".hash"} {
		if err := os.Remove(f); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("blob: delete upload: %w", err)
		}
	}
	return nil
}

// WalkUploads implements Store.
func (s *FS) WalkUploads(ctx context.Context, fn func(owner, id string, info Info) error) error {
	base := filepath.Join(s.root, "uploads")
	owners, err := os.ReadDir(base)
	if err != nil {
		return fmt.Errorf("blob: list uploads: %w", err)
	}
	for _, o := range owners {
		if !o.IsDir() || !validOwner(o.Name()) {
			continue
		}
		entries, err := os.ReadDir(filepath.Join(base, o.Name()))
		if err != nil {
			continue
		}
		for _, e := range entries {
			if err := ctx.Err(); err != nil {
				return err
			}
			if e.IsDir() || !validUploadID(e.Name()) {
				continue
			}
			fi, err := e.Info()
			if err != nil {
				continue
			}
			if err := fn(o.Name(), e.Name(), Info{Size: fi.Size(), ModTime: fi.ModTime(), Owner: o.Name()}); err != nil {
				return err
			}
		}
	}
	return nil
}

// OpenUpload implements Store.
func (s *FS) OpenUpload(_ context.Context, owner, id string) (Upload, error) {
	p, err := s.uploadPath(owner, id)
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrUploadNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("blob: open upload: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, ErrUploadBusy
		}
		return nil, fmt.Errorf("blob: lock upload: %w", err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		f.Close()
		return nil, fmt.Errorf("blob: stat upload: %w", err)
	}
	if st.Nlink == 0 {
		// Committed or deleted by whoever held it before us.
		f.Close()
		return nil, ErrUploadNotFound
	}
	return &fsUpload{s: s, id: id, path: p, f: f, size: st.Size, owner: owner}, nil
}

// fsUpload is an open upload of FS.
type fsUpload struct {
	s     *FS
	id    string
	path  string
	f     *os.File
	size  int64
	owner string
	// dirty: bytes appended since the hash state was saved; committed: the
	// data file is now a blob.
	dirty, committed bool
	// alg and h hash the first size bytes once loaded (h nil: not loaded).
	alg digest.Algorithm
	h   hash.Hash
}

func (u *fsUpload) ID() string  { return u.id }
func (u *fsUpload) Size() int64 { return u.size }

// stateMinSize is the upload size from which Close saves the hash state:
// below it, hashing the bytes again (from the page cache) at the next
// request costs less than creating the state file.
const stateMinSize = 8 << 20

// Close saves the hash state for the next request that appends (a PATCH
// followed by more), then releases the upload.
func (u *fsUpload) Close() error {
	if u.dirty && !u.committed && u.h != nil && u.size >= stateMinSize {
		u.saveState()
	}
	return u.f.Close()
}

// hashState is the file format of hashstate: the byte count it covers, the
// algorithm name, and the marshalled hash.
func (u *fsUpload) saveState() {
	m, ok := u.h.(encoding.BinaryMarshaler)
	if !ok {
		return
	}
	st, err := m.MarshalBinary()
	if err != nil {
		return
	}
	buf := binary.BigEndian.AppendUint64(nil, uint64(u.size))
	buf = append(buf, byte(len(u.alg)))
	buf = append(buf, u.alg...)
	buf = append(buf, st...)
	// Not fsynced: a torn or stale state is detected on load (wrong size or
	// undecodable) and the hash is recomputed from the data instead.
	_ = os.WriteFile(u.path+".hash", buf, 0o600)
}

// loadState restores the hash of the bytes so far from hashstate, or
// recomputes it from the data. want is the algorithm needed; "" accepts
// whichever the upload has been hashing (sha256 when it must start over).
func (u *fsUpload) loadState(want digest.Algorithm) error {
	if want != "" && !want.Available() {
		return fmt.Errorf("blob: %w", digest.ErrDigestUnsupported)
	}
	if u.h != nil && (want == "" || u.alg == want) {
		return nil
	}
	if u.h == nil {
		if b, err := os.ReadFile(u.path + ".hash"); err == nil && len(b) > 9 {
			n := int64(binary.BigEndian.Uint64(b))
			l := int(b[8])
			if n == u.size && len(b) > 9+l {
				alg := digest.Algorithm(b[9 : 9+l])
				if (want == "" || alg == want) && alg.Available() {
					h := alg.Hash()
					if um, ok := h.(encoding.BinaryUnmarshaler); ok && um.UnmarshalBinary(b[9+l:]) == nil {
						u.h, u.alg = h, alg
						return nil
					}
				}
			}
		}
	}
	if want == "" {
		want = digest.SHA256
	}
	h := want.Hash()
	if u.size > 0 {
		bp := u.s.bufs.Get().(*[]byte)
		defer u.s.bufs.Put(bp)
		if _, err := io.CopyBuffer(h, io.NewSectionReader(u.f, 0, u.size), *bp); err != nil {
			return fmt.Errorf("blob: rehash upload: %w", err)
		}
	}
	u.h, u.alg = h, want
	return nil
}

// Append implements Upload.
func (u *fsUpload) Append(_ context.Context, r io.Reader, alg digest.Algorithm) (int64, error) {
	if u.size > 0 || (alg != "" && !alg.Available()) {
		alg = "" // keep whatever the upload has been hashing
	}
	if err := u.loadState(alg); err != nil {
		return 0, err
	}
	start := u.size
	var saved []byte
	if m, ok := u.h.(encoding.BinaryMarshaler); ok {
		saved, _ = m.MarshalBinary()
	}
	n, err := u.copy(r, start)
	if err != nil {
		// Undo: drop the partial bytes and restore the hash.
		_ = u.f.Truncate(start)
		u.size = start
		h := u.alg.Hash()
		if um, ok := h.(encoding.BinaryUnmarshaler); ok && saved != nil && um.UnmarshalBinary(saved) == nil {
			u.h = h
		} else {
			u.h = nil
		}
		return 0, err
	}
	u.size += n
	u.dirty = true
	return n, nil
}

// copy writes r at offset off, hashing as it goes. The caller's goroutine
// reads the source and hashes it; a writer goroutine copies the chunks
// already hashed into the file and starts their write-back to the disk, so
// the network, the hash, the page cache and the disk work at the same time
// and the commit's fsync finds little left to write.
func (u *fsUpload) copy(r io.Reader, off int64) (int64, error) {
	var (
		free   = make(chan *[]byte, pipeDepth)
		full   = make(chan chunk, pipeDepth)
		werr   = make(chan error, 1)
		failed atomic.Bool
	)
	for range pipeDepth {
		free <- u.s.bufs.Get().(*[]byte)
	}
	go func() {
		werr <- u.writeChunks(full, free, off, &failed)
	}()
	var (
		n    int64
		rerr error
	)
	for rerr == nil && !failed.Load() {
		bp := <-free
		var m int
		m, rerr = fill(r, *bp)
		if m == 0 {
			free <- bp
			continue
		}
		u.h.Write((*bp)[:m])
		n += int64(m)
		full <- chunk{bp, m}
	}
	close(full)
	err := <-werr
	for range pipeDepth {
		u.s.bufs.Put(<-free)
	}
	switch {
	case err != nil:
		return n, err
	case rerr == nil, rerr == io.EOF:
		return n, nil
	default:
		return n, &SourceError{Err: rerr}
	}
}

// chunk is the first n bytes of a pooled buffer.
type chunk struct {
	buf *[]byte
	n   int
}

// writeChunks writes the chunks from full to the file from offset off on,
// giving each buffer back to free. After a failed write it sets failed,
// drains full without writing and returns the error.
func (u *fsUpload) writeChunks(full <-chan chunk, free chan<- *[]byte, off int64, failed *atomic.Bool) error {
	var err error
	flushed := off // write-back was started for the bytes before flushed
	for c := range full {
		if err == nil {
			if _, werr := u.f.WriteAt((*c.buf)[:c.n], off); werr != nil {
				err = fmt.Errorf("blob: write upload: %w", werr)
				failed.Store(true)
			}
			off += int64(c.n)
			if off-flushed >= writebackUnit {
				startWriteback(u.f, flushed, off-flushed)
				flushed = off
			}
		}
		free <- c.buf
	}
	return err
}

// fill reads from r until buf is full or r fails; unlike io.ReadFull it
// passes on the reader's own error, so a clean io.EOF is told from a body
// that broke off (io.ErrUnexpectedEOF from net/http).
func fill(r io.Reader, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := r.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// Commit implements Upload.
func (u *fsUpload) Commit(_ context.Context, d digest.Digest, record func(Info) error) (Info, error) {
	if err := d.Validate(); err != nil {
		return Info{}, fmt.Errorf("blob: %w", err)
	}
	if err := u.loadState(d.Algorithm()); err != nil {
		return Info{}, err
	}
	if got := digest.NewDigest(u.alg, u.h); got != d {
		return Info{}, ErrDigestMismatch
	}
	// The blob's modification time is its commit time: a garbage collector
	// never removes a blob committed within its safety window, however long
	// ago its bytes were uploaded.
	now := time.Now()
	if err := os.Chtimes(u.path, now, now); err != nil {
		return Info{}, fmt.Errorf("blob: touch upload: %w", err)
	}
	if err := u.f.Sync(); err != nil {
		return Info{}, fmt.Errorf("blob: sync upload: %w", err)
	}
	final, _ := u.s.blobPath(d)
	dir := filepath.Dir(final)
	_, statErr := os.Stat(dir)
	if statErr != nil {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return Info{}, fmt.Errorf("blob: create %s: %w", dir, err)
		}
	}
	unlock, err := u.s.lock(unix.LOCK_SH)
	if err != nil {
		return Info{}, err
	}
	info := Info{Digest: d, Size: u.size, ModTime: now}
	err = os.Rename(u.path, final)
	if err == nil {
		err = syncDir(dir)
		if err == nil && statErr != nil {
			err = syncDir(filepath.Dir(dir))
		}
	}
	if err != nil {
		unlock()
		return Info{}, fmt.Errorf("blob: store %s: %w", d, err)
	}
	if record != nil {
		err = record(info)
	}
	unlock()
	u.committed = true
	_ = os.Remove(u.path + ".hash")
	if err != nil {
		return Info{}, err
	}
	return info, nil
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

package blob

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"testing"
	"testing/iotest"
	"time"

	"github.com/opencontainers/go-digest"
)

type failingReader struct {
	data []byte
	err  error
}

func (f *failingReader) Read(p []byte) (int, error) {
	if len(f.data) == 0 {
		return 0, f.err
	}
	n := copy(p, f.data)
	f.data = f.data[n:]
	return n, nil
}

func TestUploadAcrossRequests(t *testing.T) {
	ctx := context.Background()
	for _, alg := range []digest.Algorithm{digest.SHA256, digest.SHA512} {
		t.Run(string(alg), func(t *testing.T) {
			s, err := NewFS(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			data := bytes.Repeat([]byte("drydock"), 300000)
			d := alg.FromBytes(data)
			id, err := s.NewUpload(ctx, "7")
			if err != nil {
				t.Fatal(err)
			}
			// Three requests, each opening the upload anew; the middle one
			// breaks off and must leave nothing behind.
			up, _ := s.OpenUpload(ctx, "7", id)
			if _, err := up.Append(ctx, bytes.NewReader(data[:1000]), alg); err != nil {
				t.Fatal(err)
			}
			up.Close()
			up, _ = s.OpenUpload(ctx, "7", id)
			boom := errors.New("client went away")
			_, err = up.Append(ctx, &failingReader{data: data[1000:5000], err: boom}, "")
			var se *SourceError
			if !errors.As(err, &se) || !errors.Is(err, boom) {
				t.Fatalf("broken append: %v", err)
			}
			if up.Size() != 1000 {
				t.Fatalf("size after a broken append: %d", up.Size())
			}
			up.Close()
			if info, _ := s.StatUpload(ctx, "7", id); info.Size != 1000 {
				t.Fatalf("stored size after a broken append: %d", info.Size)
			}
			// Another owner does not see it; a second opener is refused.
			if _, err := s.OpenUpload(ctx, "8", id); !errors.Is(err, ErrUploadNotFound) {
				t.Fatalf("other owner: %v", err)
			}
			up, _ = s.OpenUpload(ctx, "7", id)
			if _, err := s.OpenUpload(ctx, "7", id); !errors.Is(err, ErrUploadBusy) {
				t.Fatalf("second opener: %v", err)
			}
			if _, err := up.Append(ctx, bytes.NewReader(data[1000:]), ""); err != nil {
				t.Fatal(err)
			}
			if _, err := up.Commit(ctx, alg.FromString("other"), nil); !errors.Is(err, ErrDigestMismatch) {
				t.Fatalf("wrong digest: %v", err)
			}
			if _, err := s.Stat(ctx, alg.FromString("other")); !errors.Is(err, ErrNotFound) {
				t.Fatalf("blob stored under a wrong digest: %v", err)
			}
			recorded := false
			info, err := up.Commit(ctx, d, func(Info) error { recorded = true; return nil })
			if err != nil || info.Size != int64(len(data)) || !recorded {
				t.Fatalf("commit: %+v %v recorded=%v", info, err, recorded)
			}
			up.Close()
			r, err := s.Open(ctx, d)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(r)
			r.Close()
			if !bytes.Equal(got, data) {
				t.Fatal("stored blob differs")
			}
			if _, err := s.StatUpload(ctx, "7", id); !errors.Is(err, ErrUploadNotFound) {
				t.Fatalf("upload after commit: %v", err)
			}
			n := 0
			_ = s.Walk(ctx, func(i Info) error {
				if i.Digest != d {
					t.Fatalf("walk found %s", i.Digest)
				}
				n++
				return nil
			})
			if n != 1 {
				t.Fatalf("walk found %d blobs", n)
			}
		})
	}
}

func TestStaleHashStateIsRecomputed(t *testing.T) {
	ctx := context.Background()
	s, _ := NewFS(t.TempDir())
	id, _ := s.NewUpload(ctx, "1")
	up, _ := s.OpenUpload(ctx, "1", id)
	up.Append(ctx, bytes.NewReader([]byte("hello ")), "")
	up.Close()
	// Bytes that reached the file without their hash state (a process
	// killed mid-append) must still count.
	p, _ := s.uploadPath("1", id)
	f, _ := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
	f.Write([]byte("wor"))
	f.Close()
	up, _ = s.OpenUpload(ctx, "1", id)
	defer up.Close()
	if up.Size() != 9 {
		t.Fatalf("size %d", up.Size())
	}
	up.Append(ctx, bytes.NewReader([]byte("ld")), "")
	if _, err := up.Commit(ctx, digest.FromString("hello world"), nil); err != nil {
		t.Fatalf("commit after stale state: %v", err)
	}
}

func TestDeleteRespectsCutoffAndCheck(t *testing.T) {
	ctx := context.Background()
	s, _ := NewFS(t.TempDir())
	id, _ := s.NewUpload(ctx, "1")
	up, _ := s.OpenUpload(ctx, "1", id)
	up.Append(ctx, bytes.NewReader([]byte("x")), "")
	d := digest.FromString("x")
	info, err := up.Commit(ctx, d, nil)
	up.Close()
	if err != nil {
		t.Fatal(err)
	}
	before := info.ModTime.Add(-time.Minute)
	if err := s.Delete(ctx, d, before, nil); !errors.Is(err, ErrModified) {
		t.Fatalf("delete of a blob newer than the cut-off: %v", err)
	}
	after := info.ModTime.Add(time.Minute)
	if err := s.Delete(ctx, d, after, func() (bool, error) { return false, nil }); !errors.Is(err, ErrModified) {
		t.Fatalf("delete vetoed by the check: %v", err)
	}
	if err := s.Delete(ctx, d, after, func() (bool, error) { return true, nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Stat(ctx, d); !errors.Is(err, ErrNotFound) {
		t.Fatalf("after delete: %v", err)
	}
	if err := s.Delete(ctx, d, after, nil); err != nil {
		t.Fatalf("deleting a missing blob: %v", err)
	}
	for _, bad := range []string{"../x", "", "a/b"} {
		if _, err := s.NewUpload(ctx, bad); err == nil {
			t.Fatalf("owner %q accepted", bad)
		}
	}
	if _, err := s.OpenUpload(ctx, "1", "../../blobs"); !errors.Is(err, ErrUploadNotFound) {
		t.Fatalf("path trick in upload id: %v", err)
	}
}

func TestSavedHashStateIsUsed(t *testing.T) {
	ctx := context.Background()
	s, _ := NewFS(t.TempDir())
	data := bytes.Repeat([]byte{1, 2, 3, 4, 5, 6, 7}, (stateMinSize+4096)/7+1)
	id, _ := s.NewUpload(ctx, "1")
	up, _ := s.OpenUpload(ctx, "1", id)
	if _, err := up.Append(ctx, bytes.NewReader(data[:stateMinSize+100]), ""); err != nil {
		t.Fatal(err)
	}
	up.Close()
	p, _ := s.uploadPath("1", id)
	if _, err := os.Stat(p + ".hash"); err != nil {
		t.Fatalf("no hash state saved for a large upload: %v", err)
	}
	up, _ = s.OpenUpload(ctx, "1", id)
	fu := up.(*fsUpload)
	if err := fu.loadState(""); err != nil || fu.alg != digest.SHA256 {
		t.Fatalf("load state: %v %s", err, fu.alg)
	}
	// Corrupt the data behind the state's back: a hash restored from the
	// state (not recomputed) still yields the original digest, proving the
	// state was used.
	f, _ := os.OpenFile(p, os.O_WRONLY, 0)
	f.WriteAt([]byte{9}, 0)
	f.Close()
	if _, err := up.Append(ctx, bytes.NewReader(data[stateMinSize+100:]), ""); err != nil {
		t.Fatal(err)
	}
	if _, err := up.Commit(ctx, digest.FromBytes(data), nil); err != nil {
		t.Fatalf("commit with the saved state: %v", err)
	}
	up.Close()
	if _, err := os.Stat(p + ".hash"); !os.IsNotExist(err) {
		t.Fatalf("hash state left after commit: %v", err)
	}
}

// countingReader yields n pseudo-random bytes and counts what was read.
type countingReader struct {
	left, read int64
	x          uint64
}

func (c *countingReader) Read(p []byte) (int, error) {
	if c.left == 0 {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), c.left)]
	for i := range p {
		c.x = c.x*6364136223846793005 + 1442695040888963407
		p[i] = byte(c.x >> 56)
	}
	c.left -= int64(len(p))
	c.read += int64(len(p))
	return len(p), nil
}

// TestAppendLargeMatchesDigest streams more than the pipeline holds, in
// reads of awkward sizes, and checks the blob against a digest and bytes
// computed apart from the store.
func TestAppendLargeMatchesDigest(t *testing.T) {
	ctx := context.Background()
	s, _ := NewFS(t.TempDir())
	const size = pipeDepth*bufSize*3 + writebackUnit + 12345
	want := &countingReader{left: size}
	data, _ := io.ReadAll(want)
	id, _ := s.NewUpload(ctx, "1")
	up, _ := s.OpenUpload(ctx, "1", id)
	defer up.Close()
	n, err := up.Append(ctx, iotest.HalfReader(&countingReader{left: size}), digest.SHA256)
	if err != nil || n != size {
		t.Fatalf("append: %d, %v", n, err)
	}
	d := digest.FromBytes(data)
	if _, err := up.Commit(ctx, d, nil); err != nil {
		t.Fatalf("commit: %v", err)
	}
	r, err := s.Open(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got, _ := io.ReadAll(r)
	if !bytes.Equal(got, data) {
		t.Fatalf("stored %d bytes differ from the %d sent", len(got), len(data))
	}
}

// TestAppendStopsWhenWritesFail: when the file cannot be written, Append
// returns the store's error (not a SourceError), stops reading the source
// soon after, and leaves the upload as it was.
func TestAppendStopsWhenWritesFail(t *testing.T) {
	ctx := context.Background()
	s, _ := NewFS(t.TempDir())
	id, _ := s.NewUpload(ctx, "1")
	up, _ := s.OpenUpload(ctx, "1", id)
	defer up.Close()
	if _, err := up.Append(ctx, bytes.NewReader([]byte("kept")), ""); err != nil {
		t.Fatal(err)
	}
	// Swap in a read-only descriptor of the same file: every write fails
	// with EBADF, as on a disk that fails.
	fu := up.(*fsUpload)
	rw := fu.f
	ro, err := os.Open(fu.path)
	if err != nil {
		t.Fatal(err)
	}
	fu.f = ro
	src := &countingReader{left: 1 << 30}
	_, err = up.Append(ctx, src, "")
	var se *SourceError
	if err == nil || errors.As(err, &se) {
		t.Fatalf("append to an unwritable file: %v", err)
	}
	if limit := int64(pipeDepth+2) * bufSize; src.read > limit {
		t.Fatalf("read %d bytes of the source after the first write failed, want at most %d", src.read, limit)
	}
	fu.f = rw
	ro.Close()
	if up.Size() != 4 {
		t.Fatalf("size after a failed append: %d", up.Size())
	}
	if _, err := up.Commit(ctx, digest.FromString("kept"), nil); err != nil {
		t.Fatalf("commit of the bytes before the failure: %v", err)
	}
}

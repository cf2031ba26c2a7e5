package blob

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"testing"
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

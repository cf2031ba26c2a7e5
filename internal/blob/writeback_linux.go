package blob

import (
	"os"

	"golang.org/x/sys/unix"
)

// startWriteback asks the kernel to start writing a file's range to the
// disk without waiting for it (sync_file_range with SYNC_FILE_RANGE_WRITE).
// It makes nothing durable: the commit's fsync does that, and finds only
// the last few MiB still to write. A failure is ignored for the same
// reason.
func startWriteback(f *os.File, off, n int64) {
	_ = unix.SyncFileRange(int(f.Fd()), off, n, unix.SYNC_FILE_RANGE_WRITE)
}

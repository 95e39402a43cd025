package storage

import (
	"os"

	"golang.org/x/sys/unix"
)

const writebackSupported = true

// startWriteback asks the kernel to start writing [off, off+n) of f to disk
// and returns without waiting for it.
func startWriteback(f *os.File, off, n int64) error {
	return unix.SyncFileRange(int(f.Fd()), off, n, unix.SYNC_FILE_RANGE_WRITE)
}

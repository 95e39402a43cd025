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

// dropCache waits until the disk has n bytes of f from off, then drops them
// from the page cache. Waiting first matters: POSIX_FADV_DONTNEED skips
// dirty pages and pages under writeback.
func dropCache(f *os.File, off, n int64) error {
	const wait = unix.SYNC_FILE_RANGE_WAIT_BEFORE | unix.SYNC_FILE_RANGE_WRITE | unix.SYNC_FILE_RANGE_WAIT_AFTER
	if err := unix.SyncFileRange(int(f.Fd()), off, n, wait); err != nil {
		return err
	}
	return unix.Fadvise(int(f.Fd()), off, n, unix.FADV_DONTNEED)
}

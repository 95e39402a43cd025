//go:build unix

package filestore

import (
	"errors"
	"os"
	"syscall"
)

// flock takes an exclusive flock(2) on f. With wait false it returns
// (false, nil) at once if another open file description holds it. The lock
// belongs to f's open file description: two opens of the same file in one
// process exclude each other, and the kernel drops it when the process dies.
func flock(f *os.File, wait bool) (bool, error) {
	how := syscall.LOCK_EX
	if !wait {
		how |= syscall.LOCK_NB
	}
	for {
		err := syscall.Flock(int(f.Fd()), how)
		switch {
		case err == nil:
			return true, nil
		case errors.Is(err, syscall.EINTR):
			continue
		case errors.Is(err, syscall.EWOULDBLOCK):
			return false, nil
		}
		return false, &os.PathError{Op: "flock", Path: f.Name(), Err: err}
	}
}

func funlock(f *os.File) error {
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_UN); err != nil {
		return &os.PathError{Op: "funlock", Path: f.Name(), Err: err}
	}
	return nil
}

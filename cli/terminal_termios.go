//go:build aix || darwin || dragonfly || freebsd || linux || netbsd || openbsd || solaris

package cli

import "golang.org/x/sys/unix"

// fdIsTerminal asks the terminal driver for fd's settings, which only a
// terminal has.
func fdIsTerminal(fd uintptr) bool {
	_, err := unix.IoctlGetTermios(int(fd), ioctlReadTermios)
	return err == nil
}

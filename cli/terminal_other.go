//go:build !(aix || darwin || dragonfly || freebsd || linux || netbsd || openbsd || solaris)

package cli

// fdIsTerminal: without termios kdr cannot tell, so it asks nothing and
// failover commands want --yes.
func fdIsTerminal(uintptr) bool { return false }

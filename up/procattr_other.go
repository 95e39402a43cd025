//go:build !linux

package up

import "syscall"

// childAttr puts a child in its own process group. Outside Linux there is
// no parent-death signal: children of a SIGKILLed kdr up keep running.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

//go:build !linux

package drill

import "syscall"

// childAttr: outside Linux there is no parent-death signal.
func childAttr() *syscall.SysProcAttr { return nil }

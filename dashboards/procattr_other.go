//go:build !linux

package dashboards

import "syscall"

// childAttr puts Prometheus in its own process group. Outside Linux there
// is no parent-death signal.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

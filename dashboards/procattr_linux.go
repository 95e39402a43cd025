package dashboards

import "syscall"

// childAttr puts Prometheus in its own process group (a terminal's Ctrl-C
// reaches kdr, which stops it) and has the kernel SIGKILL it if kdr dies.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

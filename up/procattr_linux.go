package up

import "syscall"

// childAttr puts a child in its own process group (the terminal's Ctrl-C
// reaches kdr up only, which stops children in order) and has the kernel
// SIGKILL it if kdr up dies, so nothing survives a killed kdr up.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

package drill

import "syscall"

// childAttr makes kdr up die with the drill (SIGKILL on the drill's death),
// and kdr up's own children die with it in turn.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

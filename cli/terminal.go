package cli

import "os"

// isTerminal reports whether v (a command's stdin or stdout) is a
// terminal. Being a character device is not enough: /dev/null is one, and
// it is the stdin of cron jobs, systemd units and `ssh -n`.
func isTerminal(v any) bool {
	f, ok := v.(*os.File)
	return ok && fdIsTerminal(f.Fd())
}

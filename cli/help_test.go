package cli

import (
	"io"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// TestEveryCommandHasAnExample keeps `kdr help CMD` useful: every command a
// user can run shows at least one example.
func TestEveryCommandHasAnExample(t *testing.T) {
	root := NewCmdRoot(IO{In: strings.NewReader(""), Out: io.Discard, Err: io.Discard})
	root.InitDefaultCompletionCmd()
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			walk(sub)
		}
		if c == root || !c.Runnable() || c.Hidden || strings.HasPrefix(c.CommandPath(), "kdr completion") || c.Name() == "help" {
			return
		}
		if strings.TrimSpace(c.Example) == "" {
			t.Errorf("%q has no Example", c.CommandPath())
		}
	}
	walk(root)
}

// TestRequiredFlagIsUsageError checks that a missing required flag, which
// cobra reports itself, exits with the usage code like any bad command line.
func TestRequiredFlagIsUsageError(t *testing.T) {
	var errOut strings.Builder
	code := Execute([]string{"cluster", "fence", "--reason", "r", "--brokers", "127.0.0.1:1"}, strings.NewReader(""), io.Discard, &errOut)
	if want := "Error: required flag(s) \"epoch\" not set\n"; code != exitUsage || errOut.String() != want {
		t.Errorf("cluster fence without --epoch: exit %d, stderr %q; want exit %d, %q", code, errOut.String(), exitUsage, want)
	}
}

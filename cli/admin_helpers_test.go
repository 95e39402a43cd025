package cli

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// kdrRun is the outcome of one `kdr` invocation.
type kdrRun struct {
	stdout, stderr string
	code           int
}

// runKdr runs the real command tree against the broker at addr, the way
// main does, with stdin as standard input.
func runKdr(t *testing.T, addr, stdin string, args ...string) kdrRun {
	t.Helper()
	var out, errOut bytes.Buffer
	full := append(append([]string{}, args...), "--brokers", addr, "--timeout", "20s")
	code := Execute(full, strings.NewReader(stdin), &out, &errOut)
	return kdrRun{stdout: out.String(), stderr: errOut.String(), code: code}
}

// mustKdr is runKdr that fails the test unless the command succeeds, and
// returns its stdout.
func mustKdr(t *testing.T, addr, stdin string, args ...string) string {
	t.Helper()
	r := runKdr(t, addr, stdin, args...)
	if r.code != exitOK {
		t.Fatalf("kdr %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// decodeJSON decodes s into a T, rejecting unknown fields so that the
// tests pin the JSON schema.
func decodeJSON[T any](t *testing.T, s string) T {
	t.Helper()
	var v T
	dec := json.NewDecoder(strings.NewReader(s))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("decoding %T from:\n%s\nerror: %v", v, s, err)
	}
	return v
}

// parseWith runs sub (built with a runF hook) under a parent that has the
// connection flags, as `kdr topic` and `kdr group` do, and returns the
// error of the run.
func parseWith(sub *cobra.Command, args ...string) error {
	return parseUnder(true, sub, args...)
}

// parseTop runs a top-level command (produce, consume), built with a runF
// hook, under a bare root: it must have its connection flags itself.
func parseTop(cmd *cobra.Command, args ...string) error {
	return parseUnder(false, cmd, args...)
}

func parseUnder(connFlags bool, sub *cobra.Command, args ...string) error {
	parent := &cobra.Command{Use: "kdr", SilenceErrors: true, SilenceUsage: true}
	if connFlags {
		addConnFlags(parent)
	}
	parent.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	parent.AddCommand(sub)
	parent.SetArgs(append([]string{sub.Name()}, args...))
	parent.SetOut(new(bytes.Buffer))
	parent.SetErr(new(bytes.Buffer))
	return parent.Execute()
}

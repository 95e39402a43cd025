package cli

import (
	"bytes"
	"strings"
	"testing"
)

func TestFailoverOptions(t *testing.T) {
	var got *FailoverOptions
	hook := func(o *FailoverOptions) error { got = o; return nil }
	sub := func(name string) []string { return []string{name} }

	err := parseTop(newCmdFailover(IO{}, &globalOptions{}, hook), append(sub("switchover"), "--to", "west", "estate.yaml", "--state-dir", "/s", "--dry-run", "--yes")...)
	if err != nil || got.Kind != "switchover" || got.To != "west" || got.File != "estate.yaml" || got.StateDir != "/s" || !got.DryRun || !got.Yes {
		t.Fatalf("switchover: %v %+v", err, got)
	}
	err = parseTop(newCmdFailover(IO{}, &globalOptions{}, hook), append(sub("promote"), "--to", "west", "--force", "--output", "json")...)
	if err != nil || got.Kind != "promote" || !got.Force || got.Output != outputJSON {
		t.Fatalf("promote: %v %+v", err, got)
	}
	err = parseTop(newCmdFailover(IO{}, &globalOptions{}, hook), append(sub("failback"), "--to", "east")...)
	if err != nil || got.Kind != "failback" || got.To != "east" {
		t.Fatalf("failback: %v %+v", err, got)
	}
	err = parseTop(newCmdFailover(IO{}, &globalOptions{}, hook), append(sub("status"), "--output", "json")...)
	if err != nil || got.Kind != "status" || got.Output != outputJSON {
		t.Fatalf("status: %v %+v", err, got)
	}
	for _, args := range [][]string{
		{"promote", "--to", "west"},              // no --force
		{"switchover"},                           // no --to
		{"switchover", "--to", "west", "a", "b"}, // two files
		{"status", "--output", "yaml"},
	} {
		err := parseTop(newCmdFailover(IO{}, &globalOptions{}, hook), args...)
		if _, ok := err.(usageError); !ok {
			t.Errorf("%v: %v, want a usage error", args, err)
		}
	}
	var d *DiscoverOptions
	err = parseTop(newCmdDiscover(IO{}, &globalOptions{}, func(o *DiscoverOptions) error { d = o; return nil }), "estate.yaml", "--watch", "--state-dir", "/s")
	if err != nil || d.File != "estate.yaml" || !d.Watch || d.StateDir != "/s" {
		t.Fatalf("discover: %v %+v", err, d)
	}
}

// TestFailoverDryRunAndDiscoverOnTheDemo runs the commands on the demo
// topology with an empty state dir: the plan is printed and nothing
// changes; the primary is active.
func TestFailoverDryRunAndDiscoverOnTheDemo(t *testing.T) {
	dir := t.TempDir()
	var out, errOut bytes.Buffer
	code := Execute([]string{"failover", "switchover", "--to", "west", "--state-dir", dir, "--dry-run"}, strings.NewReader(""), &out, &errOut)
	if code != 0 || !strings.Contains(out.String(), "Plan: switchover east -> west") || !strings.Contains(out.String(), " 3. drain") ||
		!strings.Contains(out.String(), "Dry run: nothing was changed.") {
		t.Fatalf("dry run: exit %d\n%s\n%s", code, out.String(), errOut.String())
	}
	out.Reset()
	code = Execute([]string{"discover", "--state-dir", dir}, strings.NewReader(""), &out, &errOut)
	if code != 0 || strings.TrimSpace(out.String()) != "127.0.0.1:9092,127.0.0.1:9093,127.0.0.1:9094" {
		t.Fatalf("discover: exit %d %q %s", code, out.String(), errOut.String())
	}
	out.Reset()
	code = Execute([]string{"failover", "switchover", "--to", "east", "--state-dir", dir, "--dry-run"}, strings.NewReader(""), &out, &errOut)
	if code != 1 || !strings.Contains(errOut.String(), "east is already the active cluster") {
		t.Fatalf("dry run to the active cluster: exit %d\n%s", code, errOut.String())
	}
	errOut.Reset()
	code = Execute([]string{"failover", "failback", "--to", "west", "--state-dir", dir, "--dry-run"}, strings.NewReader(""), &out, &errOut)
	if code != 1 || !strings.Contains(errOut.String(), "needs a forced promotion") {
		t.Fatalf("failback without a promotion: exit %d\n%s", code, errOut.String())
	}
}

package cli

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kdr-io/kdr/failover/store"
	"github.com/kdr-io/kdr/internal/kdrtest"
	"github.com/kdr-io/kdr/topology"
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

// unreachableEstate writes a topology of two one-broker clusters on free
// ports where nothing listens, and returns the file and a state dir.
func unreachableEstate(t *testing.T) (file, state string) {
	t.Helper()
	used := map[int]bool{}
	dir := t.TempDir()
	file = filepath.Join(dir, "estate.yaml")
	yaml := fmt.Sprintf(`apiVersion: kdr.io/v1
kind: Topology
metadata:
  name: gone
clusters:
  - name: a
    local: {brokers: 1, basePort: %d}
  - name: b
    local: {brokers: 1, basePort: %d}
replication:
  - type: active-passive
    primary: a
    standby: b
`, kdrtest.FreeBasePort(t, 1, used), kdrtest.FreeBasePort(t, 1, used))
	if err := os.WriteFile(file, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return file, filepath.Join(dir, "state")
}

// failoverDoc reads the topology's failover state document.
func failoverDoc(t *testing.T, file, state string) store.Versioned {
	t.Helper()
	topo, err := topology.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	s, err := store.Open(topo, state)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	v, err := s.Get(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestFailoverWithoutYesOffATerminal: stdin from /dev/null (cron, systemd,
// ssh -n) is no terminal, so nobody can confirm: the command refuses as a
// usage error naming --yes, before changing anything.
func TestFailoverWithoutYesOffATerminal(t *testing.T) {
	file, state := unreachableEstate(t)
	devNull, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer devNull.Close()
	if isTerminal(devNull) {
		t.Fatal("isTerminal(/dev/null) = true")
	}
	var out, errOut bytes.Buffer
	code := Execute([]string{"failover", "switchover", "--to", "b", file, "--state-dir", state}, devNull, &out, &errOut)
	if code != 2 || !strings.Contains(errOut.String(), "stdin is not a terminal: pass --yes") || strings.Contains(out.String(), "Proceed") {
		t.Fatalf("switchover without --yes, stdin /dev/null: exit %d\n%s\n%s", code, out.String(), errOut.String())
	}
	if v := failoverDoc(t, file, state); v.Version != 0 {
		t.Fatalf("the state was written: %+v", v.State)
	}
}

// TestFailoverUsageErrors: an unknown --to cluster is bad usage (exit 2),
// and status on a topology without an active-passive pattern says so.
func TestFailoverUsageErrors(t *testing.T) {
	dir := t.TempDir()
	var out, errOut bytes.Buffer
	code := Execute([]string{"failover", "switchover", "--to", "nowhere", "--state-dir", dir, "--dry-run"}, strings.NewReader(""), &out, &errOut)
	if code != 2 || !strings.Contains(errOut.String(), "--to nowhere: no such cluster in topology demo") {
		t.Fatalf("--to nowhere: exit %d\n%s", code, errOut.String())
	}
	errOut.Reset()
	code = Execute([]string{"failover", "status", "../topology/examples/stretched.yaml", "--state-dir", dir}, strings.NewReader(""), &out, &errOut)
	if code != 1 || !strings.Contains(errOut.String(), "topology stretched has no replication patterns") || strings.Contains(errOut.String(), "(it has: )") {
		t.Fatalf("status of stretched.yaml: exit %d\n%s", code, errOut.String())
	}
}

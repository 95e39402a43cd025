package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kdr-io/kdr/drill"
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

// openFailoverStore opens the file topology's failover state store under
// the state dir; it is closed when the test ends.
func openFailoverStore(t *testing.T, file, state string) store.Store {
	t.Helper()
	topo, err := topology.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	s, err := store.Open(topo, state)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// failoverDoc reads the topology's failover state document.
func failoverDoc(t *testing.T, file, state string) store.Versioned {
	t.Helper()
	v, err := openFailoverStore(t, file, state).Get(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// putFailoverDoc writes the first failover state document of a topology, as
// an earlier command would have left it.
func putFailoverDoc(t *testing.T, file, state string, doc store.State) {
	t.Helper()
	s := openFailoverStore(t, file, state)
	if _, err := s.CompareAndSwap(context.Background(), doc, 0); err != nil {
		t.Fatal(err)
	}
	s.Close()
}

// TestFailoverPreflightFailureLeavesNothingInProgress: with both clusters
// down a switchover fails at its preflight, which changed nothing, so no
// operation is left to block the next command.
func TestFailoverPreflightFailureLeavesNothingInProgress(t *testing.T) {
	file, state := unreachableEstate(t)
	var out, errOut bytes.Buffer
	code := Execute([]string{"failover", "switchover", "--to", "b", file, "--state-dir", state, "--yes"}, strings.NewReader(""), &out, &errOut)
	if code != 1 || !strings.Contains(errOut.String(), "cluster a (") || !strings.Contains(errOut.String(), "no operation is left in progress") {
		t.Fatalf("switchover with the clusters down: exit %d\n%s\n%s", code, out.String(), errOut.String())
	}
	v := failoverDoc(t, file, state)
	if v.State.Operation != nil {
		t.Fatalf("operation left in progress after a failed preflight: %+v", v.State.Operation)
	}
	if n := len(v.State.History); n == 0 || v.State.History[n-1].Step != "failed" || !strings.Contains(v.State.History[n-1].Message, "the operation is dropped") {
		t.Fatalf("timeline does not record the dropped operation: %+v", v.State.History)
	}
	// The next command is not refused.
	out.Reset()
	errOut.Reset()
	code = Execute([]string{"failover", "failback", "--to", "b", file, "--state-dir", state, "--dry-run"}, strings.NewReader(""), &out, &errOut)
	if code != 1 || !strings.Contains(errOut.String(), "needs a forced promotion") {
		t.Fatalf("failback dry run after the failed switchover: exit %d\n%s", code, errOut.String())
	}
}

// TestFailoverAbortAndRefusals: an operation left in progress (as a kdr
// that did not drop a failed preflight left it) refuses other commands
// with its own kind and step count and without a plan of theirs, and
// `kdr failover abort` drops it.
func TestFailoverAbortAndRefusals(t *testing.T) {
	file, state := unreachableEstate(t)
	op := &store.Operation{ID: "sw-stuck", Kind: "switchover", From: "a", To: "b", Step: "preflight", Started: time.Now().UTC()}
	putFailoverDoc(t, file, state, store.State{Topology: "gone", Active: "a", Operation: op})

	for _, args := range [][]string{
		{"failover", "switchover", "--to", "a", "--yes"},
		{"failover", "failback", "--to", "b", "--dry-run"},
		{"failover", "promote", "--to", "a", "--force", "--dry-run"},
	} {
		var out, errOut bytes.Buffer
		code := Execute(append(args, file, "--state-dir", state), strings.NewReader(""), &out, &errOut)
		want := "switchover sw-stuck (a -> b) is in progress at step preflight (1/8)"
		if code != 1 || strings.Contains(out.String(), "Plan:") || !strings.Contains(errOut.String(), want) ||
			!strings.Contains(errOut.String(), "kdr failover abort") {
			t.Errorf("%v: exit %d, want 1 with no plan and %q:\n%s\n%s", args, code, want, out.String(), errOut.String())
		}
	}

	var out, errOut bytes.Buffer
	code := Execute([]string{"failover", "abort", file, "--state-dir", state}, strings.NewReader(""), &out, &errOut)
	if code != 0 || !strings.Contains(out.String(), "Aborted switchover sw-stuck (a -> b) at step preflight (1/8)") {
		t.Fatalf("abort: exit %d\n%s\n%s", code, out.String(), errOut.String())
	}
	v := failoverDoc(t, file, state)
	if v.State.Operation != nil || v.State.Active != "a" || v.State.Epoch != 0 {
		t.Fatalf("state after the abort: %+v", v.State)
	}
	if n := len(v.State.History); n == 0 || v.State.History[n-1].Step != "aborted" {
		t.Fatalf("timeline does not record the abort: %+v", v.State.History)
	}
	out.Reset()
	code = Execute([]string{"failover", "abort", file, "--state-dir", state}, strings.NewReader(""), &out, &errOut)
	if code != 0 || !strings.Contains(out.String(), "Nothing in progress to abort; a is active.") {
		t.Fatalf("abort with nothing in progress: exit %d\n%s\n%s", code, out.String(), errOut.String())
	}
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

// TestFailoverStatusLastDrill: the text output summarises the drill record
// kdr drill run stores (a QA run saw it printed as raw JSON); --output json
// keeps the record as stored.
func TestFailoverStatusLastDrill(t *testing.T) {
	file, state := unreachableEstate(t)
	sum := drill.Summary{Scenario: "planned-switchover", Passed: false, Lost: 0, Duplicated: 12, Reordered: 1,
		RTOSeconds: 4.25, RPORecords: 3, RPOSeconds: 0.25, FinishedAt: time.Date(2026, 1, 2, 10, 4, 5, 0, time.UTC), Report: "/tmp/drill/report.json"}
	raw, err := json.Marshal(sum)
	if err != nil {
		t.Fatal(err)
	}
	putFailoverDoc(t, file, state, store.State{Topology: "gone", LastDrill: raw})

	var out, errOut bytes.Buffer
	if code := Execute([]string{"failover", "status", file, "--state-dir", state}, strings.NewReader(""), &out, &errOut); code != 0 {
		t.Fatalf("failover status: exit %d\n%s%s", code, out.String(), errOut.String())
	}
	want := "Last drill:        planned-switchover FAILED, finished 2026-01-02T10:04:05Z\n" +
		"                   records lost 0, duplicated 12, reordered 1; RTO 4.25s; RPO 3 records (250ms)\n" +
		"                   report: /tmp/drill/report.json\n"
	if !strings.Contains(out.String(), "In progress:       nothing\n"+want) {
		t.Fatalf("failover status: want\n%s\nin:\n%s", want, out.String())
	}

	out.Reset()
	if code := Execute([]string{"failover", "status", file, "--state-dir", state, "--output", "json"}, strings.NewReader(""), &out, &errOut); code != 0 {
		t.Fatalf("failover status --output json: exit %d\n%s%s", code, out.String(), errOut.String())
	}
	var got struct {
		LastDrill drill.Summary `json:"last_drill"`
	}
	if err := json.Unmarshal(out.Bytes(), &got); err != nil || got.LastDrill != sum {
		t.Fatalf("failover status --output json: %v, last_drill %+v, want %+v:\n%s", err, got.LastDrill, sum, out.String())
	}
}

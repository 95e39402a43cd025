package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/kdr-io/kdr/failover"
	"github.com/kdr-io/kdr/failover/store"
	"github.com/kdr-io/kdr/internal/kdrtest"
)

// jsonPlan is the schema of `kdr topology plan --output json`.
type jsonPlan struct {
	Topology string `json:"topology"`
	Changes  []struct {
		Action  string `json:"action"`
		Cluster string `json:"cluster"`
		Topic   string `json:"topic"`
		Flow    string `json:"flow"`
		Detail  struct {
			SourceTopic       string            `json:"source_topic"`
			Internal          bool              `json:"internal"`
			Partitions        int32             `json:"partitions"`
			CurrentPartitions int32             `json:"current_partitions"`
			ReplicationFactor int16             `json:"replication_factor"`
			Configs           map[string]string `json:"configs"`
			ConfigChanges     []struct {
				Key string  `json:"key"`
				Old *string `json:"old"`
				New string  `json:"new"`
			} `json:"config_changes"`
			Group string `json:"group"`
		} `json:"detail"`
	} `json:"changes"`
	Warnings []string `json:"warnings"`
}

// writeTopology writes an east → west topology over the brokers at the
// given addresses and returns its path.
func writeTopology(t *testing.T, east, west string) string {
	t.Helper()
	doc := fmt.Sprintf(`apiVersion: kdr.io/v1
kind: Topology
metadata:
  name: cli-test
clusters:
  - name: east
    bootstrap: [%q]
  - name: west
    bootstrap: [%q]
replication:
  - type: active-passive
    primary: east
    standby: west
`, east, west)
	path := filepath.Join(t.TempDir(), "topology.yaml")
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// runTopology runs `kdr topology ARGS...` through Execute.
func runTopology(t *testing.T, stdin string, args ...string) kdrRun {
	t.Helper()
	var out, errOut bytes.Buffer
	code := Execute(append([]string{"topology"}, args...), strings.NewReader(stdin), &out, &errOut)
	return kdrRun{stdout: out.String(), stderr: errOut.String(), code: code}
}

// topologyErr runs `kdr topology ARGS...` on the command tree and returns
// the command's error, for exit codes Execute maps.
func topologyErr(args ...string) error {
	var out bytes.Buffer
	root := NewCmdRoot(IO{In: strings.NewReader(""), Out: &out, Err: &out})
	root.SetArgs(append([]string{"topology"}, args...))
	return root.ExecuteContext(context.Background())
}

func wantLines(t *testing.T, what, got string, lines ...string) {
	t.Helper()
	for _, l := range lines {
		if !strings.Contains(got, l+"\n") {
			t.Fatalf("%s: no line %q in:\n%s", what, l, got)
		}
	}
}

func TestTopologyPlanApplyCommands(t *testing.T) {
	// Plan reads the failover state from the default state dir: not the
	// user's.
	t.Setenv("XDG_STATE_HOME", t.TempDir())
	east, west := kdrtest.StartBroker(t), kdrtest.StartBroker(t)
	mustKdr(t, east.Addr(), "", "topic", "create", "orders", "--partitions", "3", "--config", "cleanup.policy=compact")
	mustKdr(t, east.Addr(), "", "topic", "create", "payments", "--partitions", "2", "--config", "retention.ms=86400000")
	file := writeTopology(t, east.Addr(), west.Addr())

	creations := []string{
		"+ create topic east/mm2-offset-syncs.west.internal (1 partition, RF 1, cleanup.policy=delete, retention.ms=604800000)",
		"+ create topic west/heartbeats (1 partition, RF 1, cleanup.policy=compact)",
		"+ create topic west/east.checkpoints.internal (1 partition, RF 1, cleanup.policy=compact)",
		"+ create topic west/east.orders (3 partitions, RF 1, cleanup.policy=compact)",
		"+ create topic west/east.payments (2 partitions, RF 1, retention.ms=86400000)",
		"! flow east->west not running (start it with kdr up or kdr mirror run)",
	}
	r := runTopology(t, "", "plan", file)
	if r.code != exitOK {
		t.Fatalf("plan: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	t.Logf("kdr topology plan:\n%s", r.stdout)
	wantLines(t, "plan", r.stdout, append(creations, "Plan: 5 to create, 0 to grow, 0 to configure.")...)

	p := decodeJSON[jsonPlan](t, mustTopology(t, "plan", file, "--output", "json"))
	if p.Topology != "cli-test" || len(p.Changes) != 6 {
		t.Fatalf("json plan: %+v", p)
	}
	if c := p.Changes[3]; c.Action != "create" || c.Cluster != "west" || c.Topic != "east.orders" || c.Flow != "east->west" ||
		c.Detail.Partitions != 3 || c.Detail.SourceTopic != "orders" || c.Detail.Configs["cleanup.policy"] != "compact" {
		t.Fatalf("json plan change 3: %+v", c)
	}

	// --detailed-exitcode: 3 with changes.
	var ec interface{ ExitCode() int }
	if err := topologyErr("plan", file, "--detailed-exitcode"); !errors.As(err, &ec) || ec.ExitCode() != exitChanges {
		t.Fatalf("plan --detailed-exitcode with changes: %v, want exit code %d", err, exitChanges)
	}

	// Declining applies nothing.
	r = runTopology(t, "n\n", "apply", file)
	if r.code != exitError || !strings.Contains(r.stdout, "Apply these changes? [y/N]") || !strings.Contains(r.stderr, "apply cancelled") {
		t.Fatalf("declined apply: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	wantLines(t, "plan after declining", mustTopology(t, "plan", file), "Plan: 5 to create, 0 to grow, 0 to configure.")

	r = runTopology(t, "yes\n", "apply", file)
	if r.code != exitOK {
		t.Fatalf("apply: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	t.Logf("kdr topology apply:\n%s", r.stdout)
	wantLines(t, "apply", r.stdout,
		"+ created topic west/east.orders (3 partitions, RF 1, cleanup.policy=compact)",
		"Apply complete: 5 created, 0 grown, 0 configured.")

	out := mustTopology(t, "plan", file)
	wantLines(t, "plan after apply", out, creations[5], "No changes. The clusters match the topology.")
	if strings.Contains(out, "+ create") {
		t.Fatalf("plan after apply still creates:\n%s", out)
	}
	if err := topologyErr("plan", file, "--detailed-exitcode"); err != nil {
		t.Fatalf("plan --detailed-exitcode without changes: %v", err)
	}

	// The source changes: one grow, one configure, applied without a prompt.
	mustKdr(t, east.Addr(), "", "topic", "alter-config", "payments", "--set", "retention.ms=3600000")
	growTopic(t, east.Addr(), "orders", 4)
	wantLines(t, "plan after source changes", mustTopology(t, "plan", file),
		"~ grow topic west/east.orders: 3 → 4 partitions",
		"~ configure topic west/east.payments: retention.ms 86400000 → 3600000",
		"Plan: 0 to create, 1 to grow, 1 to configure.")
	wantLines(t, "apply --auto-approve", mustTopology(t, "apply", file, "--auto-approve"),
		"~ grew topic west/east.orders to 4 partitions",
		"~ configured topic west/east.payments: retention.ms=3600000",
		"Apply complete: 0 created, 1 grown, 1 configured.")
	wantLines(t, "apply with nothing to do", mustTopology(t, "apply", file),
		"No changes. The clusters match the topology.", "Apply complete: 0 created, 0 grown, 0 configured.")
}

// growTopic raises a topic's partition count with kdr topic add-partitions.
func growTopic(t *testing.T, addr, topic string, partitions int) {
	t.Helper()
	mustKdr(t, addr, "", "topic", "add-partitions", topic, "--partitions", strconv.Itoa(partitions))
}

func mustTopology(t *testing.T, args ...string) string {
	t.Helper()
	r := runTopology(t, "", args...)
	if r.code != exitOK {
		t.Fatalf("kdr topology %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

func TestTopologyPlanUsage(t *testing.T) {
	file := writeTopology(t, "127.0.0.1:1", "127.0.0.1:2")
	for _, args := range [][]string{
		{"plan"},
		{"plan", file, "extra"},
		{"plan", file, "--output", "yaml"},
		{"plan", file, "--timeout", "0s"},
		{"apply"},
		{"apply", "-"}, // stdin holds the file, so it cannot answer the prompt
	} {
		if r := runTopology(t, "", args...); r.code != exitUsage {
			t.Errorf("kdr topology %s: exit %d, want %d\n%s", strings.Join(args, " "), r.code, exitUsage, r.stderr)
		}
	}
	r := runTopology(t, "apiVersion: kdr.io/v1\n", "plan", "-")
	if r.code != exitError || !strings.Contains(r.stderr, "<stdin>") {
		t.Fatalf("invalid topology on stdin: exit %d\n%s", r.code, r.stderr)
	}
	r = runTopology(t, "", "plan", filepath.Join(t.TempDir(), "missing.yaml"))
	if r.code != exitError || !strings.Contains(r.stderr, "missing.yaml") {
		t.Fatalf("missing file: exit %d\n%s", r.code, r.stderr)
	}
	// Nothing listens there: the error names the cluster and its address.
	r = runTopology(t, "", "plan", file, "--timeout", "1s")
	if r.code != exitError || !strings.Contains(r.stderr, `cluster "east"`) || !strings.Contains(r.stderr, "127.0.0.1:1") {
		t.Fatalf("unreachable cluster: exit %d\n%s", r.code, r.stderr)
	}
}

// TestTopologyPlanDuringFailbackResync: while a failback re-copies the old
// primary's topics kdr up runs the pattern's flow in neither direction, so
// plan plans none of it and says why.
func TestTopologyPlanDuringFailbackResync(t *testing.T) {
	east, west := kdrtest.StartBroker(t), kdrtest.StartBroker(t)
	mustKdr(t, east.Addr(), "", "topic", "create", "orders", "--partitions", "3")
	file, state := writeTopology(t, east.Addr(), west.Addr()), t.TempDir()
	doc := store.State{Topology: "cli-test", Active: "west", Epoch: 2, Fenced: []string{"east"},
		Operation: &store.Operation{ID: "fb-1", Kind: failover.KindFailback, From: "west", To: "east", Step: failover.StepResync, StepIndex: 4}}
	putFailoverDoc(t, file, state, doc)
	if out := mustTopology(t, "plan", file, "--state-dir", state); out != "Not planning the flow between east and west: the failback to east is at its truncate-and-resync step, "+
		"re-copying east's topics from west, and until it is done kdr up runs the flow in neither direction.\n"+
		"No changes. The clusters match the topology.\n" {
		t.Fatalf("plan during the resync:\n%s", out)
	}
}

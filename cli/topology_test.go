package cli

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kdr-io/kdr/topology"
)

// kdrTopology runs `kdr topology ARGS...` through Execute with stdin.
func kdrTopology(stdin string, args ...string) kdrRun {
	var out, errOut bytes.Buffer
	code := Execute(append([]string{"topology"}, args...), strings.NewReader(stdin), &out, &errOut)
	return kdrRun{stdout: out.String(), stderr: errOut.String(), code: code}
}

const examples = "../topology/examples/"

func TestTopologyValidateCommand(t *testing.T) {
	for file, want := range map[string]string{
		"active-passive.yaml": "valid: 2 clusters, 1 flow\n",
		"active-active.yaml":  "valid: 2 clusters, 2 flows\n",
		"hub-and-spoke.yaml":  "valid: 4 clusters, 6 flows\n",
		"stretched.yaml":      "valid: 1 cluster, 0 flows\n",
	} {
		r := kdrTopology("", "validate", examples+file)
		if r.code != exitOK || r.stdout != examples+file+": "+want || r.stderr != "" {
			t.Errorf("%s: exit %d, stdout %q, stderr %q", file, r.code, r.stdout, r.stderr)
		}
	}

	// Every problem, each with its file, line and field, on stderr.
	bad := "../topology/testdata/invalid/unknown-key.yaml"
	r := kdrTopology("", "validate", bad)
	if r.code != exitError || r.stdout != "" ||
		!strings.Contains(r.stderr, bad+" is not a valid topology (2 problems):\n") ||
		!strings.Contains(r.stderr, "\n"+bad+`:9:7: clusters[0].local.basePrt: unknown key "basePrt" (fix: did you mean "basePort"?`) ||
		!strings.Contains(r.stderr, "\n"+bad+":7:5: clusters[0].local.basePort: required") {
		t.Errorf("invalid: exit %d, stdout %q, stderr:\n%s", r.code, r.stdout, r.stderr)
	}

	// Standard input.
	data, err := os.ReadFile(examples + "active-active.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if r := kdrTopology(string(data), "validate", "-"); r.code != exitOK || r.stdout != "<stdin>: valid: 2 clusters, 2 flows\n" {
		t.Errorf("stdin: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if r := kdrTopology("kind: Topology\n", "validate", "-"); r.code != exitError || !strings.Contains(r.stderr, "<stdin>:1:1: apiVersion: required") {
		t.Errorf("invalid stdin: exit %d, stderr %q", r.code, r.stderr)
	}

	// Usage errors exit 2; a file that cannot be read exits 1.
	for _, args := range [][]string{{"validate"}, {"validate", "a.yaml", "b.yaml"}, {"validate", "--nope", "a.yaml"}} {
		if r := kdrTopology("", args...); r.code != exitUsage {
			t.Errorf("%v: exit %d, want %d; stderr %q", args, r.code, exitUsage, r.stderr)
		}
	}
	missing := filepath.Join(t.TempDir(), "missing.yaml")
	if r := kdrTopology("", "validate", missing); r.code != exitError || !strings.Contains(r.stderr, "no such file") {
		t.Errorf("missing file: exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestTopologyGraphCommand(t *testing.T) {
	file := examples + "active-active.yaml"
	for format, want := range map[string]string{
		"": `nyc -> ldn  (active-active, prefix naming, topics orders, customers)
ldn -> nyc  (active-active, prefix naming, topics orders, customers)
`,
		"dot": `digraph "active-active" {
  rankdir=LR;
  node [shape=box];
  "nyc" [label="nyc\nus-east"];
  "ldn" [label="ldn\neu-west"];
  "nyc" -> "ldn" [label="active-active"];
  "ldn" -> "nyc" [label="active-active"];
}
`,
		"Mermaid": `flowchart LR
  c0["nyc<br/>us-east"]
  c1["ldn<br/>eu-west"]
  c0 -->|active-active| c1
  c1 -->|active-active| c0
`,
	} {
		args := []string{"graph", file}
		if format != "" {
			args = append(args, "--format", format)
		}
		r := kdrTopology("", args...)
		if r.code != exitOK || r.stdout != want {
			t.Errorf("--format %q: exit %d, stderr %q, stdout:\n%s\nwant:\n%s", format, r.code, r.stderr, r.stdout, want)
		}
	}
	if r := kdrTopology("", "graph", file, "--format", "svg"); r.code != exitUsage || !strings.Contains(r.stderr, `--format "svg": want text, dot, mermaid`) {
		t.Errorf("bad format: exit %d, stderr %q", r.code, r.stderr)
	}
	if r := kdrTopology("", "graph", "../topology/testdata/invalid/port-clash.yaml"); r.code != exitError ||
		!strings.Contains(r.stderr, "port-clash.yaml:13:17: clusters[1].local.basePort: kafka ports 9192-9194") {
		t.Errorf("invalid file: exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestTopologyLoadErrorUnwraps(t *testing.T) {
	_, err := loadTopology("../topology/testdata/invalid/hub-also-spoke.yaml", nil)
	var e *topology.Error
	if !errors.As(err, &e) || e.Field != "replication[0].spokes[1]" || !errors.Is(err, topology.ErrInvalid) {
		t.Errorf("error %v: errors.As found %+v", err, e)
	}
}

func TestTopologyCommandsHaveExamples(t *testing.T) {
	cmd := NewCmdTopology(IO{}, &globalOptions{})
	for _, c := range append(cmd.Commands(), cmd) {
		if c.Name() == "plan" || c.Name() == "apply" {
			continue // cli/topology_plan.go's
		}
		if c.Example == "" {
			t.Errorf("kdr %s has no Example", c.Name())
		}
	}
}

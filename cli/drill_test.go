package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDrillRunParsesOptions(t *testing.T) {
	var got *DrillOptions
	var what string
	cmd := newCmdDrill(IO{Out: &bytes.Buffer{}, Err: &bytes.Buffer{}}, &globalOptions{}, func(w string, o *DrillOptions) error {
		what, got = w, o
		return nil
	})
	cmd.SetArgs([]string{"run", "s.yaml", "--topology", "t.yaml", "--state-dir", "/tmp/d", "--report-dir", "out"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if what != "run" || got.Scenario != "s.yaml" || got.Topology != "t.yaml" || got.StateDir != "/tmp/d" || got.ReportDir != "out" {
		t.Fatalf("parsed %s %+v", what, got)
	}
}

func TestDrillValidateShippedScenarios(t *testing.T) {
	files, err := filepath.Glob("../scenarios/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scenarios found: %v", err)
	}
	var out, errOut bytes.Buffer
	code := Execute(append([]string{"drill", "validate"}, files...), nil, &out, &errOut)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	if n := strings.Count(out.String(), ": valid"); n != len(files) {
		t.Fatalf("%d of %d valid:\n%s", n, len(files), out.String())
	}
}

func TestDrillValidateInvalidScenarioIsUsageError(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("apiVersion: kdr.io/v1\nkind: Scenario\nname: bad\nsteps:\n  - action: kill-cluster\n    args: {cluster: eats}\n"), 0o644)
	var out, errOut bytes.Buffer
	code := Execute([]string{"drill", "validate", bad}, nil, &out, &errOut)
	if code != exitUsage {
		t.Fatalf("exit %d, want %d: %s", code, exitUsage, errOut.String())
	}
	if want := "bad.yaml:5: steps[0].args.cluster: cluster \"eats\" is not in topology demo"; !strings.Contains(errOut.String(), want) {
		t.Fatalf("error %q does not contain %q", errOut.String(), want)
	}
}

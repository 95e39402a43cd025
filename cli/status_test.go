package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kdr-io/kdr/internal/kdrtest"
	"github.com/kdr-io/kdr/status"
)

// closedPort is a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// TestStatusDeadClustersAreUnreachable: kdr status on clusters that refuse
// or never answer says unreachable, not healthy, exits 1, and returns
// within its per-cluster bound.
func TestStatusDeadClustersAreUnreachable(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "dead.yaml")
	doc := fmt.Sprintf(`apiVersion: kdr.io/v1
kind: Topology
metadata:
  name: dead
clusters:
  - name: hung
    region: r1
    bootstrap: [%q]
  - name: gone
    region: r2
    bootstrap: [%q]
replication:
  - type: active-passive
    primary: hung
    standby: gone
`, kdrtest.SilentAddr(t), closedPort(t))
	if err := os.WriteFile(file, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	start := time.Now()
	code := Execute([]string{"status", file, "--output", "json", "--state-dir", dir}, nil, &out, &errOut)
	if took := time.Since(start); took > status.DefaultTimeout+3*time.Second {
		t.Errorf("kdr status took %s; the bound is %s per cluster", took, status.DefaultTimeout)
	}
	if code != 1 {
		t.Fatalf("exit %d, want 1; stderr %s", code, errOut.String())
	}
	var r status.Report
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatalf("%v:\n%s", err, out.String())
	}
	if r.Healthy || r.Topology != "dead" || r.ActiveCluster != "hung" || len(r.Clusters) != 2 || len(r.Flows) != 1 {
		t.Fatalf("report %+v", r)
	}
	for _, c := range r.Clusters {
		if c.Reachable || c.Healthy || c.Error == "" {
			t.Errorf("cluster %+v, want unreachable with the reason", c)
		}
	}
	if f := r.Flows[0]; f.Name != "hung->gone" || f.State != status.FlowUnknown || f.Healthy {
		t.Errorf("flow %+v", f)
	}
	if !strings.Contains(out.String(), `"name": "hung->gone"`) {
		t.Errorf("JSON escapes the flow name:\n%s", out.String())
	}

	// The text form says so too, as fast with a shorter --timeout.
	out.Reset()
	start = time.Now()
	code = Execute([]string{"status", file, "--timeout", "500ms", "--state-dir", dir}, nil, &out, &errOut)
	if took := time.Since(start); code != 1 || took > 3*time.Second {
		t.Fatalf("text: exit %d after %s", code, took)
	}
	for _, want := range []string{"NOT HEALTHY", "hung", "unreachable", "hung->gone  unknown"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("text output lacks %q:\n%s", want, out.String())
		}
	}
}

// TestStatusHelpSaysWhatHealthyMeans: --help defines healthy as the code
// judges it (status.Report.Healthy) and docs/up.md says it: an idle flow
// is healthy, and a cluster needs a controller.
func TestStatusHelpSaysWhatHealthyMeans(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := Execute([]string{"status", "--help"}, nil, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	help := strings.Join(strings.Fields(out.String()), " ")
	want := "Healthy means: every cluster reachable with all its expected brokers, a controller and no offline partitions, and every flow running or idle"
	if !strings.Contains(help, want) {
		t.Fatalf("kdr status --help lacks %q:\n%s", want, out.String())
	}
}

package failover_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kdr-io/kdr/internal/kdrtest"
	"github.com/kdr-io/kdr/status"
)

// TestFailoverStatusShowsCurrentFlow: after a switchover kdr status
// reports the flow kdr up runs, the reversed one, running and healthy, and
// never the stopped old direction; after the switchover back, the
// original direction again.
func TestFailoverStatusShowsCurrentFlow(t *testing.T) {
	used := map[int]bool{}
	e := startEstate(t, fmt.Sprintf(twoLocal, kdrtest.FreeBasePort(t, 1, used), kdrtest.FreeBasePort(t, 1, used)))
	ctx := context.Background()
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.bootstrap("a")...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := kadmClient(cl).CreateTopic(ctx, 2, 1, nil, "payments"); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if err := tryProduce(e.bootstrap("a"), "payments", fmt.Sprintf("id-%d", i)); err != nil {
			t.Fatal(err)
		}
	}

	e.waitFlow("a", "a", "b")

	out, code := e.failover(nil, "switchover", "b")
	if code != 0 {
		t.Fatalf("switchover exit %d:\n%s", code, out)
	}
	e.waitFlow("b", "b", "a")

	out, code = e.failover(nil, "switchover", "a")
	if code != 0 {
		t.Fatalf("switchover back exit %d:\n%s", code, out)
	}
	e.waitFlow("a", "a", "b")
}

// waitFlow waits until kdr status is healthy with exactly the flow from →
// to running, caught up, and fails at once if it ever lists another flow.
func (e *estate) waitFlow(active, from, to string) {
	t := e.t
	t.Helper()
	name := from + "->" + to
	kdrtest.Eventually(t, 30*time.Second, func() (bool, string) {
		out, code := e.kdr(nil, "status", e.file, "--state-dir", e.state, "--output", "json")
		var r status.Report
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("kdr status --output json (exit %d): %v:\n%s", code, err, out)
		}
		if len(r.Flows) != 1 || r.Flows[0].Name != name || r.Flows[0].Source != from || r.Flows[0].Target != to {
			t.Fatalf("kdr status lists flows %+v, want exactly %s:\n%s", r.Flows, name, out)
		}
		f := r.Flows[0]
		ok := code == 0 && r.Healthy && r.ActiveCluster == active &&
			f.State == status.FlowRunning && f.Workers == 1 && f.Healthy && f.LagRecords == 0 && f.Error == ""
		return ok, fmt.Sprintf("exit %d:\n%s", code, out)
	})
	out, code := e.kdr(nil, "status", e.file, "--state-dir", e.state)
	if code != 0 || !strings.Contains(out, "healthy; active cluster "+active) || !strings.Contains(out, name+"  running  1") {
		t.Fatalf("kdr status exit %d:\n%s", code, out)
	}
}

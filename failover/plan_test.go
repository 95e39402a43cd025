package failover_test

import (
	"fmt"
	"strings"
	"syscall"
	"testing"

	"github.com/kdr-io/kdr/internal/kdrtest"
)

// TestTopologyPlanFollowsFailover: after a switchover a → b, kdr topology
// plan plans the flow kdr up runs, b->a, and says why; the file's a->b is
// neither planned nor flagged as stopped. A topic created on b while the
// b->a worker is frozen (SIGSTOP, so that it cannot create the remote
// topic first) is the one change: a/refunds for b->a.
func TestTopologyPlanFollowsFailover(t *testing.T) {
	used := map[int]bool{}
	e := startEstate(t, fmt.Sprintf(twoLocal, kdrtest.FreeBasePort(t, 1, used), kdrtest.FreeBasePort(t, 1, used)))
	createTopic(t, e, "a", "payments")
	if err := tryProduce(e.bootstrap("a"), "payments", "before"); err != nil {
		t.Fatal(err)
	}
	e.waitFlow("a", "a", "b")

	// With no failover yet the plan is the file's, and says nothing of
	// a failover.
	out, code := e.kdr(nil, "topology", "plan", e.file, "--state-dir", e.state)
	if code != 0 || strings.Contains(out, "active") || strings.Contains(out, "b->a") {
		t.Fatalf("plan before the switchover: exit %d:\n%s", code, out)
	}

	if out, code := e.failover(nil, "switchover", "b"); code != 0 {
		t.Fatalf("switchover exit %d:\n%s", code, out)
	}
	e.waitFlow("b", "b", "a")
	var pid int
	for _, f := range e.endpoints().Flows {
		if f.Name == "b->a" && len(f.Workers) == 1 {
			pid = f.Workers[0].PID
		}
	}
	if pid == 0 {
		t.Fatalf("endpoints.json lists no running b->a worker: %+v", e.endpoints().Flows)
	}
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	// Before kdr up's cleanup stops it: a stopped process keeps a SIGTERM
	// pending.
	t.Cleanup(func() { syscall.Kill(pid, syscall.SIGCONT) })
	createTopic(t, e, "b", "refunds")

	out, code = e.kdr(nil, "topology", "plan", e.file, "--state-dir", e.state)
	t.Logf("kdr topology plan after the switchover:\n%s", out)
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if code != 0 || len(lines) < 4 || lines[0] != "b is active (failover epoch 1): planning b->a" {
		t.Fatalf("plan after the switchover: exit %d, want it to say b->a is planned and why:\n%s", code, out)
	}
	// The b->a worker may have written no checkpoint yet, so its
	// checkpoints topic may be missing; once the frozen worker's session
	// times out its group is empty and the flow is flagged. Nothing else
	// may be planned, and nothing of a->b.
	refunds, creates := false, 0
	for _, l := range lines[1 : len(lines)-2] {
		switch l {
		case "+ create topic a/refunds (1 partition, RF 1)":
			refunds = true
			creates++
		case "+ create topic a/b.checkpoints.internal (1 partition, RF 1, cleanup.policy=compact)":
			creates++
		case "! flow b->a not running (start it with kdr up or kdr mirror run)":
		default:
			t.Fatalf("plan after the switchover: unexpected line %q:\n%s", l, out)
		}
	}
	tail := lines[len(lines)-2:]
	if !refunds || tail[0] != "" || tail[1] != fmt.Sprintf("Plan: %d to create, 0 to grow, 0 to configure.", creates) {
		t.Fatalf("plan after the switchover: want a/refunds created for b->a and the summary:\n%s", out)
	}
}

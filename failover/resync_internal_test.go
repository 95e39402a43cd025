package failover

import (
	"testing"
	"time"

	"github.com/kdr-io/kdr/mirror"
)

// TestLeaveGroupProgress: the line failback's resync prints while it waits
// for stopped workers to leave their group says how long it has waited and
// why the wait lasts (a QA run saw the same bare line ten times in 22 s).
func TestLeaveGroupProgress(t *testing.T) {
	f := mirror.Flow{SourceAlias: "west", TargetAlias: "east", SessionTimeout: 10 * time.Second}
	got := leaveGroupProgress(1, f, "west", 12400*time.Millisecond)
	want := "waiting for 1 worker(s) of west->east to leave group kdr-mirror-west-east on west (12s; " +
		"a stopped worker's static membership ends after its session timeout, 10s for this flow)"
	if got != want {
		t.Fatalf("progress line:\n got %q\nwant %q", got, want)
	}
}

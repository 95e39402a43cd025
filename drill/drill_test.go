package drill

import (
	"context"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/kdr-io/kdr/internal/kdrtest"
)

// runScenario runs a shipped scenario against the kdr binary in a temp
// state dir and returns its report (whatever the verdict).
func runScenario(t *testing.T, file string) *Report {
	t.Helper()
	if testing.Short() {
		t.Skip("runs kdr up with two clusters and a failover")
	}
	bin := kdrtest.Binary(t)
	s, topo, err := LoadScenario(file, "")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	dir := t.TempDir()
	rep, err := Run(ctx, Options{Scenario: s, Topology: topo, TopologyFile: s.TopologyPath(), StateDir: dir, Bin: bin,
		Out: testWriter{t}})
	if rep == nil {
		t.Fatalf("drill did not run: %v", err)
	}
	t.Logf("%s: %s (report in %s)", s.Name, rep.Line(), dir)
	if err != nil {
		if b, rerr := os.ReadFile(dir + "/logs/drill-kdr-up.log"); rerr == nil && len(b) > 0 {
			t.Logf("kdr up log tail:\n%s", tail(string(b), 3000))
		}
		t.Errorf("drill failed: %v", err)
	}
	return rep
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(string(b[:len(b)-1]))
	return len(b), nil
}

// (a) A planned switchover under continuous load loses nothing the
// producer got acknowledged, the group sees every record once, and both
// RTOs are measured.
func TestDrillPlannedSwitchoverUnderLoad(t *testing.T) {
	rep := runScenario(t, "../scenarios/planned-switchover.yaml")
	if rep.Lost != 0 || rep.Duplicated != 0 {
		t.Errorf("lost %d, duplicated %d; want 0 and 0 (lost: %v, duplicated: %v)", rep.Lost, rep.Duplicated, rep.LostRecords, rep.DuplicatedRecords)
	}
	if rep.Acked == 0 || rep.Consumed == 0 {
		t.Errorf("no traffic: acked %d, consumed %d", rep.Acked, rep.Consumed)
	}
	if rep.ProducerRTOSeconds <= 0 || rep.ConsumerRTOSeconds <= 0 {
		t.Errorf("RTO not measured: producer %.3fs, consumer %.3fs", rep.ProducerRTOSeconds, rep.ConsumerRTOSeconds)
	}
	goal := "met"
	if rep.RTOSeconds >= 5 {
		goal = "NOT met (reported, not asserted)"
	}
	t.Logf("RTO: producer %.2fs, consumer %.2fs; goal < 5s %s", rep.ProducerRTOSeconds, rep.ConsumerRTOSeconds, goal)
	if len(rep.Failovers) != 1 || rep.Failovers[0].Error != "" || rep.ActiveAtEnd != "west" {
		t.Errorf("want one successful switchover to west, got %+v, active at end %s", rep.Failovers, rep.ActiveAtEnd)
	}
}

// (b) Region outage and promote: the records lost are exactly the old
// primary's unreplicated suffix (its acknowledged records beyond the
// promote's LastReceived, read once it is back), and the failback loses
// nothing more.
func TestDrillRegionOutagePromoteLosesExactlyTheUnreplicatedSuffix(t *testing.T) {
	rep := runScenario(t, "../scenarios/region-outage-promote.yaml")
	if !rep.UnreplicatedRead {
		t.Fatalf("the unreplicated suffix was not read (steps: %+v)", rep.Steps)
	}
	var lost []string
	for _, r := range rep.LostRecords {
		lost = append(lost, r.ID)
	}
	suffix := slices.Clone(rep.UnreplicatedIDs)
	slices.Sort(lost)
	slices.Sort(suffix)
	if !slices.Equal(lost, suffix) {
		t.Errorf("lost %d records, unreplicated suffix %d: they differ\nlost:   %v\nsuffix: %v", len(lost), len(suffix), lost, suffix)
	}
	t.Logf("unreplicated suffix %d records = lost %d; RPO %.2fs; RTO producer %.2fs consumer %.2fs; duplicates %d",
		len(suffix), len(lost), rep.RPOSeconds, rep.ProducerRTOSeconds, rep.ConsumerRTOSeconds, rep.Duplicated)
	var failback *FailoverSummary
	for i, f := range rep.Failovers {
		if f.Error != "" {
			t.Errorf("%s to %s failed: %s", f.Kind, f.To, f.Error)
		}
		if f.Kind == ActFailback {
			failback = &rep.Failovers[i]
		}
	}
	if failback == nil || failback.Error != "" || rep.ActiveAtEnd != "east" {
		t.Fatalf("want a successful failback to east; active at end %s", rep.ActiveAtEnd)
	}
	// The orchestrator's own account of east's diverged records covers
	// every lost record.
	diverged := map[string]bool{}
	for _, id := range failback.DivergedIDs {
		diverged[id] = true
	}
	for _, id := range lost {
		if len(diverged) > 0 && !diverged[id] {
			t.Errorf("lost record %s is not among the failback's %d diverged records", id, len(diverged))
		}
	}
}

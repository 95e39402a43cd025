package cluster_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/kdr-io/kdr/broker/cluster"
	"github.com/kdr-io/kdr/broker/cluster/local"
)

// TestClusterFenceEpochsOnlyGrow checks the SetFence rule: a lower epoch is
// refused with both epochs named, an equal or higher one applies.
func TestClusterFenceEpochsOnlyGrow(t *testing.T) {
	f := cluster.NewFSM(cluster.NewState("c1"))
	if _, err := f.Apply(&cluster.SetFence{Fenced: true, Epoch: 5, Reason: "failover to west"}); err != nil {
		t.Fatal(err)
	}
	want := cluster.Fence{Fenced: true, Epoch: 5, Reason: "failover to west"}
	if got := f.State().Fence; got != want {
		t.Fatalf("fence %+v, want %+v", got, want)
	}
	_, err := f.Apply(&cluster.SetFence{Fenced: false, Epoch: 4})
	wantCode(t, err, kerr.InvalidConfig)
	if !strings.Contains(err.Error(), "4") || !strings.Contains(err.Error(), "5") {
		t.Fatalf("stale epoch error %q does not name both epochs", err)
	}
	if got := f.State().Fence; got != want {
		t.Fatalf("a refused unfence changed the fence to %+v", got)
	}
	_, err = f.Apply(&cluster.SetFence{Epoch: -1})
	wantCode(t, err, kerr.InvalidConfig)
	if _, err := f.Apply(&cluster.SetFence{Fenced: false, Epoch: 5}); err != nil {
		t.Fatalf("unfence at the same epoch: %v", err)
	}
	if _, err := f.Apply(&cluster.SetFence{Fenced: true, Epoch: 9, Reason: "again"}); err != nil {
		t.Fatalf("fence at a higher epoch: %v", err)
	}
	if got := f.State().Fence; got != (cluster.Fence{Fenced: true, Epoch: 9, Reason: "again"}) {
		t.Fatalf("fence %+v", got)
	}
}

// TestClusterFenceSurvivesLocalReopen checks a single-node broker's store
// keeps the fence, and that snapshots from before fencing read as
// unfenced at epoch 0.
func TestClusterFenceSurvivesLocalReopen(t *testing.T) {
	dir := t.TempDir()
	s, err := local.Open(dir, "c1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Propose(context.Background(), &cluster.SetFence{Fenced: true, Epoch: 2, Reason: "r"}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	re, err := local.Open(dir, "c1")
	if err != nil {
		t.Fatal(err)
	}
	if got := re.State().Fence; got != (cluster.Fence{Fenced: true, Epoch: 2, Reason: "r"}) {
		t.Fatalf("after reopen: %+v", got)
	}

	var old cluster.State
	if err := json.Unmarshal([]byte(`{"cluster_id":"c1","index":1,"brokers":{},"topics":{},"next_producer_id":0}`), &old); err != nil {
		t.Fatal(err)
	}
	if old.Fence != (cluster.Fence{}) {
		t.Fatalf("old snapshot read as %+v", old.Fence)
	}
}

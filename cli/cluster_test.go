package cli

import (
	"errors"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kdr-io/kdr/internal/kdrtest"
)

type jsonClusterStatus struct {
	ClusterID  string `json:"cluster_id"`
	Controller int32  `json:"controller"`
	Brokers    []struct {
		NodeID int32  `json:"node_id"`
		Addr   string `json:"addr"`
		Rack   string `json:"rack"`
	} `json:"brokers"`
	Fenced bool   `json:"fenced"`
	Epoch  int64  `json:"fence_epoch"`
	Reason string `json:"fence_reason"`
}

type jsonFenceChanged struct {
	Fenced bool   `json:"fenced"`
	Epoch  int64  `json:"epoch"`
	Reason string `json:"reason"`
	DryRun bool   `json:"dry_run"`
}

func clusterStatusOf(t *testing.T, addr string) jsonClusterStatus {
	t.Helper()
	return decodeJSON[jsonClusterStatus](t, mustKdr(t, addr, "", "cluster", "status", "--output", "json"))
}

// TestClusterFenceLifecycle runs fence, status and unfence against a real
// broker: a dry run changes nothing, a fence makes a producer fail with
// POLICY_VIOLATION, a stale unfence is refused and an equal one lifts it.
func TestClusterFenceLifecycle(t *testing.T) {
	b := kdrtest.StartBroker(t)
	addr := b.Addr()
	mustKdr(t, addr, "", "topic", "create", "orders", "--partitions", "1")

	s := clusterStatusOf(t, addr)
	if s.Fenced || s.Epoch != 0 || s.Controller != 1 || len(s.Brokers) != 1 || s.Brokers[0].Addr != addr || s.ClusterID == "" {
		t.Fatalf("status of a new cluster: %+v", s)
	}

	out := mustKdr(t, addr, "", "cluster", "fence", "--epoch", "4", "--reason", "failover to west", "--dry-run", "--output", "json")
	if r := decodeJSON[jsonFenceChanged](t, out); !r.DryRun || !r.Fenced || r.Epoch != 4 {
		t.Fatalf("dry run: %+v", r)
	}
	if s := clusterStatusOf(t, addr); s.Fenced {
		t.Fatalf("a dry run fenced the cluster: %+v", s)
	}

	out = mustKdr(t, addr, "", "cluster", "fence", "--epoch", "4", "--reason", "failover to west")
	if !strings.Contains(out, "fenced at epoch 4") {
		t.Fatalf("fence output: %q", out)
	}
	if s := clusterStatusOf(t, addr); !s.Fenced || s.Epoch != 4 || s.Reason != "failover to west" {
		t.Fatalf("status after fence: %+v", s)
	}
	text := mustKdr(t, addr, "", "cluster", "status")
	if !strings.Contains(text, "FENCED by failover epoch 4: failover to west") || !strings.Contains(text, addr) {
		t.Fatalf("status text:\n%s", text)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic("orders"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(t.Context(), &kgo.Record{Value: []byte("x")}).FirstErr(); !errors.Is(err, kerr.PolicyViolation) {
		t.Fatalf("produce while fenced: %v", err)
	}

	r := runKdr(t, addr, "", "cluster", "unfence", "--epoch", "3")
	if r.code != exitError || !strings.Contains(r.stderr, "INVALID_CONFIG") || !strings.Contains(r.stderr, "epoch 3") || !strings.Contains(r.stderr, "epoch 4") {
		t.Fatalf("stale unfence: exit %d, stderr %q", r.code, r.stderr)
	}
	if !clusterStatusOf(t, addr).Fenced {
		t.Fatal("a stale unfence lifted the fence")
	}
	out = mustKdr(t, addr, "", "cluster", "unfence", "--epoch", "4", "--output", "json")
	if r := decodeJSON[jsonFenceChanged](t, out); r.Fenced || r.Epoch != 4 || r.DryRun {
		t.Fatalf("unfence: %+v", r)
	}
	if s := clusterStatusOf(t, addr); s.Fenced || s.Epoch != 4 {
		t.Fatalf("status after unfence: %+v", s)
	}
	if err := cl.ProduceSync(t.Context(), &kgo.Record{Value: []byte("y")}).FirstErr(); err != nil {
		t.Fatalf("produce after unfence: %v", err)
	}
}

func TestClusterFenceFlags(t *testing.T) {
	var got *ClusterFenceOptions
	hook := func(o *ClusterFenceOptions) error { got = o; return nil }
	if err := parseWith(NewCmdClusterFence(IO{}, &globalOptions{}, hook), "--epoch", "7", "--reason", "r", "--brokers", "h:1"); err != nil {
		t.Fatal(err)
	}
	if !got.Fenced || got.Epoch != 7 || got.Reason != "r" || got.Conn.Brokers[0] != "h:1" {
		t.Fatalf("parsed %+v", got)
	}
	if err := parseWith(NewCmdClusterUnfence(IO{}, &globalOptions{}, hook), "--epoch", "7"); err != nil || got.Fenced {
		t.Fatalf("unfence parsed %+v, %v", got, err)
	}
	for _, args := range [][]string{
		{"--reason", "r"},                  // no epoch
		{"--epoch", "-2", "--reason", "r"}, // negative
		{"--epoch", "3"},                   // no reason
		{"--epoch", "x", "--reason", "r"},  // not a number
		{"--epoch", "3", "--reason", "r", "extra"},
	} {
		if err := parseWith(NewCmdClusterFence(IO{}, &globalOptions{}, hook), args...); err == nil {
			t.Errorf("%v: accepted", args)
		}
	}
}

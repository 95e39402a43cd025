package up_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kdr-io/kdr/internal/kdrtest"
	"github.com/kdr-io/kdr/status"
	"github.com/kdr-io/kdr/topology"
	"github.com/kdr-io/kdr/up"
)

const restartYAML = `apiVersion: kdr.io/v1
kind: Topology
metadata:
  name: restarttest
clusters:
  - name: a
    region: r1
    local: {brokers: 3, basePort: %d}
  - name: b
    region: r2
    local: {brokers: 1, basePort: %d}
replication:
  - type: active-passive
    primary: a
    standby: b
    mirror: {naming: identity}
mirror:
  refreshInterval: 500ms
`

// order is the part of a demo order the test reads.
type order struct {
	ID      int64     `json:"order_id"`
	Created time.Time `json:"created"`
}

// TestUpRestartResumesOrderIDsAndWaitsForThisRun runs kdr up with the demo
// producer three times on one state dir. Each time it says it is ready,
// the cluster as its controller sees it has every broker and no offline
// partition, and an order written in this run is already on the mirror's
// target; across the runs no order id is written twice, each run starting
// right after the last id of the one before.
func TestUpRestartResumesOrderIDsAndWaitsForThisRun(t *testing.T) {
	bin := kdrtest.Binary(t)
	used := map[int]bool{}
	pa, pb := kdrtest.FreeBasePort(t, 3, used), kdrtest.FreeBasePort(t, 1, used)
	topo, err := topology.Parse([]byte(fmt.Sprintf(restartYAML, pa, pb)), "restart.yaml")
	if err != nil {
		t.Fatal(err)
	}
	a, b := *topo.ClusterByName("a"), *topo.ClusterByName("b")
	state := t.TempDir()
	logs := &kdrtest.Output{}
	logger := slog.New(slog.NewTextHandler(logs, nil))

	const runs = 3
	var starts []time.Time
	var onB []int64 // the highest order id on b when each run was ready
	for run := range runs + 1 {
		// The last run, without the producer, only serves the orders to read.
		demo := run < runs
		ctx, cancel := context.WithCancel(context.Background())
		ready := make(chan []string, 1)
		done := make(chan error, 1)
		starts = append(starts, time.Now())
		go func() {
			done <- up.Run(ctx, up.Options{Topology: topo, StateDir: state, Bin: bin, DemoProducer: demo, Logger: logger,
				OnHealthy: func(context.Context, up.Endpoints) ([]up.ExtraEndpoint, func()) {
					// Right as kdr up declares itself ready, before it
					// prints so: what a user would see then.
					var problems []string
					for _, c := range []topology.Cluster{a, b} {
						if s := controllerView(c); !s.Healthy || s.OfflinePartitions != 0 {
							problems = append(problems, fmt.Sprintf("cluster %s's controller saw %d/%d brokers, %d offline partitions (%s)",
								c.Name, s.BrokersUp(), s.BrokersExpected, s.OfflinePartitions, s.Error))
						}
					}
					if demo {
						orders, err := readOrders(b)
						if err != nil {
							problems = append(problems, err.Error())
						}
						var m int64
						for _, o := range orders {
							m = max(m, o.ID)
						}
						onB = append(onB, m)
					}
					ready <- problems
					return nil, nil
				}})
		}()
		select {
		case problems := <-ready:
			for _, p := range problems {
				t.Errorf("run %d: when kdr up was ready, %s", run, p)
			}
		case err := <-done:
			t.Fatalf("run %d: kdr up ended before it was ready: %v\n%s", run, err, logs.String())
		case <-time.After(3 * time.Minute):
			cancel()
			t.Fatalf("run %d: kdr up not ready within 3 minutes\n%s", run, logs.String())
		}
		if !demo {
			defer func() { cancel(); <-done }()
			break
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("run %d: kdr up: %v", run, err)
		}
	}

	// Every order on a, by run (its created time): ids unique, each run
	// from the last id of the one before plus one, and on b when that
	// run was ready.
	orders, err := readOrders(a)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int64]bool{}
	first, last := make([]int64, runs), make([]int64, runs)
	for _, o := range orders {
		if seen[o.ID] {
			t.Errorf("order id %d written twice", o.ID)
		}
		seen[o.ID] = true
		run := 0
		for i, s := range starts[:runs] {
			if !o.Created.Before(s) {
				run = i
			}
		}
		if first[run] == 0 || o.ID < first[run] {
			first[run] = o.ID
		}
		last[run] = max(last[run], o.ID)
	}
	for run := range runs {
		if run > 0 && first[run] != last[run-1]+1 {
			t.Errorf("run %d started at order id %d, want %d (run %d ended at %d)", run, first[run], last[run-1]+1, run-1, last[run-1])
		}
		if first[run] == 0 || onB[run] < first[run] {
			t.Errorf("run %d was ready with the highest order id on b %d, not one of the run (from %d)", run, onB[run], first[run])
		}
	}
	t.Logf("%d orders; runs' first ids %v, last ids %v; on b when ready %v", len(orders), first, last, onB)
}

// controllerView is cluster c as its controller's Metadata describes it.
func controllerView(c topology.Cluster) status.Cluster {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.BootstrapServers()...))
	if err != nil {
		return status.ClusterFromMetadata(c, nil, err)
	}
	defer cl.Close()
	meta, err := status.FetchMetadata(ctx, cl)
	if err != nil || meta.ControllerID < 1 || int(meta.ControllerID) > len(c.BootstrapServers()) {
		return status.ClusterFromMetadata(c, meta, err)
	}
	one, err := kgo.NewClient(kgo.SeedBrokers(c.BootstrapServers()[meta.ControllerID-1]))
	if err != nil {
		return status.ClusterFromMetadata(c, nil, err)
	}
	defer one.Close()
	req := kmsg.NewPtrMetadataRequest()
	req.Topics = nil // all topics
	meta, err = req.RequestWith(ctx, one.SeedBrokers()[0])
	return status.ClusterFromMetadata(c, meta, err)
}

// readOrders reads every order up.DemoTopic holds on c, up to its end
// offsets now.
func readOrders(c topology.Cluster) ([]order, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.BootstrapServers()...), kgo.ConsumeTopics(up.DemoTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, up.DemoTopic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("cluster %s: end offsets of %s: %w", c.Name, up.DemoTopic, err)
	}
	left := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			left[o.Partition] = o.Offset
		}
	})
	var out []order
	for len(left) > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil, fmt.Errorf("cluster %s: reading %s: %w (partitions left %v)", c.Name, up.DemoTopic, ctx.Err(), left)
		}
		var derr error
		fs.EachRecord(func(r *kgo.Record) {
			end, ok := left[r.Partition]
			if !ok || r.Offset >= end {
				return
			}
			var o order
			if err := json.Unmarshal(r.Value, &o); err != nil {
				derr = fmt.Errorf("cluster %s: record %q: %w", c.Name, r.Value, err)
			}
			out = append(out, o)
			if r.Offset == end-1 {
				delete(left, r.Partition)
			}
		})
		if derr != nil {
			return nil, derr
		}
	}
	return out, nil
}

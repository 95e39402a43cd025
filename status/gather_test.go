package status

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kdr-io/kdr/internal/kdrtest"
	"github.com/kdr-io/kdr/topology"
)

func TestStatusGatherLagLatencyAndDeadCluster(t *testing.T) {
	src, tgt := kdrtest.StartBroker(t), kdrtest.StartBroker(t)
	topo := &topology.Topology{Metadata: topology.Metadata{Name: "t"},
		Clusters: []topology.Cluster{
			{Name: "a", Bootstrap: []string{src.ListenAddr()}},
			{Name: "b", Bootstrap: []string{tgt.ListenAddr()}},
			{Name: "dead", Bootstrap: []string{kdrtest.SilentAddr(t)}},
		},
		Replication: []topology.Pattern{
			{Type: topology.ActivePassive, Primary: "a", Standby: "b"},
			{Type: topology.ActivePassive, Primary: "dead", Standby: "b"},
		}}
	ctx := context.Background()
	cl, err := kgo.NewClient(kgo.SeedBrokers(src.ListenAddr()), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	for _, topic := range []string{"orders", "mm2-offset-syncs.b.internal"} {
		if _, err := adm.CreateTopic(ctx, 2, 1, nil, topic); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 10 {
		r := &kgo.Record{Topic: "orders", Partition: int32(i % 2), Value: []byte("x")}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
		r.Topic = "mm2-offset-syncs.b.internal" // internal: never counted
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	// The workers committed 2 records of partition 0, none of partition 1.
	offsets := kadm.Offsets{}
	offsets.Add(kadm.Offset{Topic: "orders", Partition: 0, At: 2, LeaderEpoch: -1})
	if _, err := adm.CommitOffsets(ctx, "kdr-mirror-a-b", offsets); err != nil {
		t.Fatal(err)
	}
	metrics := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, strings.ReplaceAll(exposition, "east->west", "a->b"))
	}))
	defer metrics.Close()

	start := time.Now()
	r := Gather(ctx, topo, Options{Timeout: time.Second, WorkerMetrics: map[string][]string{"a->b": {metrics.URL + "/metrics"}}})
	if took := time.Since(start); took > 4*time.Second {
		t.Fatalf("Gather took %s with a 1s timeout", took)
	}
	if r.Healthy || r.ActiveCluster != "a" || len(r.Clusters) != 3 || len(r.Flows) != 2 {
		t.Fatalf("report %+v", r)
	}
	if a := r.Clusters[0]; !a.Reachable || !a.Healthy || a.BrokersExpected != 1 {
		t.Fatalf("cluster a %+v", a)
	}
	if d := r.Clusters[2]; d.Reachable || d.Healthy || d.Error == "" {
		t.Fatalf("dead cluster %+v", d)
	}
	f := r.Flows[0]
	if f.State != FlowStopped || f.Healthy || f.LagRecords != 3+5 || f.ReplicationLatencyP99Seconds == nil || *f.ReplicationLatencyP99Seconds != 0.004 {
		t.Fatalf("flow a->b %+v", f)
	}
	if d := r.Flows[1]; d.State != FlowUnknown || d.Healthy || d.LagRecords != -1 {
		t.Fatalf("flow from the dead cluster %+v", d)
	}
}

// TestStatusRefusedClusterSaysWhy: a cluster whose brokers all refuse
// connections (the demo stopped) is reported with the dial error, well
// before the timeout.
func TestStatusRefusedClusterSaysWhy(t *testing.T) {
	refused := []string{kdrtest.FreeAddr(t), kdrtest.FreeAddr(t), kdrtest.FreeAddr(t)}
	topo := &topology.Topology{Metadata: topology.Metadata{Name: "t"},
		Clusters: []topology.Cluster{{Name: "gone", Bootstrap: refused}}}
	start := time.Now()
	r := Gather(context.Background(), topo, Options{Timeout: 5 * time.Second})
	took := time.Since(start)
	c := r.Clusters[0]
	if c.Reachable || c.Healthy || !strings.Contains(c.Error, ": connect: connection refused") {
		t.Fatalf("cluster %+v, want unreachable with the dial error", c)
	}
	// How long it took is a figure, not an assertion: the dial error above
	// is what shows the probe ended on the refusal, not on the timeout.
	t.Logf("Gather took %s for a refused cluster (timeout 5s)", took)
}

// TestStatusIdleFlowIsHealthy: a flow with no workers in its group and no
// topic on its source to mirror is idle, and the report healthy.
func TestStatusIdleFlowIsHealthy(t *testing.T) {
	src, tgt := kdrtest.StartBroker(t), kdrtest.StartBroker(t)
	topo := &topology.Topology{Metadata: topology.Metadata{Name: "t"},
		Clusters: []topology.Cluster{
			{Name: "a", Bootstrap: []string{src.ListenAddr()}},
			{Name: "b", Bootstrap: []string{tgt.ListenAddr()}},
		},
		Replication: []topology.Pattern{{Type: topology.ActivePassive, Primary: "a", Standby: "b"}}}
	r := Gather(context.Background(), topo, Options{Timeout: 5 * time.Second})
	if !r.Healthy || len(r.Flows) != 1 {
		t.Fatalf("report %+v", r)
	}
	if f := r.Flows[0]; f.Name != "a->b" || f.State != FlowIdle || f.Workers != 0 || f.LagRecords != 0 || !f.Healthy || f.Error != "" {
		t.Fatalf("flow %+v, want idle and healthy", f)
	}
}

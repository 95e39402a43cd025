package cluster_test

import (
	"context"
	"errors"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/kdr-io/kdr/broker/cluster"
	"github.com/kdr-io/kdr/broker/cluster/local"
)

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// metric reads one sample from reg; labels are name/value pairs.
func metric(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	next:
		for _, m := range f.GetMetric() {
			for i := 0; i < len(labels); i += 2 {
				found := false
				for _, l := range m.GetLabel() {
					found = found || (l.GetName() == labels[i] && l.GetValue() == labels[i+1])
				}
				if !found {
					continue next
				}
			}
			if m.GetGauge() != nil {
				return m.GetGauge().GetValue()
			}
			return m.GetCounter().GetValue()
		}
	}
	t.Fatalf("no metric %s%v", name, labels)
	return 0
}

// controllerFixture is a local store with brokers 1–3, topic t
// (assignment [1 2 3], [2 3 1], [3 1 2]), and topics u (unclean election
// enabled) and v, each one partition on [3 1] with only 3 in sync, plus an
// inactive controller on a fake clock.
type controllerFixture struct {
	store *local.Store
	ctrl  *cluster.Controller
	clock *fakeClock
	reg   *prometheus.Registry
}

func newControllerFixture(t *testing.T) *controllerFixture {
	t.Helper()
	s, err := local.Open(t.TempDir(), "c1")
	if err != nil {
		t.Fatal(err)
	}
	threeBrokers(t, s)
	ctx := context.Background()
	for _, c := range []cluster.Command{
		&cluster.CreateTopic{Name: "t", ID: cluster.NewTopicID(), Partitions: 3, Assignment: [][]int32{{1, 2, 3}, {2, 3, 1}, {3, 1, 2}}},
		&cluster.CreateTopic{Name: "u", ID: cluster.NewTopicID(), Partitions: 1, Assignment: [][]int32{{3, 1}}, Configs: unclean},
		&cluster.CreateTopic{Name: "v", ID: cluster.NewTopicID(), Partitions: 1, Assignment: [][]int32{{3, 1}}},
		&cluster.AlterPartition{Topic: "u", LeaderID: 3, NewISR: ids(3)},
		&cluster.AlterPartition{Topic: "v", LeaderID: 3, NewISR: ids(3)},
	} {
		if _, err := s.Propose(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	f := &controllerFixture{store: s, clock: &fakeClock{now: time.Unix(1000, 0)}, reg: prometheus.NewRegistry()}
	f.ctrl, err = cluster.NewController(s, cluster.ControllerConfig{Now: f.clock.Now, Registerer: f.reg})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// beat heartbeats for each broker at its current epoch.
func (f *controllerFixture) beat(t *testing.T, nodes ...int32) {
	t.Helper()
	for _, id := range nodes {
		if fenced, err := f.ctrl.Heartbeat(context.Background(), id, f.store.State().Brokers[id].Epoch); err != nil || fenced {
			t.Fatalf("heartbeat %d: fenced %v, %v", id, fenced, err)
		}
	}
}

func (f *controllerFixture) tick() { cluster.TickController(f.ctrl, context.Background()) }

func (f *controllerFixture) partition(topic string, i int) cluster.Partition {
	return f.store.State().Topics[topic].Partitions[i]
}

func TestClusterControllerFencesSilentBrokerAndRestoresIt(t *testing.T) {
	f := newControllerFixture(t)
	ctx := context.Background()
	if _, err := f.ctrl.Heartbeat(ctx, 1, 1); !errors.Is(err, cluster.ErrNotController) || !errors.Is(err, kerr.NotController) {
		t.Fatalf("inactive controller took a heartbeat: %v", err)
	}
	f.ctrl.SetActive(true)
	if metric(t, f.reg, "kdr_controller_active") != 1 {
		t.Fatal("kdr_controller_active is not 1")
	}

	// Brokers get a full session timeout (6 s) from activation.
	f.clock.Advance(4 * time.Second)
	f.beat(t, 1, 2)
	f.tick()
	if f.store.State().Brokers[3].Fenced {
		t.Fatal("broker 3 fenced within its grace period")
	}
	f.clock.Advance(3 * time.Second)
	f.beat(t, 1, 2)
	f.tick()
	if !f.store.State().Brokers[3].Fenced {
		t.Fatal("broker 3 not fenced after 7 s of silence")
	}
	for _, c := range []struct {
		topic string
		i     int
		want  cluster.Partition
	}{
		{"t", 0, cluster.Partition{Leader: 1, PartitionEpoch: 1, Replicas: ids(1, 2, 3), ISR: ids(1, 2)}},
		{"t", 1, cluster.Partition{Leader: 2, PartitionEpoch: 1, Replicas: ids(2, 3, 1), ISR: ids(2, 1)}},
		{"t", 2, cluster.Partition{Leader: 1, LeaderEpoch: 1, PartitionEpoch: 1, Replicas: ids(3, 1, 2), ISR: ids(1, 2)}},
		{"u", 0, cluster.Partition{Leader: 1, LeaderEpoch: 1, PartitionEpoch: 2, Replicas: ids(3, 1), ISR: ids(1)}}, // unclean
		{"v", 0, cluster.Partition{Leader: -1, LeaderEpoch: 1, PartitionEpoch: 2, Replicas: ids(3, 1), ISR: ids(3)}},
	} {
		if got := f.partition(c.topic, c.i); !reflect.DeepEqual(got, c.want) {
			t.Fatalf("%s-%d after fencing 3: %+v, want %+v", c.topic, c.i, got, c.want)
		}
	}
	for name, want := range map[string]float64{
		"kdr_controller_fenced_brokers": 1, "kdr_controller_offline_partitions": 1, "kdr_controller_under_replicated_partitions": 5,
	} {
		if got := metric(t, f.reg, name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	if c, u := metric(t, f.reg, "kdr_controller_elections_total", "kind", "clean"), metric(t, f.reg, "kdr_controller_elections_total", "kind", "unclean"); c != 1 || u != 1 {
		t.Fatalf("elections clean %v, unclean %v; want 1, 1", c, u)
	}

	// Broker 3 comes back: unfenced, and it leads v-0 again, where it is
	// the only in-sync replica. It is not in t-2's ISR until the leader
	// adds it.
	if _, err := f.ctrl.Heartbeat(ctx, 3, 0); !errors.Is(err, kerr.StaleBrokerEpoch) {
		t.Fatalf("heartbeat with an old epoch: %v", err)
	}
	f.beat(t, 1, 2, 3)
	if f.store.State().Brokers[3].Fenced {
		t.Fatal("broker 3 still fenced after a heartbeat")
	}
	if p := f.partition("v", 0); p.Leader != 3 || p.LeaderEpoch != 2 {
		t.Fatalf("v-0 after unfencing 3: %+v", p)
	}
	if _, err := f.store.Propose(ctx, &cluster.AlterPartition{Topic: "t", Partition: 2, LeaderID: 1, LeaderEpoch: 1, PartitionEpoch: 1, NewISR: ids(1, 2, 3)}); err != nil {
		t.Fatal(err)
	}

	// The preferred-leader check (every 30 s from activation) gives t-2
	// back to broker 3. u-0 stays: 3 lost its data there.
	for elapsed := 7 * time.Second; elapsed+4*time.Second < 30*time.Second; elapsed += 4 * time.Second {
		f.clock.Advance(4 * time.Second)
		f.beat(t, 1, 2, 3)
		f.tick()
		if p := f.partition("t", 2); p.Leader != 1 {
			t.Fatalf("t-2 moved before the check interval: %+v", p)
		}
	}
	f.clock.Advance(4 * time.Second)
	f.beat(t, 1, 2, 3)
	f.tick()
	if p := f.partition("t", 2); p.Leader != 3 || p.LeaderEpoch != 2 {
		t.Fatalf("t-2 after the preferred check: %+v, want leader 3 at epoch 2", p)
	}
	if p := f.partition("u", 0); p.Leader != 1 {
		t.Fatalf("u-0 after the preferred check: %+v, want leader 1", p)
	}
	if got := metric(t, f.reg, "kdr_controller_elections_total", "kind", "preferred"); got != 1 {
		t.Fatalf("preferred elections %v, want 1", got)
	}
	if got := metric(t, f.reg, "kdr_controller_offline_partitions"); got != 0 {
		t.Fatalf("offline partitions %v, want 0", got)
	}
}

func TestClusterControllerInactiveDoesNothing(t *testing.T) {
	f := newControllerFixture(t)
	f.ctrl.SetActive(true)
	f.ctrl.SetActive(false)
	f.clock.Advance(time.Hour)
	f.tick()
	if n := f.store.State().FencedBrokers(); n != 0 {
		t.Fatalf("inactive controller fenced %d brokers", n)
	}
	if _, err := f.ctrl.Heartbeat(context.Background(), 1, 1); !errors.Is(err, cluster.ErrNotController) {
		t.Fatalf("inactive controller took a heartbeat: %v", err)
	}
	if metric(t, f.reg, "kdr_controller_active") != 0 {
		t.Fatal("kdr_controller_active is not 0")
	}

	// Becoming active again starts every session afresh: nobody is fenced
	// for the hour the controller was not looking.
	f.ctrl.SetActive(true)
	f.tick()
	f.clock.Advance(5 * time.Second)
	f.tick()
	if n := f.store.State().FencedBrokers(); n != 0 {
		t.Fatalf("new controller fenced %d brokers without a grace period", n)
	}
	f.clock.Advance(2 * time.Second)
	f.tick()
	if n := f.store.State().FencedBrokers(); n != 3 {
		t.Fatalf("%d brokers fenced after 7 s without heartbeats, want 3", n)
	}
}

func TestClusterControllerReRegistration(t *testing.T) {
	f := newControllerFixture(t)
	ctx := context.Background()
	f.ctrl.SetActive(true)
	f.beat(t, 1, 2, 3)

	// Broker 2 restarts: its new registration is fenced, and the heartbeats
	// of the old incarnation are refused.
	res, err := f.store.Propose(ctx, &cluster.RegisterBroker{Broker: cluster.Broker{NodeID: 2, Host: "127.0.0.1", Port: 9092}})
	if err != nil {
		t.Fatal(err)
	}
	if b := res.(cluster.Broker); !b.Fenced || b.Epoch != 2 {
		t.Fatalf("re-registered broker %+v, want fenced at epoch 2", b)
	}
	if p := f.partition("t", 1); p.Leader == 2 {
		t.Fatalf("fenced broker 2 still leads t-1: %+v", p)
	}
	if _, err := f.ctrl.Heartbeat(ctx, 2, 1); !errors.Is(err, kerr.StaleBrokerEpoch) {
		t.Fatalf("heartbeat of the old incarnation: %v", err)
	}
	if fenced, err := f.ctrl.Heartbeat(ctx, 2, 2); err != nil || fenced {
		t.Fatalf("heartbeat of the new incarnation: fenced %v, %v", fenced, err)
	}

	// A broker registered after activation gets its grace from when the
	// controller first sees it.
	f.clock.Advance(10 * time.Second)
	if _, err := f.store.Propose(ctx, &cluster.RegisterBroker{Broker: cluster.Broker{NodeID: 4, Host: "127.0.0.1", Port: 9094}}); err != nil {
		t.Fatal(err)
	}
	f.beat(t, 1, 2, 3)
	f.tick()
	if f.store.State().Brokers[4].Fenced {
		t.Fatal("new broker fenced on first sight")
	}
	if _, err := f.ctrl.Heartbeat(ctx, 9, 1); !errors.Is(err, kerr.BrokerIDNotRegistered) {
		t.Fatalf("heartbeat of an unknown broker: %v", err)
	}
}

func TestClusterControllerConfigValidation(t *testing.T) {
	s, err := local.Open(t.TempDir(), "c1")
	if err != nil {
		t.Fatal(err)
	}
	for name, cfg := range map[string]cluster.ControllerConfig{
		"negative session":  {SessionTimeout: -time.Second},
		"tick over session": {SessionTimeout: time.Second, TickInterval: 2 * time.Second},
		"threshold":         {LeaderImbalanceThreshold: 1.5},
	} {
		if _, err := cluster.NewController(s, cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	reg := prometheus.NewRegistry()
	if _, err := cluster.NewController(s, cluster.ControllerConfig{Registerer: reg}); err != nil {
		t.Fatal(err)
	}
	if _, err := cluster.NewController(s, cluster.ControllerConfig{Registerer: reg}); err == nil {
		t.Fatal("registered the controller metrics twice")
	}
}

func TestClusterControllerRunStopsWithContext(t *testing.T) {
	f := newControllerFixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { f.ctrl.Run(ctx); close(done) }()
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

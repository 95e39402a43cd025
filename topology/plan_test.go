package topology

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kdr-io/kdr/internal/kdrtest"
	"github.com/kdr-io/kdr/mirror"
)

// planCluster is one in-process broker and an admin client for the test.
type planCluster struct {
	t    *testing.T
	addr string
	adm  *kadm.Client
}

func startPlanCluster(t *testing.T) *planCluster {
	t.Helper()
	b := kdrtest.StartBroker(t)
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.MetadataMinAge(10*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return &planCluster{t: t, addr: b.Addr(), adm: kadm.NewClient(cl)}
}

func (c *planCluster) create(name string, partitions int32, configs map[string]string) {
	c.t.Helper()
	cfg := map[string]*string{}
	for k, v := range configs {
		cfg[k] = kadm.StringPtr(v)
	}
	resp, err := c.adm.CreateTopic(testCtx(c.t), partitions, 1, cfg, name)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		c.t.Fatalf("creating %s: %v", name, err)
	}
}

func (c *planCluster) grow(name string, partitions int) {
	c.t.Helper()
	resps, err := c.adm.UpdatePartitions(testCtx(c.t), partitions, name)
	if err == nil {
		err = resps.Error()
	}
	if err != nil {
		c.t.Fatalf("growing %s to %d partitions: %v", name, partitions, err)
	}
}

func (c *planCluster) setConfig(topic, key, value string) {
	c.t.Helper()
	resps, err := c.adm.AlterTopicConfigs(testCtx(c.t), []kadm.AlterConfig{{Op: kadm.SetConfig, Name: key, Value: &value}}, topic)
	if err == nil {
		var r kadm.AlterConfigsResponse
		if r, err = resps.On(topic, nil); err == nil {
			err = r.Err
		}
	}
	if err != nil {
		c.t.Fatalf("setting %s=%s on %s: %v", key, value, topic, err)
	}
}

// topicConfig is the topic's value of key on the cluster.
func (c *planCluster) topicConfig(topic, key string) string {
	c.t.Helper()
	rcs, err := c.adm.DescribeTopicConfigs(testCtx(c.t), topic)
	if err != nil {
		c.t.Fatal(err)
	}
	rc, err := rcs.On(topic, nil)
	if err == nil {
		err = rc.Err
	}
	if err != nil {
		c.t.Fatalf("describing %s: %v", topic, err)
	}
	for _, cfg := range rc.Configs {
		if cfg.Key == key && cfg.Value != nil {
			return *cfg.Value
		}
	}
	return ""
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// sourceTopics creates the test's source topics on east: a compacted one,
// one with retention.ms (and an excluded config), an internal one and,
// under prefix naming, a remote topic of west's.
func sourceTopics(east *planCluster) {
	east.create("orders", 3, map[string]string{"cleanup.policy": "compact"})
	east.create("payments", 2, map[string]string{"retention.ms": "86400000", "min.insync.replicas": "1"})
	east.create("audit.internal", 1, nil)
	east.create("west.returns", 1, nil)
}

// twoClusters is east → west, active-passive, with the given naming.
func twoClusters(east, west *planCluster, naming string) *Topology {
	return &Topology{
		APIVersion: APIVersion, Kind: Kind, Metadata: Metadata{Name: "test"},
		Clusters: []Cluster{
			{Name: "east", Bootstrap: []string{east.addr}},
			{Name: "west", Bootstrap: []string{west.addr}},
		},
		Replication: []Pattern{{Type: ActivePassive, Primary: "east", Standby: "west", Mirror: MirrorSettings{Naming: naming}}},
	}
}

// planned is one change reduced to what the tests compare.
type planned struct {
	action            Action
	cluster, topic    string
	partitions        int32
	replicationFactor int16
	configs           string // k=v,k=v sorted, or, for configure, k:old→new
}

func (p planned) String() string {
	return fmt.Sprintf("%s %s/%s p=%d rf=%d %s", p.action, p.cluster, p.topic, p.partitions, p.replicationFactor, p.configs)
}

func summarize(r *PlanResult) []planned {
	var out []planned
	for _, c := range r.Changes {
		p := planned{action: c.Action, cluster: c.Cluster, topic: c.Topic, partitions: c.Detail.Partitions, replicationFactor: c.Detail.ReplicationFactor}
		var kv []string
		for k, v := range c.Detail.Configs {
			kv = append(kv, k+"="+v)
		}
		for _, cc := range c.Detail.ConfigChanges {
			old := "<none>"
			if cc.Old != nil {
				old = *cc.Old
			}
			kv = append(kv, cc.Key+":"+old+"→"+cc.New)
		}
		if c.Action == ActionGrow {
			kv = append(kv, fmt.Sprintf("from=%d", c.Detail.CurrentPartitions))
		}
		slices.Sort(kv)
		p.configs = strings.Join(kv, ",")
		out = append(out, p)
	}
	return out
}

// samePlan fails the test unless r's changes are exactly want, as a set.
func samePlan(t *testing.T, what string, r *PlanResult, want ...planned) {
	t.Helper()
	got := summarize(r)
	key := func(p planned) string { return p.String() }
	gs, ws := make([]string, len(got)), make([]string, len(want))
	for i := range got {
		gs[i] = key(got[i])
	}
	for i := range want {
		ws[i] = key(want[i])
	}
	slices.Sort(gs)
	slices.Sort(ws)
	if !slices.Equal(gs, ws) {
		t.Fatalf("%s:\ngot\n\t%s\nwant\n\t%s", what, strings.Join(gs, "\n\t"), strings.Join(ws, "\n\t"))
	}
}

func mustPlan(t *testing.T, topo *Topology) *PlanResult {
	t.Helper()
	r, err := Plan(testCtx(t), topo, PlanOptions{})
	if err != nil {
		t.Fatalf("Plan: %v", err)
	}
	return r
}

var (
	startEastWest = planned{action: ActionStartFlow, cluster: "east"}
	syncsOnEast   = planned{action: ActionCreate, cluster: "east", topic: "mm2-offset-syncs.west.internal", partitions: 1, replicationFactor: 1, // 3 capped at one broker, as the workers make it
		configs: "cleanup.policy=delete,retention.ms=604800000"}
	heartbeatsOnWest  = planned{action: ActionCreate, cluster: "west", topic: "heartbeats", partitions: 1, replicationFactor: 1, configs: "cleanup.policy=compact"}
	checkpointsOnWest = planned{action: ActionCreate, cluster: "west", topic: "east.checkpoints.internal", partitions: 1, replicationFactor: 1, configs: "cleanup.policy=compact"}
)

func TestTopologyPlanApplyPrefix(t *testing.T) {
	east, west := startPlanCluster(t), startPlanCluster(t)
	sourceTopics(east)
	topo := twoClusters(east, west, "prefix")

	// A fresh target: every remote and internal topic is to be created;
	// audit.internal (internal) and west.returns (came from west) are not.
	samePlan(t, "plan on a fresh target", mustPlan(t, topo),
		syncsOnEast, heartbeatsOnWest, checkpointsOnWest,
		planned{action: ActionCreate, cluster: "west", topic: "east.orders", partitions: 3, replicationFactor: 1, configs: "cleanup.policy=compact"},
		planned{action: ActionCreate, cluster: "west", topic: "east.payments", partitions: 2, replicationFactor: 1, configs: "retention.ms=86400000"},
		startEastWest)

	var steps []string
	done, err := Apply(testCtx(t), topo, PlanOptions{Progress: func(c Change, err error) {
		steps = append(steps, fmt.Sprintf("%s %s/%s %v", c.Action, c.Cluster, c.Topic, err))
	}})
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if done.Count(ActionCreate) != 5 || len(done.Changes) != 5 || len(steps) != 5 {
		t.Fatalf("Apply did %+v (progress %q), want 5 creations", done.Changes, steps)
	}
	if got := west.topicConfig("east.orders", "cleanup.policy"); got != "compact" {
		t.Fatalf("east.orders cleanup.policy = %q, want compact", got)
	}
	samePlan(t, "plan right after apply", mustPlan(t, topo), startEastWest)

	// The source grows and changes a config: exactly that grow and that
	// configure.
	east.grow("orders", 5)
	east.setConfig("payments", "retention.ms", "3600000")
	east.setConfig("payments", "min.insync.replicas", "2") // excluded: never synced
	r := mustPlan(t, topo)
	samePlan(t, "plan after the source changed", r,
		planned{action: ActionGrow, cluster: "west", topic: "east.orders", partitions: 5, configs: "from=3"},
		planned{action: ActionConfigure, cluster: "west", topic: "east.payments", configs: "retention.ms:86400000→3600000"},
		startEastWest)
	if !r.HasChanges() || r.Count(ActionGrow) != 1 || r.Count(ActionConfigure) != 1 {
		t.Fatalf("counts: %+v", r.Changes)
	}
	if _, err := ApplyPlan(testCtx(t), topo, r, PlanOptions{}); err != nil {
		t.Fatalf("ApplyPlan: %v", err)
	}
	if got := west.topicConfig("east.payments", "retention.ms"); got != "3600000" {
		t.Fatalf("east.payments retention.ms = %q after apply, want 3600000", got)
	}
	// A config the target already had is left alone by incremental alters.
	if got := west.topicConfig("east.orders", "cleanup.policy"); got != "compact" {
		t.Fatalf("east.orders cleanup.policy = %q after apply, want compact", got)
	}
	final := mustPlan(t, topo)
	samePlan(t, "plan after the second apply", final, startEastWest)
	if final.HasChanges() {
		t.Fatal("HasChanges with only start-flow")
	}
	// Applying a plan twice is harmless: creations of existing topics and
	// grows to the current count succeed.
	if _, err := ApplyPlan(testCtx(t), topo, r, PlanOptions{}); err != nil {
		t.Fatalf("ApplyPlan again: %v", err)
	}
}

func TestTopologyPlanApplyIdentity(t *testing.T) {
	east, west := startPlanCluster(t), startPlanCluster(t)
	sourceTopics(east)
	west.create("orders", 2, map[string]string{"cleanup.policy": "delete"}) // exists, short and not compacted
	topo := twoClusters(east, west, "identity")

	// Identity keeps names; west.returns is mirrored too (names say nothing
	// of where a topic came from), and west's existing orders is grown and
	// reconfigured rather than created.
	samePlan(t, "identity plan", mustPlan(t, topo),
		syncsOnEast, heartbeatsOnWest, checkpointsOnWest,
		planned{action: ActionGrow, cluster: "west", topic: "orders", partitions: 3, configs: "from=2"},
		planned{action: ActionConfigure, cluster: "west", topic: "orders", configs: "cleanup.policy:delete→compact"},
		planned{action: ActionCreate, cluster: "west", topic: "payments", partitions: 2, replicationFactor: 1, configs: "retention.ms=86400000"},
		planned{action: ActionCreate, cluster: "west", topic: "west.returns", partitions: 1, replicationFactor: 1},
		startEastWest)
	done, err := Apply(testCtx(t), topo, PlanOptions{})
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if n := []int{done.Count(ActionCreate), done.Count(ActionGrow), done.Count(ActionConfigure)}; !slices.Equal(n, []int{5, 1, 1}) {
		t.Fatalf("Apply did %v (create, grow, configure), want [5 1 1]", n)
	}
	samePlan(t, "identity plan after apply", mustPlan(t, topo), startEastWest)

	// With IncludeUnchanged every wanted topic is listed once as none.
	r, err := Plan(testCtx(t), topo, PlanOptions{IncludeUnchanged: true})
	if err != nil {
		t.Fatal(err)
	}
	var none []string
	for _, c := range r.Changes {
		if c.Action == ActionNone {
			none = append(none, c.Cluster+"/"+c.Topic)
		}
	}
	slices.Sort(none)
	want := []string{"east/mm2-offset-syncs.west.internal", "west/east.checkpoints.internal", "west/heartbeats", "west/orders", "west/payments", "west/west.returns"}
	if !slices.Equal(none, want) {
		t.Fatalf("unchanged topics %v, want %v", none, want)
	}
}

// A chain east → west → central: what the plan creates on west is itself
// mirrored to central in the same plan, and one apply settles everything.
func TestTopologyPlanChain(t *testing.T) {
	east, west, central := startPlanCluster(t), startPlanCluster(t), startPlanCluster(t)
	east.create("orders", 2, map[string]string{"retention.ms": "1000000"})
	topo := &Topology{
		APIVersion: APIVersion, Kind: Kind, Metadata: Metadata{Name: "chain"},
		Clusters: []Cluster{
			{Name: "east", Bootstrap: []string{east.addr}},
			{Name: "west", Bootstrap: []string{west.addr}},
			{Name: "central", Bootstrap: []string{central.addr}},
		},
		// Downstream first: the plan must still reach a fixed point.
		Replication: []Pattern{
			{Type: ActivePassive, Primary: "west", Standby: "central"},
			{Type: ActivePassive, Primary: "east", Standby: "west"},
		},
	}
	r := mustPlan(t, topo)
	var creates []string
	for _, c := range r.Changes {
		if c.Action == ActionCreate {
			creates = append(creates, c.Cluster+"/"+c.Topic)
		}
	}
	for _, want := range []string{"west/east.orders", "central/west.east.orders", "central/west.heartbeats"} {
		if !slices.Contains(creates, want) {
			t.Fatalf("plan creates %v; want %s among them", creates, want)
		}
	}
	// west.east.orders must come after east.orders, which it mirrors.
	if slices.Index(creates, "central/west.east.orders") < slices.Index(creates, "west/east.orders") {
		t.Fatalf("creations out of order: %v", creates)
	}
	if _, err := ApplyPlan(testCtx(t), topo, r, PlanOptions{}); err != nil {
		t.Fatalf("ApplyPlan: %v", err)
	}
	if got := central.topicConfig("west.east.orders", "retention.ms"); got != "1000000" {
		t.Fatalf("central west.east.orders retention.ms = %q, want 1000000", got)
	}
	after := mustPlan(t, topo)
	if after.HasChanges() {
		t.Fatalf("plan after apply still has changes: %v", summarize(after))
	}
}

// Active-active with prefix naming: each side's topics and heartbeats go to
// the other once, never back; one apply settles it.
func TestTopologyPlanActiveActive(t *testing.T) {
	east, west := startPlanCluster(t), startPlanCluster(t)
	east.create("orders", 2, nil)
	west.create("orders", 1, nil)
	topo := &Topology{
		Clusters: []Cluster{
			{Name: "east", Bootstrap: []string{east.addr}},
			{Name: "west", Bootstrap: []string{west.addr}},
		},
		Replication: []Pattern{{Type: ActiveActive, Clusters: []string{"east", "west"}}},
	}
	r := mustPlan(t, topo)
	var creates []string
	for _, c := range r.Changes {
		if c.Action == ActionCreate {
			creates = append(creates, c.Cluster+"/"+c.Topic)
		}
	}
	slices.Sort(creates)
	want := []string{
		"east/heartbeats", "east/mm2-offset-syncs.west.internal", "east/west.checkpoints.internal",
		"east/west.heartbeats", "east/west.orders",
		"west/east.checkpoints.internal", "west/east.heartbeats", "west/east.orders", "west/heartbeats", "west/mm2-offset-syncs.east.internal",
	}
	slices.Sort(want)
	if !slices.Equal(creates, want) {
		t.Fatalf("active-active plan creates\n\t%s\nwant\n\t%s", strings.Join(creates, "\n\t"), strings.Join(want, "\n\t"))
	}
	if r.Count(ActionStartFlow) != 2 {
		t.Fatalf("want two flows to start: %v", summarize(r))
	}
	if _, err := ApplyPlan(testCtx(t), topo, r, PlanOptions{}); err != nil {
		t.Fatal(err)
	}
	if after := mustPlan(t, topo); after.HasChanges() {
		t.Fatalf("plan after apply: %v", summarize(after))
	}
}

// The plan predicts the mirror: once a real worker has run the flow on
// fresh clusters, the plan finds nothing to do, not even to start it.
func TestTopologyPlanMatchesMirror(t *testing.T) {
	east, west := startPlanCluster(t), startPlanCluster(t)
	sourceTopics(east)
	topo := twoClusters(east, west, "prefix")
	topo.Mirror.CheckpointInterval = 100 * time.Millisecond // the checkpointer creates its topic at its first cycle
	flow := topo.Flows()[0].Flow
	w, err := mirror.New(flow, mirror.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = w.Run(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait() })
	kdrtest.Eventually(t, 60*time.Second, func() (bool, string) {
		r, err := Plan(testCtx(t), topo, PlanOptions{})
		if err != nil {
			return false, err.Error()
		}
		if len(r.Changes) > 0 {
			return false, fmt.Sprintf("plan with the mirror running: %v", summarize(r))
		}
		return true, ""
	})
}

// A flow whose source has nothing to mirror is idle, as kdr status calls
// it: its workers, running or not, are in no group, and the plan does not
// ask to start them. Once the source has a topic, an empty group is a
// stopped flow.
func TestTopologyPlanIdleFlowIsNotStopped(t *testing.T) {
	east, west := startPlanCluster(t), startPlanCluster(t)
	topo := twoClusters(east, west, "prefix")
	topo.Mirror.CheckpointInterval = 100 * time.Millisecond // the checkpointer creates its topic at its first cycle
	samePlan(t, "plan of an idle flow", mustPlan(t, topo), syncsOnEast, heartbeatsOnWest, checkpointsOnWest)

	w, err := mirror.New(topo.Flows()[0].Flow, mirror.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = w.Run(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait() })
	kdrtest.Eventually(t, 30*time.Second, func() (bool, string) {
		r, err := Plan(testCtx(t), topo, PlanOptions{})
		if err != nil {
			return false, err.Error()
		}
		// The worker creates its internal topics, but for the
		// checkpoints one, which the checkpointer (the member owning the
		// first partition) creates, and an idle worker is no member.
		got := summarize(r)
		return len(got) == 1 && got[0] == checkpointsOnWest, fmt.Sprintf("plan with an idle worker running: %v", got)
	})

	cancel()
	wg.Wait()
	east.create("orders", 2, nil)
	samePlan(t, "plan of a stopped flow", mustPlan(t, topo),
		checkpointsOnWest, planned{action: ActionCreate, cluster: "west", topic: "east.orders", partitions: 2, replicationFactor: 1},
		startEastWest)
}

func TestTopologyPlanUnreachable(t *testing.T) {
	east := startPlanCluster(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	topo := &Topology{
		APIVersion: APIVersion, Kind: Kind,
		Clusters: []Cluster{
			{Name: "east", Bootstrap: []string{east.addr}},
			{Name: "west", Bootstrap: []string{dead}},
		},
		Replication: []Pattern{{Type: ActivePassive, Primary: "east", Standby: "west"}},
	}
	start := time.Now()
	_, err = Plan(context.Background(), topo, PlanOptions{Timeout: time.Second})
	elapsed := time.Since(start)
	var ce *ClusterError
	if !errors.As(err, &ce) || ce.Cluster != "west" || !strings.Contains(err.Error(), dead) || !strings.Contains(err.Error(), `"west"`) {
		t.Fatalf("Plan = %v; want a ClusterError naming west and %s", err, dead)
	}
	if elapsed > 5*time.Second {
		t.Fatalf("Plan took %s with a 1s timeout", elapsed)
	}
	t.Logf("error: %v (after %s)", err, elapsed.Round(time.Millisecond))
}

// A cluster that accepts connections and never answers fails the plan
// within the timeout, named.
func TestTopologyPlanSilentCluster(t *testing.T) {
	east := startPlanCluster(t)
	silent := kdrtest.SilentAddr(t)
	topo := &Topology{
		Clusters: []Cluster{
			{Name: "east", Bootstrap: []string{east.addr}},
			{Name: "west", Bootstrap: []string{silent}},
		},
		Replication: []Pattern{{Type: ActivePassive, Primary: "east", Standby: "west"}},
	}
	start := time.Now()
	_, err := Plan(context.Background(), topo, PlanOptions{Timeout: 500 * time.Millisecond})
	elapsed := time.Since(start)
	var ce *ClusterError
	if !errors.As(err, &ce) || ce.Cluster != "west" || !strings.Contains(err.Error(), silent) {
		t.Fatalf("Plan = %v; want a ClusterError naming west", err)
	}
	if elapsed > 5*time.Second {
		t.Fatalf("Plan took %s with a 500ms timeout", elapsed)
	}
	t.Logf("error: %v (after %s)", err, elapsed.Round(time.Millisecond))
}

func TestTopologyPlanInvalidFlow(t *testing.T) {
	topo := &Topology{
		Clusters:    []Cluster{{Name: "east", Bootstrap: []string{"127.0.0.1:1"}}},
		Replication: []Pattern{{Type: ActivePassive, Primary: "east", Standby: "nowhere"}},
	}
	_, err := Plan(context.Background(), topo, PlanOptions{Timeout: time.Second})
	if !errors.Is(err, mirror.ErrInvalidFlow) || !strings.Contains(err.Error(), "east->nowhere") {
		t.Fatalf("Plan = %v; want an invalid-flow error naming east->nowhere", err)
	}
}

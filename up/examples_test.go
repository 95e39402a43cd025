package up_test

import (
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kdr-io/kdr/internal/kdrtest"
	"github.com/kdr-io/kdr/status"
	"github.com/kdr-io/kdr/topology"
)

// TestUpExamples runs `kdr up` as a process on every topology file in
// topology/examples, one after another, and checks through the Kafka
// protocol that it does what the file says: every cluster has all its
// brokers (with their racks) and a controller, kdr status agrees, every
// flow copies a record under its naming policy, records of a two-way
// topology do not come back to where they started, and SIGINT stops
// everything.
func TestUpExamples(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "topology", "examples", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range files {
		names = append(names, strings.TrimSuffix(filepath.Base(f), ".yaml"))
	}
	for _, want := range []string{"active-active", "active-passive", "hub-and-spoke", "stretched"} {
		if !slices.Contains(names, want) {
			t.Fatalf("topology/examples has %v, want %s.yaml among them", names, want)
		}
	}
	bin := kdrtest.Binary(t)
	for i, file := range files {
		t.Run(names[i], func(t *testing.T) {
			start := time.Now()
			defer func() { t.Logf("%s took %s", names[i], time.Since(start).Round(100*time.Millisecond)) }()
			runExample(t, bin, file)
		})
	}
}

// runExample runs kdr up on one example file and checks it.
func runExample(t *testing.T, bin, file string) {
	topo, err := topology.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	flows := topo.Flows()
	state := t.TempDir()
	start := time.Now()
	p := startUp(t, bin, file, "--state-dir", state)
	waitHealthy(t, p, state)
	admins := map[string]*kadm.Client{}
	for _, c := range topo.Clusters {
		admins[c.Name] = admin(t, c.BootstrapServers()...)
		checkBrokers(t, admins[c.Name], c)
	}
	checkStatus(t, bin, file, state, topo, flows, false)
	t.Logf("healthy after %s", time.Since(start).Round(100*time.Millisecond))

	if len(flows) > 0 {
		mark := time.Now()
		checkFlows(t, topo, flows, admins)
		// Every flow now has a topic to mirror, so its workers are in
		// their group, and they have copied everything.
		checkStatus(t, bin, file, state, topo, flows, true)
		t.Logf("%d flow(s) checked in %s", len(flows), time.Since(mark).Round(100*time.Millisecond))
	}
	for _, c := range topo.Clusters {
		if c.Local != nil && len(c.Local.Racks) > 0 {
			checkRackPlacement(t, admins[c.Name], c)
		}
	}

	e := readEndpoints(t, state)
	pids := e.PIDs()
	wantPIDs := 0
	for _, c := range topo.Clusters {
		if c.Local != nil {
			wantPIDs += c.Local.Brokers
		}
	}
	for _, f := range flows {
		wantPIDs += f.Workers
	}
	if len(pids) != wantPIDs {
		t.Fatalf("endpoints.json lists pids %v, want %d (every broker and worker)", pids, wantPIDs)
	}
	mark := time.Now()
	p.Interrupt(t, 45*time.Second)
	t.Logf("exited 0 %s after SIGINT", time.Since(mark).Round(100*time.Millisecond))
	waitGone(t, pids)
	if e := readEndpoints(t, state); e.Running || len(e.PIDs()) != 0 {
		t.Fatalf("after stop, endpoints say running %v, pids %v", e.Running, e.PIDs())
	}
}

// checkBrokers waits until Metadata from the cluster lists exactly the
// brokers of the file (node id i+1 on basePort+i, with racks[i]) and a
// controller among them.
func checkBrokers(t *testing.T, adm *kadm.Client, c topology.Cluster) {
	t.Helper()
	type want struct{ addr, rack string }
	wants := map[int32]want{}
	if c.Local != nil {
		for i, addr := range c.BootstrapServers() {
			w := want{addr: addr}
			if i < len(c.Local.Racks) {
				w.rack = c.Local.Racks[i]
			}
			wants[int32(i+1)] = w
		}
	}
	kdrtest.Eventually(t, 30*time.Second, func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		m, err := adm.Metadata(ctx)
		if err != nil {
			return false, fmt.Sprintf("cluster %s: %v", c.Name, err)
		}
		got := map[int32]want{}
		for _, b := range m.Brokers {
			rack := ""
			if b.Rack != nil {
				rack = *b.Rack
			}
			got[b.NodeID] = want{addr: b.Host + ":" + strconv.Itoa(int(b.Port)), rack: rack}
		}
		_, hasController := got[m.Controller]
		ok := hasController && len(got) > 0 && (c.Local == nil || fmt.Sprint(got) == fmt.Sprint(wants))
		return ok, fmt.Sprintf("cluster %s: brokers %v, want %v; controller %d", c.Name, got, wants, m.Controller)
	})
}

// checkStatus waits until `kdr status --output json` says healthy, exits 0
// and reports every cluster and flow of the file; with copied, also that
// every flow is running with no lag.
func checkStatus(t *testing.T, bin, file, state string, topo *topology.Topology, flows []topology.FlowSpec, copied bool) {
	t.Helper()
	kdrtest.Eventually(t, 30*time.Second, func() (bool, string) {
		r, code := runStatus(t, bin, file, "--state-dir", state)
		if !r.Healthy || code != 0 || len(r.Clusters) != len(topo.Clusters) || len(r.Flows) != len(flows) {
			return false, fmt.Sprintf("status exit %d: %+v", code, r)
		}
		for i, c := range r.Clusters {
			fc := topo.Clusters[i]
			if c.Name != fc.Name || !c.Reachable || !c.Healthy || c.ControllerID < 0 ||
				fc.Local != nil && (c.BrokersExpected != fc.Local.Brokers || c.BrokersUp() != fc.Local.Brokers) {
				return false, fmt.Sprintf("status cluster %d: %+v", i, c)
			}
		}
		for i, f := range r.Flows {
			if f.Name != flows[i].Name() || !f.Healthy || copied && (f.State != status.FlowRunning || f.LagRecords != 0) {
				return false, fmt.Sprintf("status flow %d: %+v", i, f)
			}
		}
		return true, ""
	})
}

// flowCheck is the record sent through one flow.
type flowCheck struct {
	spec                topology.FlowSpec
	topic, remote       string // on the source; its name on the target
	key, value          string
	marker, markerTopic string // produced to the source once every flow has copied
}

func (f *flowCheck) src() string { return f.spec.Flow.SourceAlias }
func (f *flowCheck) dst() string { return f.spec.Flow.TargetAlias }

// checkFlows sends a record through every flow, then, for flows whose
// reverse flow runs too, checks that it did not come back.
func checkFlows(t *testing.T, topo *topology.Topology, flows []topology.FlowSpec, admins map[string]*kadm.Client) {
	t.Helper()
	boot := func(cluster string) []string { return topo.ClusterByName(cluster).BootstrapServers() }
	created := map[string]bool{} // "cluster/topic"
	create := func(cluster, topic string) {
		if created[cluster+"/"+topic] {
			return
		}
		created[cluster+"/"+topic] = true
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		r, err := admins[cluster].CreateTopic(ctx, 1, -1, nil, topic)
		if err == nil {
			err = r.Err
		}
		if err != nil {
			t.Fatalf("creating %s on %s: %v", topic, cluster, err)
		}
	}
	producers := map[string]*kgo.Client{}
	produce := func(cluster, topic, key, value string) {
		cl := producers[cluster]
		if cl == nil {
			var err error
			if cl, err = kgo.NewClient(kgo.SeedBrokers(boot(cluster)...)); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(cl.Close)
			producers[cluster] = cl
		}
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Key: []byte(key), Value: []byte(value)}).FirstErr(); err != nil {
			t.Fatalf("producing to %s on %s: %v", topic, cluster, err)
		}
	}

	// A record through every flow, on a topic its filter selects.
	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	checks := make([]*flowCheck, len(flows))
	for i, spec := range flows {
		c := &flowCheck{spec: spec}
		c.topic = pickTopic(t, spec, nil)
		c.remote = spec.Flow.Policy().RemoteTopic(c.src(), c.topic)
		c.key = "key-" + spec.Name()
		c.value = fmt.Sprintf("%s %s %s", spec.Name(), c.topic, run)
		create(c.src(), c.topic)
		produce(c.src(), c.topic, c.key, c.value)
		checks[i] = c
	}
	for _, c := range checks {
		waitRecord(t, boot(c.dst()), c.remote, c.value)
		if n := countValue(t, admins[c.dst()], boot(c.dst()), []string{c.remote}, c.value, c.key); n != 1 {
			t.Fatalf("flow %s: %d copies of %q on %s topic %s, want 1", c.spec.Name(), n, c.value, c.dst(), c.remote)
		}
	}

	// Two-way flows: once the reverse flow has seen the remote topics (it
	// copies a marker on a topic created after them) and caught up with
	// everything it mirrors, each record is still exactly once on its
	// origin and once on the target.
	reverse := map[string]*flowCheck{}
	for _, c := range checks {
		reverse[c.dst()+"->"+c.src()] = c
	}
	var twoWay []*flowCheck
	used := map[string][]string{} // cluster -> topics produced to
	for _, c := range checks {
		used[c.src()] = append(used[c.src()], c.topic)
	}
	for _, c := range checks {
		if reverse[c.spec.Name()] == nil {
			continue
		}
		twoWay = append(twoWay, c)
		c.markerTopic = pickTopic(t, c.spec, used[c.src()])
		c.marker = fmt.Sprintf("marker %s %s %s", c.spec.Name(), c.markerTopic, run)
		create(c.src(), c.markerTopic)
		produce(c.src(), c.markerTopic, "marker", c.marker)
	}
	if len(twoWay) == 0 {
		return
	}
	for _, c := range twoWay {
		waitRecord(t, boot(c.dst()), c.spec.Flow.Policy().RemoteTopic(c.src(), c.markerTopic), c.marker)
		waitCaughtUp(t, admins[c.src()], c.spec)
	}
	for _, c := range twoWay {
		back := reverse[c.spec.Name()] // the flow whose record c could carry back
		for _, where := range []struct{ cluster, topic string }{{back.src(), back.topic}, {back.dst(), back.remote}} {
			topics := allTopics(t, admins[where.cluster])
			if n := countValue(t, admins[where.cluster], boot(where.cluster), topics, back.value, back.key); n != 1 {
				t.Fatalf("record %q of flow %s: %d copies on %s (topics %v), want exactly 1 (in %s): flow %s carried it back",
					back.value, back.spec.Name(), n, where.cluster, topics, where.topic, c.spec.Name())
			}
		}
	}
}

// pickTopic returns a topic name, not among used, that the flow's topic
// filter selects, derived from its patterns ("orders.*" gives "orders",
// then "orders-marker").
func pickTopic(t *testing.T, spec topology.FlowSpec, used []string) string {
	t.Helper()
	rules := spec.Flow.TopicRules()
	meta := regexp.MustCompile(`[\\^$.*+?()\[\]{}|]`)
	var tried []string
	for _, pat := range strings.Split(spec.Flow.Topics, ",") {
		base := meta.ReplaceAllString(strings.TrimSuffix(strings.TrimSpace(pat), ".*"), "")
		for _, name := range []string{base, base + "-marker"} {
			tried = append(tried, name)
			if ok, _ := rules.ShouldReplicate(spec.Flow.SourceAlias, spec.Flow.TargetAlias, name); ok && name != "" && !slices.Contains(used, name) {
				return name
			}
		}
	}
	t.Fatalf("flow %s: no topic among %v matches topics %q (exclude %q)", spec.Name(), tried, spec.Flow.Topics, spec.Flow.TopicsExclude)
	return ""
}

// waitCaughtUp waits until the flow's workers group on the source has
// committed the end offset of every non-empty partition it mirrors (the
// topics its filter selects and any it has committed on).
func waitCaughtUp(t *testing.T, adm *kadm.Client, spec topology.FlowSpec) {
	t.Helper()
	rules := spec.Flow.TopicRules()
	fetchCommitted := func(ctx context.Context) (kadm.OffsetResponses, error) {
		committed, err := adm.FetchOffsets(ctx, spec.Flow.Group())
		if err == nil {
			err = committed.Error()
		}
		return committed, err
	}
	kdrtest.Eventually(t, 30*time.Second, func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		committed, err := fetchCommitted(ctx)
		if err != nil {
			return false, fmt.Sprintf("flow %s: offsets of %s: %v", spec.Name(), spec.Flow.Group(), err)
		}
		topics := map[string]bool{}
		committed.Each(func(o kadm.OffsetResponse) { topics[o.Topic] = true })
		listed, err := adm.ListTopics(ctx)
		if err != nil {
			return false, err.Error()
		}
		for _, name := range listed.Names() {
			if ok, _ := rules.ShouldReplicate(spec.Flow.SourceAlias, spec.Flow.TargetAlias, name); ok {
				topics[name] = true
			}
		}
		names := sortedKeys(topics)
		starts, err := adm.ListStartOffsets(ctx, names...)
		if err == nil {
			err = starts.Error()
		}
		ends, err2 := adm.ListEndOffsets(ctx, names...)
		if err == nil && err2 == nil {
			err = ends.Error()
		} else if err == nil {
			err = err2
		}
		if err != nil {
			return false, fmt.Sprintf("flow %s: offsets of %v: %v", spec.Name(), names, err)
		}
		// Committed after the ends were listed: caught up with everything
		// there was then (heartbeats keep coming).
		if committed, err = fetchCommitted(ctx); err != nil {
			return false, fmt.Sprintf("flow %s: offsets of %s: %v", spec.Name(), spec.Flow.Group(), err)
		}
		var behind []string
		ends.Each(func(e kadm.ListedOffset) {
			s, _ := starts.Lookup(e.Topic, e.Partition)
			if e.Offset == s.Offset {
				return // empty
			}
			if c, ok := committed.Lookup(e.Topic, e.Partition); !ok || c.At < e.Offset {
				behind = append(behind, fmt.Sprintf("%s/%d committed %d of %d", e.Topic, e.Partition, c.At, e.Offset))
			}
		})
		return len(behind) == 0, fmt.Sprintf("flow %s not caught up: %v", spec.Name(), behind)
	})
}

// allTopics lists the cluster's topics, internal ones excepted.
func allTopics(t *testing.T, adm *kadm.Client) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	listed, err := adm.ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	names := listed.Names()
	sort.Strings(names)
	return names
}

// countValue reads topics from their start to their current end and counts
// the records whose value is value, failing on one whose key is not key.
func countValue(t *testing.T, adm *kadm.Client, bootstrap, topics []string, value, key string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	starts, err := adm.ListStartOffsets(ctx, topics...)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		t.Fatalf("start offsets of %v: %v", topics, err)
	}
	ends, err := adm.ListEndOffsets(ctx, topics...)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		t.Fatalf("end offsets of %v: %v", topics, err)
	}
	from := map[string]map[int32]kgo.Offset{}
	left := map[string]int64{} // "topic/partition" -> end
	ends.Each(func(e kadm.ListedOffset) {
		s, _ := starts.Lookup(e.Topic, e.Partition)
		if e.Offset <= s.Offset {
			return
		}
		if from[e.Topic] == nil {
			from[e.Topic] = map[int32]kgo.Offset{}
		}
		from[e.Topic][e.Partition] = kgo.NewOffset().At(s.Offset)
		left[fmt.Sprintf("%s/%d", e.Topic, e.Partition)] = e.Offset
	})
	if len(from) == 0 {
		return 0
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(bootstrap...), kgo.ConsumePartitions(from))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	n := 0
	for len(left) > 0 {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("reading %v to their end: %v left", topics, left)
		}
		fetches.EachError(func(topic string, p int32, err error) { t.Logf("fetching %s/%d: %v", topic, p, err) })
		fetches.EachRecord(func(r *kgo.Record) {
			tp := fmt.Sprintf("%s/%d", r.Topic, r.Partition)
			if end, ok := left[tp]; ok && r.Offset+1 >= end {
				delete(left, tp)
			}
			if string(r.Value) != value {
				return
			}
			n++
			if string(r.Key) != key {
				t.Fatalf("record %q on %s/%d at %d has key %q, want %q", value, r.Topic, r.Partition, r.Offset, r.Key, key)
			}
		})
	}
	return n
}

// checkRackPlacement creates a replication-factor-3 topic and checks that
// every partition has its replicas on 3 different racks.
func checkRackPlacement(t *testing.T, adm *kadm.Client, c topology.Cluster) {
	t.Helper()
	racks := map[int32]string{}
	for i, r := range c.Local.Racks {
		racks[int32(i+1)] = r
	}
	const topic = "rack-placement"
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := adm.CreateTopic(ctx, 6, 3, nil, topic)
	if err == nil {
		err = r.Err
	}
	if err != nil {
		t.Fatalf("creating %s on %s: %v", topic, c.Name, err)
	}
	kdrtest.Eventually(t, 30*time.Second, func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		m, err := adm.Metadata(ctx, topic)
		if err != nil {
			return false, err.Error()
		}
		d := m.Topics[topic]
		if d.Err != nil || len(d.Partitions) != 6 {
			return false, fmt.Sprintf("%s: %d partitions, error %v", topic, len(d.Partitions), d.Err)
		}
		for _, p := range d.Partitions.Sorted() {
			seen := map[string]bool{}
			for _, id := range p.Replicas {
				seen[racks[id]] = true
			}
			if len(p.Replicas) != 3 || len(seen) != 3 || seen[""] {
				t.Fatalf("%s partition %d: replicas %v on racks %v, want 3 replicas on 3 racks of %v", topic, p.Partition, p.Replicas, sortedKeys(seen), c.Local.Racks)
			}
		}
		return true, ""
	})
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

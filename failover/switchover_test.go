package failover_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kdr-io/kdr/failover"
	"github.com/kdr-io/kdr/failover/store"
	"github.com/kdr-io/kdr/internal/kdrtest"
)

// twoLocal is a topology of two one-broker local clusters a → b,
// identity naming, quick mirror settings.
const twoLocal = `apiVersion: kdr.io/v1
kind: Topology
metadata:
  name: fotest
clusters:
  - name: a
    local: {brokers: 1, basePort: %d}
  - name: b
    local: {brokers: 1, basePort: %d}
replication:
  - type: active-passive
    primary: a
    standby: b
mirror:
  naming: identity
  refreshInterval: 500ms
  checkpointInterval: 1s
  sessionTimeout: 6s
failover:
  timeouts: {fence: 10s, drain: 30s, promote: 30s}
`

// loadProducer writes numbered records to the active cluster, following
// the state document, and remembers which were acknowledged.
type loadProducer struct {
	e     *estate
	topic string

	mu    sync.Mutex
	acked map[int]string // id → cluster that acknowledged it
	next  int
}

func (p *loadProducer) run(ctx context.Context) {
	s, err := store.Open(p.e.topo, p.e.state)
	if err != nil {
		panic(err)
	}
	defer s.Close()
	clients := map[string]*kgo.Client{}
	defer func() {
		for _, c := range clients {
			c.Close()
		}
	}()
	p.next = 1
	pace := time.NewTicker(2 * time.Millisecond) // about 500 records a second
	defer pace.Stop()
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
			return
		case <-pace.C:
		}
		v, err := s.Get(ctx)
		if err != nil {
			continue
		}
		active := v.State.Active
		if active == "" {
			active = "a"
		}
		cl := clients[active]
		if cl == nil {
			cl, _ = kgo.NewClient(kgo.SeedBrokers(p.e.bootstrap(active)...), kgo.ClientID("load-producer"),
				kgo.RecordDeliveryTimeout(5*time.Second), kgo.ProducerLinger(0))
			clients[active] = cl
		}
		id := p.next
		p.next++
		pctx, cancel := context.WithTimeout(ctx, 6*time.Second)
		err = cl.ProduceSync(pctx, &kgo.Record{Topic: p.topic, Key: []byte(strconv.Itoa(id % 7)), Value: []byte("id-" + strconv.Itoa(id))}).FirstErr()
		cancel()
		if err == nil {
			p.mu.Lock()
			p.acked[id] = active
			p.mu.Unlock()
			continue
		}
		select {
		case <-ctx.Done():
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (p *loadProducer) count(cluster string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, c := range p.acked {
		if c == cluster || cluster == "" {
			n++
		}
	}
	return n
}

// TestFailoverSwitchoverUnderLoad switches a → b with kdr up running and a
// producer writing all along: nothing acknowledged is lost, a refuses
// produce afterwards, b accepts, the reverse flow runs, the state and kdr
// up's metrics say so. Once with the flows' offset syncs on their sources,
// once on their targets (the group's offsets are translated from either).
func TestFailoverSwitchoverUnderLoad(t *testing.T) {
	for _, loc := range []string{"source", "target"} {
		t.Run("syncs on the "+loc, func(t *testing.T) { switchoverUnderLoad(t, loc) })
	}
}

func switchoverUnderLoad(t *testing.T, syncsLocation string) {
	used := map[int]bool{}
	yaml := strings.Replace(fmt.Sprintf(twoLocal, kdrtest.FreeBasePort(t, 1, used), kdrtest.FreeBasePort(t, 1, used)),
		"mirror:\n", "mirror:\n  offsetSyncsTopicLocation: "+syncsLocation+"\n", 1)
	e := startEstate(t, yaml)
	ctx := context.Background()
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.bootstrap("a")...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := kadmClient(cl).CreateTopic(ctx, 3, 1, nil, "payments"); err != nil {
		t.Fatal(err)
	}

	lctx, stop := context.WithCancel(ctx)
	p := &loadProducer{e: e, topic: "payments", acked: map[int]string{}}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); p.run(lctx) }()
	defer func() { stop(); wg.Wait() }()
	kdrtest.Eventually(t, 30*time.Second, func() (bool, string) {
		return p.count("a") >= 200, fmt.Sprintf("%d acknowledged on a", p.count("a"))
	})

	// A consumer group reads part of a, commits and leaves.
	aOffsets := consumeSome(t, e.bootstrap("a"), "billing", "payments", 100)

	out, code := e.failover(nil, "switchover", "b")
	if code != 0 {
		t.Fatalf("switchover exit %d:\n%s", code, out)
	}
	t.Logf("kdr failover switchover:\n%s", out)
	for _, want := range []string{"Plan: switchover a -> b", "1. preflight", "[3/8] drain", "switchover a -> b done"} {
		if !strings.Contains(out, want) {
			t.Errorf("switchover output lacks %q:\n%s", want, out)
		}
	}
	kdrtest.Eventually(t, 30*time.Second, func() (bool, string) {
		return p.count("b") >= 100, fmt.Sprintf("%d acknowledged on b", p.count("b"))
	})
	stop()
	wg.Wait()

	// Every acknowledged record is on b, the active cluster.
	onB := map[string]bool{}
	for _, r := range readAll(t, e.bootstrap("b"), "payments") {
		onB[string(r.Value)] = true
	}
	var lost []int
	for id := range p.acked {
		if !onB["id-"+strconv.Itoa(id)] {
			lost = append(lost, id)
		}
	}
	slices.Sort(lost)
	if len(lost) > 0 {
		t.Fatalf("%d of %d acknowledged records are not on b: %v", len(lost), len(p.acked), lost[:min(len(lost), 20)])
	}

	// The group resumes on b exactly where it stopped on a: the record at
	// its committed offset on b is the one at its offset on a.
	bOffsets := committed(t, e.bootstrap("b"), "billing")
	aRecs, bRecs := byOffset(readAll(t, e.bootstrap("a"), "payments")), byOffset(readAll(t, e.bootstrap("b"), "payments"))
	for p, ao := range aOffsets {
		bo, ok := bOffsets[p]
		if !ok {
			t.Fatalf("group billing has no offset for partition %d on b (a: %v, b: %v)", p, aOffsets, bOffsets)
		}
		if ra, rb := aRecs[[2]int64{int64(p), ao}], bRecs[[2]int64{int64(p), bo}]; ra == nil || rb == nil || string(ra.Value) != string(rb.Value) {
			t.Fatalf("partition %d: billing at %d on a and %d on b point at different records (%v, %v)", p, ao, bo, ra, rb)
		}
	}

	// a refuses, b accepts, and b's records reach a (the reverse flow).
	if err := tryProduce(e.bootstrap("a"), "payments", "after-a"); !isPolicyViolation(err) {
		t.Fatalf("produce to a after the switchover: %v, want POLICY_VIOLATION", err)
	}
	if err := tryProduce(e.bootstrap("b"), "payments", "after-b"); err != nil {
		t.Fatalf("produce to b after the switchover: %v", err)
	}
	kdrtest.Eventually(t, 30*time.Second, func() (bool, string) {
		for _, r := range readAll(t, e.bootstrap("a"), "payments") {
			if string(r.Value) == "after-b" {
				return true, ""
			}
		}
		return false, "after-b not on a yet"
	})

	st := e.doc()
	if st.Active != "b" || st.Epoch != 1 || !slices.Equal(st.Fenced, []string{"a"}) || st.Operation != nil || st.ConsumerOffsets != "b" {
		t.Fatalf("state after the switchover: active %s epoch %d fenced %v operation %+v consumer offsets %s",
			st.Active, st.Epoch, st.Fenced, st.Operation, st.ConsumerOffsets)
	}

	// kdr up exports the state.
	url := e.endpoints().MetricsURL
	if url == "" {
		t.Fatal("endpoints.json has no metrics_url")
	}
	kdrtest.Eventually(t, 10*time.Second, func() (bool, string) {
		resp, err := http.Get(url)
		if err != nil {
			return false, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		text := string(b)
		for _, want := range []string{
			`kdr_failover_active_cluster{cluster="b",topology="fotest"} 1`,
			`kdr_failover_epoch{topology="fotest"} 1`,
			`kdr_failover_fenced{cluster="a",topology="fotest"} 1`,
			`kdr_failover_operations_total{kind="switchover",result="succeeded",topology="fotest"} 1`,
		} {
			if !strings.Contains(text, want) {
				return false, "metrics lack " + want
			}
		}
		return true, ""
	})

	// Status and discover agree.
	out, code = e.kdr(nil, "discover", e.file, "--state-dir", e.state)
	if code != 0 || strings.TrimSpace(out) != strings.Join(e.bootstrap("b"), ",") {
		t.Fatalf("discover: exit %d %q", code, out)
	}
	out, code = e.kdr(nil, "failover", "status", e.file, "--state-dir", e.state)
	if code != 0 || !strings.Contains(out, "Active:            b") {
		t.Fatalf("failover status: exit %d\n%s", code, out)
	}
	// Switching to the active cluster is refused.
	if out, code := e.failover(nil, "switchover", "b"); code != 1 || !strings.Contains(out, "already the active cluster") {
		t.Fatalf("switchover to the active cluster: exit %d\n%s", code, out)
	}
	_ = failover.KindSwitchover
}

// consumeSome consumes at least n records of topic as group, commits and
// leaves; it returns the committed offsets.
func consumeSome(t *testing.T, brokers []string, group, topic string, n int) map[int32]int64 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	got := 0
	for got < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consuming as %s: %v", group, ctx.Err())
		}
		got += fs.NumRecords()
	}
	if err := cl.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatal(err)
	}
	cl.Close() // leaves the group
	return committed(t, brokers, group)
}

func committed(t *testing.T, brokers []string, group string) map[int32]int64 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	offs, err := kadmClient(cl).FetchOffsets(context.Background(), group)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int32]int64{}
	for _, ps := range offs {
		for p, o := range ps {
			if o.Err == nil && o.At >= 0 {
				out[p] = o.At
			}
		}
	}
	return out
}

func byOffset(rs []*kgo.Record) map[[2]int64]*kgo.Record {
	out := map[[2]int64]*kgo.Record{}
	for _, r := range rs {
		out[[2]int64{int64(r.Partition), r.Offset}] = r
	}
	return out
}

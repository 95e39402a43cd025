package compat_test

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kdr-io/kdr/internal/kdrtest"
)

// kdrBin is the broker binary every test starts, built once.
var kdrBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "kdr-compat")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	kdrBin, err = kdrtest.BuildBinary(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func startBroker(t *testing.T) *kdrtest.Process {
	t.Helper()
	return kdrtest.StartProcess(t, kdrBin)
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func admin(t *testing.T, addr string) *kadm.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

func createTopic(t *testing.T, addr, topic string, partitions int32) {
	t.Helper()
	resp, err := admin(t, addr).CreateTopic(ctxT(t), partitions, 1, nil, topic)
	if err != nil || resp.Err != nil {
		t.Fatalf("create %s: %v %v", topic, err, resp.Err)
	}
}

// kv is one record as the tests compare them.
type kv struct {
	Key, Value string
	Partition  int32
}

// keyedRecords is 20 keys × 10 values, value "<key>#<n>" so order per key is
// checkable.
func keyedRecords(prefix string) []kv {
	var out []kv
	for n := 0; n < 10; n++ {
		for k := 0; k < 20; k++ {
			key := fmt.Sprintf("%s-key-%02d", prefix, k)
			out = append(out, kv{Key: key, Value: fmt.Sprintf("%s#%d", key, n)})
		}
	}
	return out
}

// checkKeyed asserts got is exactly want as a multiset, each key's values
// in produced order, each key in one partition.
func checkKeyed(t *testing.T, who string, want, got []kv) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d records, want %d", who, len(got), len(want))
	}
	next := map[string]int{}
	part := map[string]int32{}
	for _, r := range got {
		var n int
		if _, err := fmt.Sscanf(r.Value[strings.LastIndexByte(r.Value, '#')+1:], "%d", &n); err != nil || !strings.HasPrefix(r.Value, r.Key+"#") {
			t.Fatalf("%s: record %q=%q was not produced", who, r.Key, r.Value)
		}
		if n != next[r.Key] {
			t.Fatalf("%s: key %s value #%d arrived when #%d was due (order broken)", who, r.Key, n, next[r.Key])
		}
		next[r.Key]++
		if p, ok := part[r.Key]; ok && p != r.Partition {
			t.Fatalf("%s: key %s in partitions %d and %d", who, r.Key, p, r.Partition)
		}
		part[r.Key] = r.Partition
	}
	for k, n := range next {
		if n != 10 {
			t.Fatalf("%s: key %s has %d values, want 10", who, k, n)
		}
	}
}

// readAllFranz reads n records of topic from the start with franz-go: the
// cross-check that what one client wrote another reads.
func readAllFranz(t *testing.T, addr, topic string, n int) []kv {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := ctxT(t)
	var out []kv
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("franz-go read %d of %d records of %s", len(out), n, topic)
		}
		fs.EachError(func(tp string, p int32, err error) { t.Fatalf("fetch %s-%d: %v", tp, p, err) })
		fs.EachRecord(func(r *kgo.Record) { out = append(out, kv{string(r.Key), string(r.Value), r.Partition}) })
	}
	return out
}

// member is one consumer-group member of some client library.
type member interface {
	// stop leaves the group cleanly, committing what it consumed.
	stop(t *testing.T)
}

// startMemberFunc starts a member of group on topic that records every
// value it receives into seen.
type startMemberFunc func(t *testing.T, addr, group, topic string, seen *valueSet) member

// valueSet is a concurrency-safe set of consumed values.
type valueSet struct {
	mu sync.Mutex
	m  map[string]int
}

func newValueSet() *valueSet { return &valueSet{m: map[string]int{}} }

func (s *valueSet) add(v string) { s.mu.Lock(); s.m[v]++; s.mu.Unlock() }

func (s *valueSet) len() int { s.mu.Lock(); defer s.mu.Unlock(); return len(s.m) }

func (s *valueSet) values() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.m))
	for v := range s.m {
		out = append(out, v)
	}
	sort.Strings(out)
	return out
}

func produceValues(t *testing.T, addr, topic, prefix string, n int) {
	t.Helper()
	// Uncompressed: kafkajs has no snappy codec, franz-go's default.
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic(topic), kgo.ProducerBatchCompression(kgo.NoCompression()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var recs []*kgo.Record
	for i := 0; i < n; i++ {
		recs = append(recs, &kgo.Record{Key: []byte(fmt.Sprint(i)), Value: []byte(fmt.Sprintf("%s-%03d", prefix, i))})
	}
	if err := cl.ProduceSync(ctxT(t), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// groupState reads member count and partition ownership of group on topic;
// on error the state is the error, for the caller's wait message.
func groupState(t *testing.T, adm *kadm.Client, group, topic string) (int, map[int32]int, string) {
	n, owners, state, err := kdrtest.GroupAssignment(ctxT(t), adm, group, topic)
	if err != nil {
		return 0, nil, err.Error()
	}
	return n, owners, state
}

func waitGroup(t *testing.T, adm *kadm.Client, group, topic string, members int, seen *valueSet, records int) {
	t.Helper()
	kdrtest.Eventually(t, 60*time.Second, func() (bool, string) {
		n, owners, state := groupState(t, adm, group, topic)
		ok := n == members && len(owners) == 6 && state == "Stable" && (records < 0 || seen.len() == records)
		for _, c := range owners {
			ok = ok && c == 1
		}
		return ok, fmt.Sprintf("%d members (want %d), partition owners %v, state %s, %d/%d records", n, members, owners, state, seen.len(), records)
	})
}

// runGroupScenario is the shared consumer-group check: three members join
// one by one over 300 records, one leaves and the other two take its
// partitions, all stop committing, and after a broker restart a new member
// gets exactly the records produced since.
func runGroupScenario(t *testing.T, start startMemberFunc) {
	proc := startBroker(t)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("broker log:\n%s", proc.Logs())
		}
	})
	addr := proc.Addr()
	createTopic(t, addr, "grp", 6)
	adm := admin(t, addr)
	produceValues(t, addr, "grp", "a", 300)
	seen := newValueSet()
	var ms []member
	for i := 1; i <= 3; i++ {
		ms = append(ms, start(t, addr, "compat", "grp", seen))
		waitGroup(t, adm, "compat", "grp", i, seen, -1)
	}
	waitGroup(t, adm, "compat", "grp", 3, seen, 300)
	ms[2].stop(t)
	produceValues(t, addr, "grp", "b", 60)
	waitGroup(t, adm, "compat", "grp", 2, seen, 360)
	ms[0].stop(t)
	ms[1].stop(t)
	committed := func() int64 {
		os, err := adm.FetchOffsets(ctxT(t), "compat")
		if err != nil {
			t.Fatal(err)
		}
		var sum int64
		os.Each(func(o kadm.OffsetResponse) { sum += o.At })
		return sum
	}
	kdrtest.Eventually(t, 20*time.Second, func() (bool, string) {
		c := committed()
		return c == 360, fmt.Sprintf("committed offsets sum to %d, want 360", c)
	})
	proc.Stop()
	proc.Restart()
	adm = admin(t, proc.Addr())
	if c := committed(); c != 360 {
		t.Fatalf("after broker restart committed offsets sum to %d, want 360", c)
	}
	produceValues(t, proc.Addr(), "grp", "c", 30)
	fresh := newValueSet()
	m := start(t, proc.Addr(), "compat", "grp", fresh)
	kdrtest.Eventually(t, 60*time.Second, func() (bool, string) { return fresh.len() >= 30, fmt.Sprintf("%d/30 new records", fresh.len()) })
	m.stop(t)
	for _, v := range fresh.values() {
		if !strings.HasPrefix(v, "c-") {
			t.Fatalf("the restarted group re-read %q: commits were not resumed", v)
		}
	}
	if fresh.len() != 30 {
		t.Fatalf("restarted group read %d distinct records, want 30", fresh.len())
	}
}

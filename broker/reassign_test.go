package broker_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kdr-io/kdr/internal/kdrtest"
)

// TestBrokerReassignmentAPIsSingleNode covers the reassignment and election
// APIs' answers that need no second broker: nothing to list, moving a
// partition to an unregistered broker, cancelling nothing, an unknown topic,
// forbidding a replication factor change, and preferred and unclean
// elections that are not needed.
func TestBrokerReassignmentAPIsSingleNode(t *testing.T) {
	b := kdrtest.StartBroker(t)
	cl := client(t, b.Addr())
	adm := kadm.NewClient(cl)
	createTopic(t, adm, "still", 2, nil)
	all := kadm.TopicsSet{}
	all.Add("still", 0, 1)

	listed, err := adm.ListPartitionReassignments(ctxT(t), all)
	if err != nil || len(listed.Sorted()) != 0 {
		t.Fatalf("list before any reassignment: %v %+v", err, listed)
	}
	everything, err := kmsg.NewPtrListPartitionReassignmentsRequest().RequestWith(ctxT(t), cl) // null topics
	if err != nil || everything.ErrorCode != 0 || len(everything.Topics) != 0 {
		t.Fatalf("list everything: %v %+v", err, everything)
	}

	var req kadm.AlterPartitionAssignmentsReq
	req.Assign("still", 0, []int32{1, 2})
	req.Assign("still", 1, []int32{1}) // already so: a no-op
	req.Assign("gone", 0, []int32{1})
	resps, err := adm.AlterPartitionAssignments(ctxT(t), req)
	if err != nil {
		t.Fatal(err)
	}
	wantErr := map[string]map[int32]error{
		"still": {0: kerr.InvalidReplicaAssignment, 1: nil},
		"gone":  {0: kerr.UnknownTopicOrPartition},
	}
	checkAssignErrs(t, resps, wantErr)

	var cancelOne kadm.AlterPartitionAssignmentsReq
	cancelOne.CancelAssign("still", 1)
	resps, err = adm.AlterPartitionAssignments(ctxT(t), cancelOne)
	if err != nil {
		t.Fatal(err)
	}
	checkAssignErrs(t, resps, map[string]map[int32]error{"still": {1: kerr.NoReassignmentInProgress}})

	var grow kadm.AlterPartitionAssignmentsReq
	grow.Assign("still", 1, []int32{1, 2})
	resps, err = adm.AlterPartitionAssignments(kadm.ForbidAlterRf(ctxT(t)), grow)
	if err != nil {
		t.Fatal(err)
	}
	checkAssignErrs(t, resps, map[string]map[int32]error{"still": {1: kerr.InvalidReplicationFactor}})

	listed, err = adm.ListPartitionReassignments(ctxT(t), all)
	if err != nil || len(listed.Sorted()) != 0 {
		t.Fatalf("list after failed reassignments: %v %+v", err, listed)
	}

	for _, how := range []kadm.ElectLeadersHow{kadm.ElectPreferredReplica, kadm.ElectLiveReplica} {
		set := kadm.TopicsSet{}
		set.Add("still", 0, 1, 7)
		set.Add("gone", 0)
		res, err := adm.ElectLeaders(ctxT(t), how, set)
		if err != nil {
			t.Fatalf("elect %v: %v", how, err)
		}
		want := map[string]map[int32]error{
			"still": {0: kerr.ElectionNotNeeded, 1: kerr.ElectionNotNeeded, 7: kerr.UnknownTopicOrPartition},
			"gone":  {0: kerr.UnknownTopicOrPartition},
		}
		for topic, ps := range want {
			for p, wantErr := range ps {
				if got, ok := res[topic][p]; !ok || !errors.Is(got.Err, wantErr) {
					t.Errorf("elect %v %s-%d: %+v, want %v", how, topic, p, got, wantErr)
				}
			}
		}
	}
	// A null topic list elects everywhere and, as in Kafka, leaves out the
	// partitions that needed no election: here all of them.
	allElect, err := kmsg.NewPtrElectLeadersRequest().RequestWith(ctxT(t), cl)
	if err != nil || allElect.ErrorCode != 0 || len(allElect.Topics) != 0 {
		t.Fatalf("elect all: %v %+v", err, allElect)
	}
	bad := kmsg.NewPtrElectLeadersRequest()
	bad.ElectionType = 5
	badResp, err := bad.RequestWith(ctxT(t), cl)
	if err != nil || badResp.ErrorCode != kerr.InvalidRequest.Code {
		t.Fatalf("election type 5: %v %+v", err, badResp)
	}
}

func checkAssignErrs(t *testing.T, got kadm.AlterPartitionAssignmentsResponses, want map[string]map[int32]error) {
	t.Helper()
	for topic, ps := range want {
		for p, wantErr := range ps {
			r, ok := got[topic][p]
			if !ok || !errors.Is(r.Err, wantErr) || (wantErr == nil) != (r.Err == nil) {
				t.Errorf("reassign %s-%d: %+v, want %v", topic, p, r, wantErr)
			}
		}
	}
}

// ackedRecord is where an acknowledged record landed.
type ackedRecord struct {
	partition int32
	offset    int64
}

// TestBrokerClusterReassignsToNewBroker moves every partition of an RF=3
// topic onto a fourth broker that joined the running cluster, while an
// idempotent acks=all producer keeps writing. Each partition's reassignment
// must complete with the new broker in sync, a preferred-leader election
// must then hand it the partitions it was made preferred for, and reading
// everything back must find every acknowledged record at its acknowledged
// offset and no value twice.
func TestBrokerClusterReassignsToNewBroker(t *testing.T) {
	if testing.Short() {
		t.Skip("starts broker processes")
	}
	c := kdrtest.StartCluster(t, kdrtest.Binary(t), 3)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	const topic, partitions = "moving", 4
	resp, err := c.Admin().CreateTopic(ctx, partitions, 3, map[string]*string{"min.insync.replicas": kadm.StringPtr("2")}, topic)
	if err != nil || resp.Err != nil {
		t.Fatalf("create: %v %v", err, resp.Err)
	}
	for p := int32(0); p < partitions; p++ {
		c.WaitISR(topic, p, 3)
	}

	prod := startProducer(t, ctx, c.Bootstrap(), topic, partitions)
	prod.waitAcked(t, 200)

	newID := c.AddBroker()
	// The new broker replaces each partition's last replica (not its
	// leader, unless leadership moved since creation); even partitions get
	// it as preferred leader, odd ones as last replica.
	targets := map[int32][]int32{}
	var req kadm.AlterPartitionAssignmentsReq
	for p := int32(0); p < partitions; p++ {
		pd, err := c.Partition(topic, p)
		if err != nil {
			t.Fatal(err)
		}
		kept := pd.Replicas[:2]
		if slices.Contains(kept, newID) || len(pd.Replicas) != 3 {
			t.Fatalf("%s-%d replicas %v before the reassignment", topic, p, pd.Replicas)
		}
		target := append(slices.Clone(kept), newID)
		if p%2 == 0 {
			target = append([]int32{newID}, kept...)
		}
		targets[p] = target
		req.Assign(topic, p, target)
	}
	resps, err := c.Admin().AlterPartitionAssignments(ctx, req)
	if err != nil || resps.Error() != nil {
		t.Fatalf("reassign: %v %v", err, resps.Error())
	}
	t.Logf("reassigning to %v", targets)

	all := kadm.TopicsSet{}
	for p := int32(0); p < partitions; p++ {
		all.Add(topic, p)
	}
	kdrtest.Eventually(t, 2*time.Minute, func() (bool, string) {
		listed, err := c.Admin().ListPartitionReassignments(ctx, all)
		if err != nil {
			return false, err.Error()
		}
		if n := len(listed.Sorted()); n > 0 {
			return false, fmt.Sprintf("%d reassignments in progress: %+v", n, listed.Sorted())
		}
		for p := int32(0); p < partitions; p++ {
			pd, err := c.Partition(topic, p)
			if err != nil {
				return false, err.Error()
			}
			if !slices.Equal(pd.Replicas, targets[p]) || len(pd.ISR) != 3 || !slices.Contains(pd.ISR, newID) {
				return false, fmt.Sprintf("%s-%d replicas %v ISR %v, want replicas %v all in sync", topic, p, pd.Replicas, pd.ISR, targets[p])
			}
		}
		return true, ""
	})
	prod.waitAcked(t, prod.acked()+200)
	checkForwarded(t, ctx, c, topic, newID)

	elected, err := c.Admin().ElectLeaders(ctx, kadm.ElectPreferredReplica, all)
	if err != nil {
		t.Fatalf("preferred election: %v", err)
	}
	for p := int32(0); p < partitions; p++ {
		r := elected[topic][p]
		if p%2 == 1 && !errors.Is(r.Err, kerr.ElectionNotNeeded) {
			t.Errorf("%s-%d: preferred election %v, want ELECTION_NOT_NEEDED (its first replica already leads)", topic, p, r.Err)
		}
		if p%2 == 0 && r.Err != nil && !errors.Is(r.Err, kerr.ElectionNotNeeded) {
			t.Errorf("%s-%d: preferred election %v %s", topic, p, r.Err, r.ErrMessage)
		}
	}
	kdrtest.Eventually(t, 30*time.Second, func() (bool, string) {
		for p := int32(0); p < partitions; p += 2 {
			pd, err := c.Partition(topic, p)
			if err != nil {
				return false, err.Error()
			}
			if pd.Leader != newID {
				return false, fmt.Sprintf("%s-%d leader %d, want %d", topic, p, pd.Leader, newID)
			}
		}
		return true, ""
	})
	// Keep writing through the new leaders before stopping.
	prod.waitAcked(t, prod.acked()+200)
	acked := prod.stop(t)
	t.Logf("%d records acknowledged", len(acked))

	got := readAll(t, ctx, c.Bootstrap(), topic, partitions)
	seen := map[string]ackedRecord{}
	for at, v := range got {
		if prev, dup := seen[v]; dup {
			t.Errorf("value %s at %d-%d and %d-%d", v, prev.partition, prev.offset, at.partition, at.offset)
		}
		seen[v] = at
	}
	lost := 0
	for v, at := range acked {
		if got[at] != v {
			lost++
			if lost <= 10 {
				t.Errorf("acknowledged %s at %d-%d, read %q there", v, at.partition, at.offset, got[at])
			}
		}
	}
	if lost > 0 {
		t.Fatalf("%d of %d acknowledged records lost", lost, len(acked))
	}
}

// checkForwarded sends the admin requests to the new broker, which is not
// the metadata leader (it is not even a voter), so its commands are
// forwarded: a cancel with nothing to cancel, and a preferred election of
// partition 1, whose first replica leads, must answer as on the controller.
func checkForwarded(t *testing.T, ctx context.Context, c *kdrtest.Cluster, topic string, newID int32) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.Bootstrap()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	node := cl.Broker(int(newID))

	cancelReq := kmsg.NewPtrAlterPartitionAssignmentsRequest()
	rt := kmsg.NewAlterPartitionAssignmentsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewAlterPartitionAssignmentsRequestTopicPartition()
	rp.Partition = 1 // Replicas nil: cancel
	rt.Partitions = append(rt.Partitions, rp)
	cancelReq.Topics = append(cancelReq.Topics, rt)
	cancelResp, err := cancelReq.RequestWith(ctx, node)
	if err != nil || len(cancelResp.Topics) != 1 || len(cancelResp.Topics[0].Partitions) != 1 ||
		cancelResp.Topics[0].Partitions[0].ErrorCode != kerr.NoReassignmentInProgress.Code {
		t.Fatalf("cancel through broker %d: %v %+v", newID, err, cancelResp)
	}

	elect := kmsg.NewPtrElectLeadersRequest()
	et := kmsg.NewElectLeadersRequestTopic()
	et.Topic, et.Partitions = topic, []int32{1}
	elect.Topics = append(elect.Topics, et)
	electResp, err := elect.RequestWith(ctx, node)
	if err != nil || len(electResp.Topics) != 1 || len(electResp.Topics[0].Partitions) != 1 ||
		electResp.Topics[0].Partitions[0].ErrorCode != kerr.ElectionNotNeeded.Code {
		t.Fatalf("election through broker %d: %v %+v", newID, err, electResp)
	}

	list := kmsg.NewPtrListPartitionReassignmentsRequest() // null topics: all
	listResp, err := list.RequestWith(ctx, node)
	if err != nil || listResp.ErrorCode != 0 || len(listResp.Topics) != 0 {
		t.Fatalf("list through broker %d: %v %+v", newID, err, listResp)
	}
}

// producer writes keyed records to every partition in turn until stopped,
// remembering where each acknowledged value landed.
type producer struct {
	cl   *kgo.Client
	quit chan struct{}
	done chan struct{}

	mu     sync.Mutex
	landed map[string]ackedRecord
	errs   []error
}

func startProducer(t *testing.T, ctx context.Context, seeds []string, topic string, partitions int32) *producer {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.DefaultProduceTopic(topic),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.MaxBufferedRecords(256))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	p := &producer{cl: cl, quit: make(chan struct{}), done: make(chan struct{}), landed: map[string]ackedRecord{}}
	go func() {
		defer close(p.done)
		for i := 0; ; i++ {
			select {
			case <-p.quit:
				return
			default:
			}
			r := &kgo.Record{
				Key:       fmt.Appendf(nil, "key-%02d", i%16),
				Value:     fmt.Appendf(nil, "v%07d", i),
				Partition: int32(i) % partitions,
			}
			// Blocks while 256 records are buffered.
			cl.Produce(ctx, r, func(r *kgo.Record, err error) {
				p.mu.Lock()
				defer p.mu.Unlock()
				if err != nil {
					p.errs = append(p.errs, err)
					return
				}
				p.landed[string(r.Value)] = ackedRecord{r.Partition, r.Offset}
			})
		}
	}()
	return p
}

func (p *producer) acked() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.landed)
}

func (p *producer) waitAcked(t *testing.T, n int) {
	t.Helper()
	kdrtest.Eventually(t, 60*time.Second, func() (bool, string) {
		return p.acked() >= n, fmt.Sprintf("%d records acknowledged, want %d", p.acked(), n)
	})
}

// stop ends producing, waits for every buffered record's outcome and
// returns the acknowledged values. Any failed record fails the test: the
// producer retries without limit, so a failure is a broker error.
func (p *producer) stop(t *testing.T) map[string]ackedRecord {
	t.Helper()
	close(p.quit)
	<-p.done
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.cl.Flush(ctx); err != nil {
		t.Fatalf("flush: %v", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, err := range p.errs {
		if i < 10 {
			t.Errorf("produce: %v", err)
		}
	}
	if len(p.errs) > 0 {
		t.Errorf("%d records failed", len(p.errs))
	}
	return p.landed
}

// readAll reads every partition of topic from offset 0 to its high
// watermark with a new client (so fresh metadata) and returns the values
// by position.
func readAll(t *testing.T, ctx context.Context, seeds []string, topic string, partitions int32) map[ackedRecord]string {
	t.Helper()
	offsets := map[int32]kgo.Offset{}
	for p := int32(0); p < partitions; p++ {
		offsets[p] = kgo.NewOffset().AtStart()
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offsets}))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil || ends.Error() != nil {
		t.Fatalf("end offsets: %v %v", err, ends.Error())
	}
	remaining := 0
	next := map[int32]int64{}
	for p := int32(0); p < partitions; p++ {
		end, ok := ends.Lookup(topic, p)
		if !ok {
			t.Fatalf("no end offset for %s-%d", topic, p)
		}
		remaining += int(end.Offset)
		next[p] = 0
		t.Logf("%s-%d: %d records", topic, p, end.Offset)
	}
	rctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	out := map[ackedRecord]string{}
	for remaining > 0 {
		fs := cl.PollFetches(rctx)
		if rctx.Err() != nil {
			t.Fatalf("read: %d records still unread (next offsets %v)", remaining, next)
		}
		fs.EachError(func(topic string, p int32, err error) {
			t.Logf("fetch %s-%d: %v", topic, p, err)
		})
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset != next[r.Partition] {
				t.Fatalf("%s-%d: offset %d after %d", topic, r.Partition, r.Offset, next[r.Partition])
			}
			next[r.Partition]++
			out[ackedRecord{r.Partition, r.Offset}] = string(r.Value)
			remaining--
		})
	}
	return out
}

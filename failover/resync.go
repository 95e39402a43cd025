package failover

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kdr-io/kdr/mirror"
	"github.com/kdr-io/kdr/mirror/mm2"
	"github.com/kdr-io/kdr/mirror/offsets"
)

// resyncClientID is the resync copier's producer client id: a fenced kdr
// cluster accepts produce requests from client ids starting with
// "kdr-mirror-" (see broker/fence.go).
const resyncClientID = "kdr-mirror-resync"

// leaveGroupReportEvery is how often resync reports that it still waits
// for the mirror workers to leave their groups.
const leaveGroupReportEvery = 5 * time.Second

// leaveGroupProgress is resync's progress line while n workers of flow f
// are still in its group on cluster, after waiting for waited: a worker
// kdr up stopped stays a static member until its session timeout, so the
// wait is expected and the line says how long it lasts.
func leaveGroupProgress(n int, f mirror.Flow, cluster string, waited time.Duration) string {
	return fmt.Sprintf("waiting for %d worker(s) of %s to leave group %s on %s (%s; a stopped worker's static membership ends after its session timeout, %s for this flow)",
		n, f.Name(), f.Group(), cluster, waited.Round(time.Second), f.SessionTimeout)
}

// resync replaces the old primary x's mirrored topics with copies of the
// active cluster y's: kdr brokers cannot cut a log's suffix through the
// Kafka API, so the topics are deleted and re-copied from the start, which
// gives the same offsets when y's logs start at 0 without gaps. The copy
// is plain (every record, headers as they are), not the mirror: the
// mirror would skip the records that originally came from x. The copy
// writes the reverse flow's offset syncs, and positions the reverse flow
// (on y) and the forward flow (on x) after what it copied, so mirroring
// goes on from there in both directions.
func (o *opRun) resync(ctx context.Context) (stepOut, error) {
	x, y := o.to, o.from
	rev, fwd := o.pat.Flow(y), o.pat.Flow(x)
	xAdm, err := o.cl.admin(x)
	if err != nil {
		return stepOut{}, err
	}
	yAdm, err := o.cl.admin(y)
	if err != nil {
		return stepOut{}, err
	}
	// kdr up stops the reverse flow during this step; by hand, stop it.
	start, reported := time.Now(), time.Time{}
	err = withTimeout(ctx, max(o.opts.Promote, 30*time.Second), "waiting for the flow "+rev.Name()+" to stop", func(ctx context.Context) error {
		return poll(ctx, 250*time.Millisecond, func() (bool, string, error) {
			// Both flows' groups must be empty: the copy positions them.
			// A stopped static member stays until its session times out.
			for _, g := range []struct {
				adm     *kadm.Client
				flow    mirror.Flow
				cluster string
			}{{yAdm, rev, y}, {xAdm, fwd, x}} {
				n, err := offsets.GroupMembers(ctx, g.adm, g.flow.Group())
				if err != nil {
					return false, err.Error(), nil
				}
				if n > 0 {
					// The wait lasts a session timeout: the same line at
					// every poll reads as a hang, one every few seconds
					// with the time waited reads as progress.
					if time.Since(reported) >= leaveGroupReportEvery {
						reported = time.Now()
						o.progress(StepResync, leaveGroupProgress(n, g.flow, g.cluster, time.Since(start)))
					}
					return false, fmt.Sprintf("%d worker(s) of %s still in group %s on %s (kdr up stops the flows during this step; stop them if you run them by hand)", n, g.flow.Name(), g.flow.Group(), g.cluster), nil
				}
			}
			return true, "", nil
		})
	})
	if err != nil {
		return stepOut{}, err
	}
	topics, err := mirroredTopics(ctx, yAdm, rev)
	if err != nil {
		return stepOut{}, err
	}
	// x's diverged records are kept on y for the operator; copying them
	// back to x would only put them where they diverged.
	topics = slices.DeleteFunc(topics, func(t string) bool { return t == DivergedTopic(x) })
	ytd, err := yAdm.ListTopics(ctx, topics...)
	if err != nil {
		return stepOut{}, err
	}
	// Delete x's copies and both flows' offset syncs, which describe x's
	// old logs. Each flow's syncs are on its source, or on its target
	// (OffsetSyncsLocation, the same for both flows of a pattern).
	xSyncs, ySyncs := fwd.SyncsTopic(), rev.SyncsTopic()
	adms := map[string]*kadm.Client{x: xAdm, y: yAdm}
	fwdSyncsOn, revSyncsOn := fwd.SyncsCluster(), rev.SyncsCluster()
	doomed := map[string][]string{x: append([]string(nil), topics...)}
	doomed[fwdSyncsOn] = append(doomed[fwdSyncsOn], xSyncs)
	doomed[revSyncsOn] = append(doomed[revSyncsOn], ySyncs)
	for _, d := range []struct {
		adm    *kadm.Client
		topics []string
	}{{xAdm, doomed[x]}, {yAdm, doomed[y]}} {
		resps, err := d.adm.DeleteTopics(ctx, d.topics...)
		if err != nil {
			return stepOut{}, fmt.Errorf("deleting topics: %w", err)
		}
		for _, r := range resps {
			if r.Err != nil && !errors.Is(r.Err, kerr.UnknownTopicOrPartition) {
				return stepOut{}, fmt.Errorf("deleting topic %s: %w", r.Topic, r.Err)
			}
		}
		for _, t := range d.topics {
			if err := withTimeout(ctx, 30*time.Second, "deleting "+t, func(ctx context.Context) error { return waitTopicGone(ctx, d.adm, t) }); err != nil {
				return stepOut{}, err
			}
		}
	}
	// Re-created with y's replica count (capped at x's brokers), not x's
	// default.replication.factor, which is 1 unless set.
	xBrokers, err := mirror.BrokerCount(ctx, xAdm)
	if err != nil {
		return stepOut{}, fmt.Errorf("reading %s's brokers: %w", x, err)
	}
	syncsBrokers := xBrokers
	if revSyncsOn != x {
		if syncsBrokers, err = mirror.BrokerCount(ctx, adms[revSyncsOn]); err != nil {
			return stepOut{}, fmt.Errorf("reading %s's brokers: %w", revSyncsOn, err)
		}
	}
	for _, t := range topics {
		n := int32(len(ytd[t].Partitions))
		rf := int16(-1)
		if p, ok := ytd[t].Partitions[0]; ok && len(p.Replicas) > 0 {
			rf = int16(min(len(p.Replicas), xBrokers))
		}
		err := withTimeout(ctx, 30*time.Second, "creating "+t+" on "+x, func(ctx context.Context) error {
			return poll(ctx, 250*time.Millisecond, func() (bool, string, error) {
				resp, err := xAdm.CreateTopic(ctx, n, rf, nil, t)
				if err == nil {
					err = resp.Err
				}
				return err == nil, fmt.Sprint(err), nil
			})
		})
		if err != nil {
			return stepOut{}, err
		}
	}
	if err := offsets.EnsureSyncTopic(ctx, adms[revSyncsOn], ySyncs, rev.OffsetSyncsRetention.Milliseconds(),
		rev.InternalReplicationFactor(syncsBrokers)); !offsets.SyncTopicUsable(err) {
		return stepOut{}, err
	}
	starts, err := yAdm.ListStartOffsets(ctx, topics...)
	if err != nil {
		return stepOut{}, err
	}
	ends, err := yAdm.ListEndOffsets(ctx, topics...)
	if err != nil {
		return stepOut{}, err
	}
	c := &copier{o: o, x: x, y: y, syncsTopic: ySyncs, syncsOn: revSyncsOn}
	if err := c.open(); err != nil {
		return stepOut{}, err
	}
	defer c.close()
	var revPos, fwdPos kadm.Offsets
	var records int64
	shifted := 0
	var errs []error
	cctx, cancel := context.WithTimeout(ctx, o.opts.Drain)
	defer cancel()
	ends.Each(func(e kadm.ListedOffset) {
		if e.Err != nil {
			errs = append(errs, e.Err)
			return
		}
		start := int64(0)
		if s, ok := starts.Lookup(e.Topic, e.Partition); ok && s.Err == nil {
			start = s.Offset
		}
		xEnd, n, err := c.copyPartition(cctx, e.Topic, e.Partition, start, e.Offset)
		if err != nil {
			errs = append(errs, err)
			return
		}
		records += n
		if xEnd != e.Offset {
			shifted++
		}
		revPos.Add(kadm.Offset{Topic: e.Topic, Partition: e.Partition, At: e.Offset, LeaderEpoch: -1})
		fwdPos.Add(kadm.Offset{Topic: e.Topic, Partition: e.Partition, At: xEnd, LeaderEpoch: -1})
	})
	if err := errors.Join(errs...); err != nil {
		return stepOut{}, fmt.Errorf("re-copying %s's topics to %s: %w", y, x, err)
	}
	for _, g := range []struct {
		adm   *kadm.Client
		group string
		offs  kadm.Offsets
	}{{yAdm, rev.Group(), revPos}, {xAdm, fwd.Group(), fwdPos}} {
		if len(g.offs) == 0 {
			continue
		}
		resp, err := g.adm.CommitOffsets(ctx, g.group, g.offs)
		if err == nil {
			var failed []error
			resp.Each(func(r kadm.OffsetResponse) {
				if r.Err != nil {
					failed = append(failed, fmt.Errorf("%s/%d: %w", r.Topic, r.Partition, r.Err))
				}
			})
			err = errors.Join(failed...)
		}
		if err != nil {
			return stepOut{}, fmt.Errorf("positioning the mirror group %s after the copy: %w", g.group, err)
		}
	}
	o.setData("offsets_overwrite", true)
	msg := fmt.Sprintf("re-copied %d topic(s), %d record(s), from %s to %s", len(topics), records, y, x)
	if shifted > 0 {
		msg += fmt.Sprintf("; %d partition(s) did not start at offset 0 on %s, so their offsets differ on %s (the offset syncs translate them)", shifted, y, x)
	} else {
		msg += " with the same offsets"
	}
	return stepOut{msg: msg}, nil
}

// copier is the resync's plain copy: y's records to x, same partition,
// with the reverse flow's offset syncs written to syncsOn (y, or x when
// syncs are held on the target).
type copier struct {
	o          *opRun
	x, y       string
	syncsTopic string
	syncsOn    string
	prod       *kgo.Client // on x, as a mirror client
	syncs      *kgo.Client // on syncsOn
}

func (c *copier) open() error {
	var err error
	c.prod, err = c.o.cl.newClient(c.x, kgo.ClientID(resyncClientID), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerBatchMaxBytes(1<<20))
	if err != nil {
		return err
	}
	c.syncs, err = c.o.cl.newClient(c.syncsOn, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.RequiredAcks(kgo.AllISRAcks()))
	return err
}

func (c *copier) close() {
	if c.prod != nil {
		c.prod.Close()
	}
	if c.syncs != nil {
		c.syncs.Close()
	}
}

// copyPartition copies y's topic/partition [from, to) to x and returns x's
// end offset after it and the records copied.
func (c *copier) copyPartition(ctx context.Context, topic string, partition int32, from, to int64) (int64, int64, error) {
	em := offsets.NewEmitter()
	var batch []*kgo.Record
	var n int64
	xEnd := int64(0)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		ups := make([]int64, len(batch))
		for i, r := range batch {
			ups[i] = r.Offset
			batch[i] = &kgo.Record{Topic: topic, Partition: partition, Key: r.Key, Value: r.Value, Headers: r.Headers, Timestamp: r.Timestamp}
		}
		results := c.prod.ProduceSync(ctx, batch...)
		if err := results.FirstErr(); err != nil {
			return fmt.Errorf("copying %s[%d] to %s: %w", topic, partition, c.x, err)
		}
		pairs := make([]offsets.Pair, len(results))
		for i, r := range results {
			pairs[i] = offsets.Pair{Upstream: ups[i], Downstream: r.Record.Offset}
			xEnd = r.Record.Offset + 1
		}
		var syncs []*kgo.Record
		for _, p := range em.Batch(pairs) {
			s := mm2.OffsetSync{Topic: topic, Partition: partition, UpstreamOffset: p.Upstream, DownstreamOffset: p.Downstream}
			syncs = append(syncs, &kgo.Record{Topic: c.syncsTopic, Partition: 0, Key: s.Key(), Value: s.Value()})
		}
		if err := c.syncs.ProduceSync(ctx, syncs...).FirstErr(); err != nil {
			return fmt.Errorf("writing offset syncs of %s[%d] to %s on %s: %w", topic, partition, c.syncsTopic, c.syncsOn, err)
		}
		n += int64(len(batch))
		batch = batch[:0]
		return nil
	}
	var ferr error
	err := c.o.cl.readRange(ctx, c.y, topic, partition, from, to, func(r *kgo.Record) bool {
		batch = append(batch, r)
		if len(batch) >= 1000 {
			if ferr = flush(); ferr != nil {
				return false
			}
		}
		return true
	})
	if err == nil {
		err = ferr
	}
	if err == nil {
		err = flush()
	}
	return xEnd, n, err
}

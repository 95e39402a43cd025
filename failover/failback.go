package failover

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kdr-io/kdr/mirror/naming"
)

// Headers of a preserved diverged record: where it was on the old primary.
const (
	HeaderDivergedTopic     = "kdr-diverged-topic"
	HeaderDivergedPartition = "kdr-diverged-partition"
	HeaderDivergedOffset    = "kdr-diverged-offset"
)

// DivergedTopic is the topic on the active cluster that failback preserves
// the old primary's diverged records in.
func DivergedTopic(oldPrimary string) string { return oldPrimary + ".diverged" }

// StepResync is the failback step during which kdr up runs no flow into
// the old primary (its topics are being deleted and re-copied).
const StepResync = "truncate-and-resync"

// Failback returns to the old primary to after a forced promotion away from
// it: it preserves the records to acknowledged that never reached the
// active cluster, re-copies the active cluster's topics into to, and
// switches over to it. Identity naming only (see errFailbackNaming).
func Failback(ctx context.Context, opts Options, to string) (*Result, error) {
	return execute(ctx, opts, KindFailback, to)
}

func failbackSteps() []step {
	return []step{
		{"preflight", (*opRun).failbackPreflight},
		{"find-diverged", (*opRun).findDiverged},
		{"preserve", (*opRun).preserve},
		{StepResync, (*opRun).resync},
	}
}

// divergedPart lists one partition's diverged offsets on the old primary.
type divergedPart struct {
	Topic     string  `json:"topic"`
	Partition int32   `json:"partition"`
	Offsets   []int64 `json:"offsets"`
}

func (o *opRun) failbackPreflight(ctx context.Context) (stepOut, error) {
	if o.pat.Spec.Flow.Naming != "identity" {
		return stepOut{}, errFailbackNaming
	}
	if o.state.Active != o.from {
		return stepOut{}, fmt.Errorf("the active cluster is %s, not %s", o.state.Active, o.from)
	}
	for _, c := range []string{o.to, o.from} {
		if err := o.cl.reachable(ctx, c); err != nil {
			return stepOut{}, err
		}
	}
	adm, err := o.cl.admin(o.to)
	if err != nil {
		return stepOut{}, err
	}
	f, err := readFence(ctx, adm)
	if err != nil {
		return stepOut{}, fmt.Errorf("reading %s's fence: %w", o.to, err)
	}
	if f.Supported && !f.Fenced {
		return stepOut{}, fmt.Errorf("%s is not fenced: clients may be writing to it; fence it first (any kdr failover command or kdr up does, at epoch %d)", o.to, o.state.Epoch)
	}
	msg := fmt.Sprintf("%s reachable and fenced (epoch %d); %s active", o.to, f.Epoch, o.from)
	note, err := o.fixEpoch(ctx, o.to, o.from)
	if err != nil {
		return stepOut{}, err
	}
	if note != "" {
		msg += "; " + note
	}
	return stepOut{msg: msg}, nil
}

// sameRecord reports whether a and b are the same client record (the
// mirror's provenance header aside).
func sameRecord(a, b *kgo.Record) bool {
	if !bytes.Equal(a.Key, b.Key) || !bytes.Equal(a.Value, b.Value) || !a.Timestamp.Equal(b.Timestamp) {
		return false
	}
	strip := func(hs []kgo.RecordHeader) []kgo.RecordHeader {
		var out []kgo.RecordHeader
		for _, h := range hs {
			if h.Key != naming.ProvenanceHeader {
				out = append(out, h)
			}
		}
		return out
	}
	ha, hb := strip(a.Headers), strip(b.Headers)
	return slices.EqualFunc(ha, hb, func(x, y kgo.RecordHeader) bool { return x.Key == y.Key && bytes.Equal(x.Value, y.Value) })
}

// findDiverged finds, per partition the standby had at the promotion, the
// old primary's records it never received: the last record of the old
// primary on the active cluster is looked up on the old primary by
// content, and what follows it there (except the reverse flow's copies)
// diverged.
func (o *opRun) findDiverged(ctx context.Context) (stepOut, error) {
	lr, err := decodeLastReceived(o.state.LastReceived)
	if err != nil || lr == nil {
		return stepOut{}, fmt.Errorf("no forced promotion on record: %v", err)
	}
	x, y := o.to, o.from
	fwd := o.pat.Flow(x)
	xAdm, err := o.cl.admin(x)
	if err != nil {
		return stepOut{}, err
	}
	committed, err := xAdm.FetchOffsets(ctx, fwd.Group())
	if err != nil {
		return stepOut{}, fmt.Errorf("reading %s's positions on %s: %w", fwd.Group(), x, err)
	}
	var topics []string
	for _, p := range lr.Partitions {
		topics = append(topics, p.Topic)
	}
	starts, err := xAdm.ListStartOffsets(ctx, topics...)
	if err != nil {
		return stepOut{}, err
	}
	ends, err := xAdm.ListEndOffsets(ctx, topics...)
	if err != nil {
		return stepOut{}, err
	}
	rctx, cancel := context.WithTimeout(ctx, o.opts.Drain)
	defer cancel()
	var out []divergedPart
	count := 0
	for _, p := range lr.Partitions {
		start, end := int64(0), int64(0)
		if s, ok := starts.Lookup(p.Topic, p.Partition); ok && s.Err == nil {
			start = s.Offset
		}
		if e, ok := ends.Lookup(p.Topic, p.Partition); ok && e.Err == nil {
			end = e.Offset
		}
		lo := max(start, p.Upstream)
		if c, ok := committed.Lookup(p.Topic, p.Partition); ok && c.Err == nil && c.At > lo {
			lo = c.At
		}
		// The last record of x the standby received, at or after the
		// promotion's end (the copy may have gone on briefly).
		var last *kgo.Record
		yEnd, err := o.cl.endOffset(rctx, y, p.RemoteTopic, p.Partition)
		if err != nil {
			return stepOut{}, err
		}
		err = o.cl.readRange(rctx, y, p.RemoteTopic, p.Partition, max(0, p.StandbyEnd-1), yEnd, func(r *kgo.Record) bool {
			if naming.Visited(r.Headers, x) {
				last = r
			}
			return true
		})
		if err != nil {
			return stepOut{}, err
		}
		received := lo
		if last != nil {
			found := false
			err = o.cl.readRange(rctx, x, p.Topic, p.Partition, max(start, lo-1), end, func(r *kgo.Record) bool {
				if sameRecord(r, last) {
					received, found = r.Offset+1, true
					return false
				}
				return true
			})
			if err != nil {
				return stepOut{}, err
			}
			if !found {
				o.log.Warn("the standby's last copy was not found on the old primary; using the mirror's committed position",
					"topic", p.Topic, "partition", p.Partition, "from", lo)
			}
		}
		dp := divergedPart{Topic: p.Topic, Partition: p.Partition}
		err = o.cl.readRange(rctx, x, p.Topic, p.Partition, received, end, func(r *kgo.Record) bool {
			if !naming.Visited(r.Headers, y) { // not a copy the reverse flow brought back
				dp.Offsets = append(dp.Offsets, r.Offset)
			}
			return true
		})
		if err != nil {
			return stepOut{}, err
		}
		if len(dp.Offsets) > 0 {
			out = append(out, dp)
			count += len(dp.Offsets)
		}
	}
	o.setData("diverged", out)
	return stepOut{msg: fmt.Sprintf("%d record(s) of %s in %d partition(s) never reached %s", count, x, len(out), y)}, nil
}

// preserve copies the diverged records to DivergedTopic(x) on the active
// cluster (same partition, original coordinates in headers). Records
// already there (a resumed step) are not copied twice.
func (o *opRun) preserve(ctx context.Context) (stepOut, error) {
	var parts []divergedPart
	if _, err := o.getData("diverged", &parts); err != nil {
		return stepOut{}, err
	}
	x, y := o.to, o.from
	if len(parts) == 0 {
		return stepOut{msg: "nothing diverged", skipped: true}, nil
	}
	xAdm, err := o.cl.admin(x)
	if err != nil {
		return stepOut{}, err
	}
	yAdm, err := o.cl.admin(y)
	if err != nil {
		return stepOut{}, err
	}
	var topics []string
	for _, p := range parts {
		topics = append(topics, p.Topic)
	}
	td, err := xAdm.ListTopics(ctx, topics...)
	if err != nil {
		return stepOut{}, err
	}
	n := int32(1)
	for _, t := range td {
		n = max(n, int32(len(t.Partitions)))
	}
	topic := DivergedTopic(x)
	if err := ensureTopic(ctx, yAdm, topic, n); err != nil {
		return stepOut{}, err
	}
	have, err := o.readPreserved(ctx, y, topic)
	if err != nil {
		return stepOut{}, err
	}
	prod, err := o.cl.newClient(y, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.RequiredAcks(kgo.AllISRAcks()))
	if err != nil {
		return stepOut{}, err
	}
	defer prod.Close()
	rctx, cancel := context.WithTimeout(ctx, o.opts.Drain)
	defer cancel()
	copied := 0
	for _, p := range parts {
		want := map[int64]bool{}
		for _, off := range p.Offsets {
			if _, ok := have[coord(p.Topic, p.Partition, off)]; !ok {
				want[off] = true
			}
		}
		if len(want) == 0 {
			continue
		}
		var recs []*kgo.Record
		err := o.cl.readRange(rctx, x, p.Topic, p.Partition, slices.Min(p.Offsets), slices.Max(p.Offsets)+1, func(r *kgo.Record) bool {
			if want[r.Offset] {
				hs := append(slices.Clone(r.Headers),
					kgo.RecordHeader{Key: HeaderDivergedTopic, Value: []byte(r.Topic)},
					kgo.RecordHeader{Key: HeaderDivergedPartition, Value: []byte(strconv.Itoa(int(r.Partition)))},
					kgo.RecordHeader{Key: HeaderDivergedOffset, Value: []byte(strconv.FormatInt(r.Offset, 10))})
				recs = append(recs, &kgo.Record{Topic: topic, Partition: r.Partition, Key: r.Key, Value: r.Value, Headers: hs, Timestamp: r.Timestamp})
			}
			return true
		})
		if err != nil {
			return stepOut{}, err
		}
		if err := prod.ProduceSync(rctx, recs...).FirstErr(); err != nil {
			return stepOut{}, fmt.Errorf("preserving diverged records in %s on %s: %w", topic, y, err)
		}
		copied += len(recs)
	}
	if err := o.fillDiverged(ctx); err != nil {
		return stepOut{}, err
	}
	return stepOut{msg: fmt.Sprintf("%d diverged record(s) preserved in %s on %s (%d there already)", len(o.res.Diverged), topic, y, len(o.res.Diverged)-copied)}, nil
}

func coord(topic string, p int32, off int64) string { return fmt.Sprintf("%s/%d/%d", topic, p, off) }

// readPreserved reads DivergedTopic's records on cluster, by the
// coordinates in their headers.
func (o *opRun) readPreserved(ctx context.Context, cluster, topic string) (map[string]DivergedRecord, error) {
	adm, err := o.cl.admin(cluster)
	if err != nil {
		return nil, err
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return nil, err
	}
	out := map[string]DivergedRecord{}
	rctx, cancel := context.WithTimeout(ctx, o.opts.Drain)
	defer cancel()
	var errs []error
	ends.Each(func(e kadm.ListedOffset) {
		if e.Err != nil {
			if !errors.Is(e.Err, kerr.UnknownTopicOrPartition) {
				errs = append(errs, e.Err)
			}
			return
		}
		err := o.cl.readRange(rctx, cluster, topic, e.Partition, 0, e.Offset, func(r *kgo.Record) bool {
			d := DivergedRecord{Key: r.Key, Value: r.Value, Timestamp: r.Timestamp, Offset: -1}
			for _, h := range r.Headers {
				switch h.Key {
				case HeaderDivergedTopic:
					d.Topic = string(h.Value)
				case HeaderDivergedPartition:
					p, _ := strconv.Atoi(string(h.Value))
					d.Partition = int32(p)
				case HeaderDivergedOffset:
					d.Offset, _ = strconv.ParseInt(string(h.Value), 10, 64)
				}
			}
			if d.Topic != "" && d.Offset >= 0 {
				out[coord(d.Topic, d.Partition, d.Offset)] = d
			}
			return true
		})
		if err != nil {
			errs = append(errs, err)
		}
	})
	return out, errors.Join(errs...)
}

// fillDiverged sets Result.Diverged from the preserved copies of this
// operation's diverged records.
func (o *opRun) fillDiverged(ctx context.Context) error {
	var parts []divergedPart
	if ok, err := o.getData("diverged", &parts); !ok || err != nil || len(parts) == 0 {
		return err
	}
	// The preserved records live on the cluster that was active during
	// the failback (o.from).
	have, err := o.readPreserved(ctx, o.from, DivergedTopic(o.to))
	if err != nil {
		return err
	}
	o.res.Diverged = nil
	var missing []string
	for _, p := range parts {
		for _, off := range p.Offsets {
			d, ok := have[coord(p.Topic, p.Partition, off)]
			if !ok {
				missing = append(missing, coord(p.Topic, p.Partition, off))
				continue
			}
			o.res.Diverged = append(o.res.Diverged, d)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%d diverged record(s) missing from %s on %s, e.g. %s", len(missing), DivergedTopic(o.to), o.from, missing[0])
	}
	return nil
}

// ensureTopic creates topic with n partitions (the broker's replication
// factor), or grows it to n.
func ensureTopic(ctx context.Context, adm *kadm.Client, topic string, n int32) error {
	resp, err := adm.CreateTopic(ctx, n, -1, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err == nil {
		return nil
	}
	if !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("creating topic %s: %w", topic, err)
	}
	td, err := adm.ListTopics(ctx, topic)
	if err != nil {
		return err
	}
	if have := int32(len(td[topic].Partitions)); have < n {
		if _, err := adm.CreatePartitions(ctx, int(n-have), topic); err != nil {
			return fmt.Errorf("growing topic %s to %d partitions: %w", topic, n, err)
		}
	}
	return nil
}

// waitTopicGone polls until topic is gone from the cluster's metadata.
func waitTopicGone(ctx context.Context, adm *kadm.Client, topic string) error {
	return poll(ctx, 200*time.Millisecond, func() (bool, string, error) {
		td, err := adm.ListTopics(ctx, topic)
		if err != nil {
			return false, err.Error(), nil
		}
		d, ok := td[topic]
		return !ok || errors.Is(d.Err, kerr.UnknownTopicOrPartition), "topic " + topic + " still exists", nil
	})
}

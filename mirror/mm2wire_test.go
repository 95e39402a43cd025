package mirror

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kdr-io/kdr/internal/kdrtest"
)

// This file reads MM2's three internal topics with a decoder of its own,
// written from MirrorMaker 2's schemas (org.apache.kafka.connect.mirror
// Heartbeat, OffsetSync, Checkpoint) and not from package mm2, so that a
// layout mistake shared by kdr's encoder and decoder cannot pass unseen.
// Every record is Kafka's Struct serialisation: fields in order, big-endian,
// a STRING is an INT16 length and that many bytes.
//
//	heartbeat    key   sourceClusterAlias STRING, targetClusterAlias STRING
//	             value version INT16 = 0, timestamp INT64 (ms)
//	offset sync  key   topic STRING, partition INT32
//	             value upstreamOffset INT64, offset INT64 (no version)
//	checkpoint   key   group STRING, topic STRING, partition INT32
//	             value version INT16 = 0, upstreamOffset INT64, offset INT64, metadata STRING
//
// "offset" is MM2's field name for the downstream offset.

// The problems wireError reports.
const (
	wireShort    = "short buffer"
	wireTrailing = "trailing bytes"
	wireVersion  = "unsupported version"
	wireNegative = "negative STRING length"
)

// wireError names the record part and the MM2 field a decode failed at. For
// trailing bytes, Field is the last field, the one they follow.
type wireError struct{ Part, Field, Problem, Detail string }

func (e *wireError) Error() string {
	return fmt.Sprintf("%s: field %s: %s (%s)", e.Part, e.Field, e.Problem, e.Detail)
}

// wire walks one key or value; the first error sticks, so callers read
// every field and check once.
type wire struct {
	part, last string // last: the last field read
	b          []byte // what is left
	err        error
}

func (w *wire) fail(field, problem, format string, args ...any) {
	if w.err == nil {
		w.err = &wireError{Part: w.part, Field: field, Problem: problem, Detail: fmt.Sprintf(format, args...)}
	}
}

func (w *wire) take(field string, n int) []byte {
	if w.err != nil {
		return nil
	}
	if len(w.b) < n {
		w.fail(field, wireShort, "needs %d bytes, %d left", n, len(w.b))
		return nil
	}
	p := w.b[:n]
	w.b, w.last = w.b[n:], field
	return p
}

// int reads an INT16, INT32 or INT64 (size bytes).
func (w *wire) int(field string, size int) int64 {
	p := w.take(field, size)
	switch len(p) {
	case 2:
		return int64(int16(binary.BigEndian.Uint16(p)))
	case 4:
		return int64(int32(binary.BigEndian.Uint32(p)))
	case 8:
		return int64(binary.BigEndian.Uint64(p))
	}
	return 0 // w.err is set
}

// string reads a STRING. MM2 never writes a null one, so -1 is an error
// like any other negative length.
func (w *wire) string(field string) string {
	n := w.int(field, 2)
	if n < 0 {
		w.fail(field, wireNegative, "length %d", n)
	}
	return string(w.take(field, int(max(n, 0))))
}

// version reads a value's INT16 version: MM2 has only ever written 0.
func (w *wire) version() {
	if v := w.int("version", 2); w.err == nil && v != 0 {
		w.fail("version", wireVersion, "version %d", v)
	}
}

func (w *wire) end() error {
	if w.err == nil && len(w.b) > 0 {
		w.fail(w.last, wireTrailing, "%d bytes after it", len(w.b))
	}
	return w.err
}

type wireHeartbeat struct {
	Source, Target string
	Timestamp      int64 // ms
}

func decodeWireHeartbeat(key, value []byte) (wireHeartbeat, error) {
	var h wireHeartbeat
	k, v := &wire{part: "heartbeat key", b: key}, &wire{part: "heartbeat value", b: value}
	h.Source = k.string("sourceClusterAlias")
	h.Target = k.string("targetClusterAlias")
	v.version()
	h.Timestamp = v.int("timestamp", 8)
	return h, cmp.Or(k.end(), v.end())
}

type wireSync struct {
	Topic                string
	Partition            int32
	Upstream, Downstream int64
}

func decodeWireOffsetSync(key, value []byte) (wireSync, error) {
	var s wireSync
	k, v := &wire{part: "offset sync key", b: key}, &wire{part: "offset sync value", b: value}
	s.Topic = k.string("topic")
	s.Partition = int32(k.int("partition", 4))
	s.Upstream = v.int("upstreamOffset", 8)
	s.Downstream = v.int("offset", 8)
	return s, cmp.Or(k.end(), v.end())
}

type wireCheckpoint struct {
	Group, Topic         string
	Partition            int32
	Upstream, Downstream int64
	Metadata             string
}

func decodeWireCheckpoint(key, value []byte) (wireCheckpoint, error) {
	var c wireCheckpoint
	k, v := &wire{part: "checkpoint key", b: key}, &wire{part: "checkpoint value", b: value}
	c.Group = k.string("group")
	c.Topic = k.string("topic")
	c.Partition = int32(k.int("partition", 4))
	v.version()
	c.Upstream = v.int("upstreamOffset", 8)
	c.Downstream = v.int("offset", 8)
	c.Metadata = v.string("metadata")
	return c, cmp.Or(k.end(), v.end())
}

// decodeAll decodes every record of the one-partition internal topic,
// failing at the first that does not decode: such bytes never get better.
func decodeAll[T any](t *testing.T, c *cluster, topic string, decode func(key, value []byte) (T, error)) []T {
	t.Helper()
	var out []T
	for _, r := range c.readAll(topic)[0] {
		x, err := decode(r.Key, r.Value)
		if err != nil {
			t.Fatalf("%s at offset %d: %v", topic, r.Offset, err)
		}
		out = append(out, x)
	}
	return out
}

// recordAt is the record at offset off of partition p, or nil.
func recordAt(recs map[int32][]*kgo.Record, p int32, off int64) *kgo.Record {
	i, ok := slices.BinarySearchFunc(recs[p], off, func(r *kgo.Record, o int64) int { return cmp.Compare(r.Offset, o) })
	if !ok {
		return nil
	}
	return recs[p][i]
}

// TestMirrorInternalTopicsReadByIndependentDecoder: what an east→west flow
// writes to the heartbeats, offset-syncs and checkpoints topics decodes with
// MM2's layout, and says what happened: heartbeats name the flow, every
// sync maps a source record to its copy, every checkpoint carries the
// group's commit and where it resumes on the target.
func TestMirrorInternalTopicsReadByIndependentDecoder(t *testing.T) {
	const (
		group       = "billing"
		syncsTopic  = "mm2-offset-syncs.west.internal" // on the source, as MM2's default offset-syncs.topic.location
		cpTopic     = "east.checkpoints.internal"
		hbTopic     = "heartbeats"
		remoteTopic = "east.orders"
		n           = 600
	)
	east, west := startCluster(t), startCluster(t)
	// orderRecords fills partitions 0-2; partition 3 stays empty and must
	// get no syncs.
	east.createTopic("orders", 4)
	// Records already in the remote topic shift every copy's offset, by a
	// different amount per partition, so that an upstream offset read where
	// the downstream one is (or the reverse) points at the wrong record.
	west.createTopic(remoteTopic, 4)
	var pre []*kgo.Record
	for p, k := range map[int32]int{0: 5, 1: 11, 2: 2} {
		for i := range k {
			pre = append(pre, &kgo.Record{Topic: remoteTopic, Partition: p, Value: []byte(fmt.Sprintf("pre-%d-%d", p, i))})
		}
	}
	west.produce(pre...)
	began := time.Now()
	f := testFlow(east, west, "east", "west")
	f.CheckpointInterval = 200 * time.Millisecond
	startWorker(t, f)
	// Three rounds, each copied before the next is produced, so the copy of
	// every partition ends a batch at each round's last record, which the
	// emitter must sync.
	recs := orderRecords("v", 0, n)
	var roundEnds []map[int32]int64
	for i := range 3 {
		east.produce(recs[i*n/3 : (i+1)*n/3]...)
		roundEnds = append(roundEnds, east.ends("orders"))
		waitCount(t, west, remoteTopic, int64(len(pre)+(i+1)*n/3), 30*time.Second)
	}

	// The group, with no members, is at the head of partition 0, in the
	// middle of 1 (with commit metadata) and lagging on 2.
	ends := east.ends("orders")
	committed := map[int32]kadm.Offset{
		0: {Topic: "orders", Partition: 0, At: ends[0], LeaderEpoch: -1},
		1: {Topic: "orders", Partition: 1, At: ends[1] / 2, LeaderEpoch: -1, Metadata: "billing-run-7"},
		2: {Topic: "orders", Partition: 2, At: 3, LeaderEpoch: -1},
	}
	commit := kadm.Offsets{}
	for _, o := range committed {
		commit.Add(o)
	}
	if err := east.adm.CommitAllOffsets(t.Context(), group, commit); err != nil {
		t.Fatal(err)
	}

	// Wait for the sync of every partition's last record (the emitter syncs
	// the end of every acknowledged batch), a checkpoint of every committed
	// offset and a heartbeat.
	kdrtest.Eventually(t, 30*time.Second, func() (bool, string) {
		newest := map[int32]int64{}
		for _, s := range decodeAll(t, east, syncsTopic, decodeWireOffsetSync) {
			newest[s.Partition] = max(newest[s.Partition], s.Upstream)
		}
		for p := range int32(3) {
			if newest[p] != ends[p]-1 {
				return false, fmt.Sprintf("partition %d: newest sync is for %d, want %d", p, newest[p], ends[p]-1)
			}
		}
		got := map[int32]bool{}
		for _, c := range decodeAll(t, west, cpTopic, decodeWireCheckpoint) {
			got[c.Partition] = got[c.Partition] || c.Group == group && c.Upstream == committed[c.Partition].At
		}
		for p := range committed {
			if !got[p] {
				return false, fmt.Sprintf("no checkpoint of the commit on partition %d yet", p)
			}
		}
		return west.count(hbTopic) > 0, "no heartbeat yet"
	})

	src, dst := east.readAll("orders"), west.readAll(remoteTopic)
	dstEnds := west.ends(remoteTopic)

	// Offset syncs: per source partition in the order written, upstream
	// strictly increasing, each mapping a source record to its copy.
	syncs := map[int32][]wireSync{}
	for _, s := range decodeAll(t, east, syncsTopic, decodeWireOffsetSync) {
		if s.Topic != "orders" || s.Partition < 0 || s.Partition >= 4 {
			t.Fatalf("offset sync %+v, want one for orders/0-3", s)
		}
		syncs[s.Partition] = append(syncs[s.Partition], s)
	}
	for p := range int32(4) {
		ss := syncs[p]
		if len(src[p]) == 0 {
			if len(ss) != 0 {
				t.Errorf("partition %d has no records but %d syncs", p, len(ss))
			}
			continue
		}
		// A fresh emitter syncs the first record it copies (offset 0 here)
		// and the last of every batch.
		if len(ss) == 0 || ss[0].Upstream != 0 {
			t.Errorf("partition %d: syncs %+v, want the first for offset 0", p, ss)
			continue
		}
		for _, e := range roundEnds {
			if !slices.ContainsFunc(ss, func(s wireSync) bool { return s.Upstream == e[p]-1 }) {
				t.Errorf("partition %d: no sync for %d, the last record of a round; syncs %+v", p, e[p]-1, ss)
			}
		}
		for i, s := range ss {
			if i > 0 && s.Upstream <= ss[i-1].Upstream {
				t.Errorf("partition %d: sync %d (%+v) is not after sync %d (%+v)", p, i, s, i-1, ss[i-1])
			}
			u, d := recordAt(src, p, s.Upstream), recordAt(dst, p, s.Downstream)
			if u == nil || d == nil || !sameRecord(u, d) {
				t.Errorf("partition %d: sync %+v maps %v to %v", p, s, u, d)
			}
		}
	}
	if west.hasTopic(syncsTopic) {
		t.Errorf("%s exists on the target; MM2 keeps it on the source", syncsTopic)
	}

	// Checkpoints (the wait saw one of every commit): every one is for the
	// group, keyed by the target-side topic as MM2 does
	// (MirrorCheckpointTask.renameTopicPartition), and carries the commit
	// and the target offset holding the same record (the target's end for a
	// group at the source's head).
	for _, c := range decodeAll(t, west, cpTopic, decodeWireCheckpoint) {
		want, ok := committed[c.Partition]
		if c.Group != group || c.Topic != remoteTopic || !ok {
			t.Errorf("checkpoint %+v, want one of %s for %s/0-2", c, group, remoteTopic)
			continue
		}
		if c.Upstream != want.At || c.Metadata != want.Metadata {
			t.Errorf("checkpoint %+v, the group committed %d with metadata %q", c, want.At, want.Metadata)
		}
		if want.At == ends[c.Partition] {
			if c.Downstream != dstEnds[c.Partition] {
				t.Errorf("checkpoint %+v: the group is at the source's head, want the target's end %d", c, dstEnds[c.Partition])
			}
		} else if u, d := recordAt(src, c.Partition, c.Upstream), recordAt(dst, c.Partition, c.Downstream); u == nil || d == nil || !sameRecord(u, d) {
			t.Errorf("checkpoint %+v maps %v to %v", c, u, d)
		}
	}

	// Heartbeats: all from this flow, stamped (in value and record alike)
	// within the test's run.
	hbs := west.readAll(hbTopic)[0] // not empty: the wait saw one
	ended := time.Now()
	for _, r := range hbs {
		h, err := decodeWireHeartbeat(r.Key, r.Value)
		if err != nil {
			t.Fatalf("heartbeat at %d: %v", r.Offset, err)
		}
		if h.Source != "east" || h.Target != "west" || h.Timestamp < began.UnixMilli() || h.Timestamp > ended.UnixMilli() ||
			r.Timestamp.UnixMilli() != h.Timestamp {
			t.Errorf("heartbeat at %d: %+v with record timestamp %d, want east→west within [%d, %d]",
				r.Offset, h, r.Timestamp.UnixMilli(), began.UnixMilli(), ended.UnixMilli())
		}
	}
}

// wireBytes lays fields out by hand as MM2 does: a string as STRING, an
// int16/int32/int64 big-endian.
func wireBytes(fields ...any) []byte {
	var b []byte
	for _, f := range fields {
		if s, ok := f.(string); ok {
			f = append(binary.BigEndian.AppendUint16(nil, uint16(len(s))), s...)
		}
		var err error
		if b, err = binary.Append(b, binary.BigEndian, f); err != nil {
			panic(err)
		}
	}
	return b
}

// TestMirrorMM2WireDecoder: the test decoder reads hand-laid bytes exactly
// and refuses short buffers, trailing bytes, negative lengths and versions
// other than 0, naming the field.
func TestMirrorMM2WireDecoder(t *testing.T) {
	hbKey, hbVal := wireBytes("east", "west"), wireBytes(int16(0), int64(1_700_000_000_123))
	// MM2's own example bytes: orders/3.
	syncKey, syncVal := []byte("\x00\x06orders\x00\x00\x00\x03"), wireBytes(int64(41), int64(40))
	cpKey, cpVal := wireBytes("billing", "east.orders", int32(2)), wireBytes(int16(0), int64(7), int64(5), "m")

	if h, err := decodeWireHeartbeat(hbKey, hbVal); err != nil || h != (wireHeartbeat{"east", "west", 1_700_000_000_123}) {
		t.Errorf("heartbeat: %+v, %v", h, err)
	}
	if s, err := decodeWireOffsetSync(syncKey, syncVal); err != nil || s != (wireSync{"orders", 3, 41, 40}) {
		t.Errorf("offset sync: %+v, %v", s, err)
	}
	if c, err := decodeWireCheckpoint(cpKey, cpVal); err != nil || c != (wireCheckpoint{"billing", "east.orders", 2, 7, 5, "m"}) {
		t.Errorf("checkpoint: %+v, %v", c, err)
	}

	hb := func(k, v []byte) error { _, err := decodeWireHeartbeat(k, v); return err }
	sync := func(k, v []byte) error { _, err := decodeWireOffsetSync(k, v); return err }
	cp := func(k, v []byte) error { _, err := decodeWireCheckpoint(k, v); return err }
	cut := func(b []byte, n int) []byte { return b[:len(b)-n] }
	junk := func(b []byte) []byte { return append(slices.Clone(b), 0xde, 0xad) }
	for _, c := range []struct {
		name           string
		decode         func(k, v []byte) error
		key, value     []byte
		field, problem string
	}{
		{"heartbeat key truncated", hb, cut(hbKey, 1), hbVal, "targetClusterAlias", wireShort},
		{"heartbeat value truncated", hb, hbKey, cut(hbVal, 1), "timestamp", wireShort},
		{"heartbeat value empty", hb, hbKey, nil, "version", wireShort},
		{"heartbeat key trailing", hb, junk(hbKey), hbVal, "targetClusterAlias", wireTrailing},
		{"heartbeat value trailing", hb, hbKey, junk(hbVal), "timestamp", wireTrailing},
		{"heartbeat version 1", hb, hbKey, wireBytes(int16(1), int64(0)), "version", wireVersion},
		{"offset sync key truncated", sync, cut(syncKey, 1), syncVal, "partition", wireShort},
		{"offset sync key string overruns", sync, []byte("\x00\x09orders"), syncVal, "topic", wireShort},
		{"offset sync key negative length", sync, wireBytes(int16(-1), int32(0)), syncVal, "topic", wireNegative},
		{"offset sync value truncated", sync, syncKey, cut(syncVal, 1), "offset", wireShort},
		{"offset sync value half", sync, syncKey, syncVal[:5], "upstreamOffset", wireShort},
		{"offset sync key trailing", sync, junk(syncKey), syncVal, "partition", wireTrailing},
		{"offset sync value trailing", sync, syncKey, junk(syncVal), "offset", wireTrailing},
		{"checkpoint key truncated", cp, cut(cpKey, 1), cpVal, "partition", wireShort},
		{"checkpoint key group overruns", cp, cpKey[:5], cpVal, "group", wireShort},
		{"checkpoint value truncated", cp, cpKey, cut(cpVal, 1), "metadata", wireShort},
		{"checkpoint value cut in offset", cp, cpKey, cpVal[:12], "offset", wireShort},
		{"checkpoint key trailing", cp, junk(cpKey), cpVal, "partition", wireTrailing},
		{"checkpoint value trailing", cp, cpKey, junk(cpVal), "metadata", wireTrailing},
		{"checkpoint version 1", cp, cpKey, wireBytes(int16(1), int64(7), int64(5), "m"), "version", wireVersion},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := c.decode(c.key, c.value)
			var we *wireError
			if !errors.As(err, &we) || we.Field != c.field || we.Problem != c.problem {
				t.Fatalf("error %v, want %s at field %s", err, c.problem, c.field)
			}
		})
	}
}

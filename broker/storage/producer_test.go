package storage

import (
	"errors"
	"math"
	"os"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

func idem(pid int64, epoch int16, seq int32) batchOpts {
	return batchOpts{idempotent: true, pid: pid, epoch: epoch, seq: seq}
}

func TestStorageIdempotentDuplicateReturnsOriginalOffsets(t *testing.T) {
	l := openLog(t, t.TempDir(), testConfig(), nil)
	mustAppend(t, l, makeBatch(t, vals(2, "other"), batchOpts{}), 0) // offsets 0-1
	b0 := makeBatch(t, vals(3, "p"), idem(7, 0, 0))                  // seq 0-2
	b1 := makeBatch(t, vals(2, "p"), idem(7, 0, 3))                  // seq 3-4
	if info := mustAppend(t, l, b0, 0); info.BaseOffset != 2 || info.LastOffset != 4 {
		t.Fatalf("first: %+v", info)
	}
	if info := mustAppend(t, l, b1, 0); info.BaseOffset != 5 || info.LastOffset != 6 {
		t.Fatalf("second: %+v", info)
	}
	size := l.Size()
	for _, c := range []struct {
		b          []byte
		base, last int64
	}{{b0, 2, 4}, {b1, 5, 6}} {
		info, err := l.AppendAsLeader(c.b, 0)
		if err != nil || !info.Duplicate || info.BaseOffset != c.base || info.LastOffset != c.last {
			t.Fatalf("retry: %+v, %v; want duplicate at %d-%d", info, err, c.base, c.last)
		}
	}
	if l.LogEndOffset() != 7 || l.Size() != size {
		t.Fatalf("duplicates appended something: LEO %d size %d", l.LogEndOffset(), l.Size())
	}
	if epoch, seq, ok := l.ProducerState(7); !ok || epoch != 0 || seq != 4 {
		t.Fatalf("ProducerState = %d, %d, %v", epoch, seq, ok)
	}
}

func TestStorageIdempotentSequenceErrors(t *testing.T) {
	l := openLog(t, t.TempDir(), testConfig(), nil)
	mustAppend(t, l, makeBatch(t, vals(3, "p"), idem(1, 5, 0)), 0)
	cases := []struct {
		name string
		opts batchOpts
		want error
		code *kerr.Error
	}{
		{"gap", idem(1, 5, 4), ErrOutOfOrderSequence, kerr.OutOfOrderSequenceNumber},
		{"behind", idem(1, 5, 1), ErrOutOfOrderSequence, kerr.OutOfOrderSequenceNumber},
		{"old epoch", idem(1, 4, 3), ErrInvalidProducerEpoch, kerr.InvalidProducerEpoch},
		{"new epoch not at 0", idem(1, 6, 3), ErrOutOfOrderSequence, kerr.OutOfOrderSequenceNumber},
		{"unknown producer not at 0", idem(2, 0, 9), ErrOutOfOrderSequence, kerr.OutOfOrderSequenceNumber},
		{"negative sequence", idem(3, 0, -1), ErrInvalidRecord, kerr.InvalidRecord},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := l.AppendAsLeader(makeBatch(t, vals(1, "x"), c.opts), 0)
			if !errors.Is(err, c.want) || KafkaError(err) != c.code {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
		})
	}
	if l.LogEndOffset() != 3 {
		t.Fatalf("LEO = %d", l.LogEndOffset())
	}
	// In sequence works; a new epoch restarts at 0 and fences the old one.
	mustAppend(t, l, makeBatch(t, vals(1, "x"), idem(1, 5, 3)), 0)
	mustAppend(t, l, makeBatch(t, vals(1, "x"), idem(1, 6, 0)), 0)
	if _, err := l.AppendAsLeader(makeBatch(t, vals(1, "x"), idem(1, 5, 4)), 0); !errors.Is(err, ErrInvalidProducerEpoch) {
		t.Fatalf("fenced epoch: %v", err)
	}
	if epoch, seq, _ := l.ProducerState(1); epoch != 6 || seq != 0 {
		t.Fatalf("state %d/%d", epoch, seq)
	}
}

func TestStorageIdempotentSequenceWraps(t *testing.T) {
	l := openLog(t, t.TempDir(), testConfig(), nil)
	mustAppend(t, l, makeBatch(t, vals(1, "x"), idem(1, 0, 0)), 0)
	// Move the producer near MaxInt32 the way a follower would learn it.
	l.mu.Lock()
	e := l.producers[1]
	e.add(batchMeta{firstSeq: math.MaxInt32 - 2, lastSeq: math.MaxInt32 - 2, firstOff: 0, lastOff: 0})
	l.producers[1] = e
	l.mu.Unlock()
	// seq MaxInt32-1, MaxInt32, 0: wraps inside the batch.
	mustAppend(t, l, makeBatch(t, vals(3, "x"), idem(1, 0, math.MaxInt32-1)), 0)
	if _, seq, _ := l.ProducerState(1); seq != 0 {
		t.Fatalf("last seq = %d, want 0 after wrapping", seq)
	}
	mustAppend(t, l, makeBatch(t, vals(1, "x"), idem(1, 0, 1)), 0)
}

func TestStorageIdempotentMultiBatchIsAtomic(t *testing.T) {
	l := openLog(t, t.TempDir(), testConfig(), nil)
	// Two batches of one producer in one call chain on each other.
	call := slices.Concat(makeBatch(t, vals(2, "a"), idem(4, 0, 0)), makeBatch(t, vals(2, "b"), idem(4, 0, 2)))
	if info := mustAppend(t, l, call, 0); info.BaseOffset != 0 || info.LastOffset != 3 {
		t.Fatalf("%+v", info)
	}
	// The second batch is out of order: neither is appended and the
	// producer state does not move.
	bad := slices.Concat(makeBatch(t, vals(1, "c"), idem(4, 0, 4)), makeBatch(t, vals(1, "d"), idem(4, 0, 9)))
	if _, err := l.AppendAsLeader(bad, 0); !errors.Is(err, ErrOutOfOrderSequence) {
		t.Fatalf("err = %v", err)
	}
	if _, seq, _ := l.ProducerState(4); seq != 3 || l.LogEndOffset() != 4 {
		t.Fatalf("seq %d LEO %d after a rejected call", seq, l.LogEndOffset())
	}
	// The whole call retried is a duplicate.
	info, err := l.AppendAsLeader(call, 0)
	if err != nil || !info.Duplicate || info.BaseOffset != 0 || info.LastOffset != 3 {
		t.Fatalf("retry of the call: %+v %v", info, err)
	}
	// A retry mixed with a new batch is rejected.
	mixed := slices.Concat(makeBatch(t, vals(2, "b"), idem(4, 0, 2)), makeBatch(t, vals(1, "e"), idem(4, 0, 4)))
	if _, err := l.AppendAsLeader(mixed, 0); !errors.Is(err, ErrOutOfOrderSequence) {
		t.Fatalf("mixed: %v", err)
	}
}

func TestStorageIdempotentOnlyLastFiveBatchesAreDuplicates(t *testing.T) {
	l := openLog(t, t.TempDir(), testConfig(), nil)
	var batches [][]byte
	for i := range 7 {
		b := makeBatch(t, vals(1, "x"), idem(9, 0, int32(i)))
		mustAppend(t, l, b, 0)
		batches = append(batches, b)
	}
	if info, err := l.AppendAsLeader(batches[2], 0); err != nil || !info.Duplicate || info.BaseOffset != 2 {
		t.Fatalf("retry of the 5th newest: %+v %v", info, err)
	}
	if _, err := l.AppendAsLeader(batches[1], 0); !errors.Is(err, ErrOutOfOrderSequence) {
		t.Fatalf("retry of the 6th newest: %v", err)
	}
}

func producerLog(t *testing.T, dir string) (*Log, [][]byte) {
	cfg := testConfig()
	cfg.SegmentBytes = 400 // several rolls, so snapshots are written
	l := openLog(t, dir, cfg, nil)
	var sent [][]byte
	for i := range 12 {
		b := makeBatch(t, vals(2, "p"), batchOpts{idempotent: true, pid: 11, epoch: 3, seq: int32(2 * i), codec: codecPtr(kgo.SnappyCompression())})
		mustAppend(t, l, b, 0)
		sent = append(sent, b)
	}
	return l, sent
}

func checkProducerSurvived(t *testing.T, dir string, sent [][]byte) {
	t.Helper()
	cfg := testConfig()
	cfg.SegmentBytes = 400
	l := openLog(t, dir, cfg, nil)
	if epoch, seq, ok := l.ProducerState(11); !ok || epoch != 3 || seq != 23 {
		t.Fatalf("ProducerState after reopen = %d, %d, %v; want 3, 23", epoch, seq, ok)
	}
	info, err := l.AppendAsLeader(sent[11], 0)
	if err != nil || !info.Duplicate || info.BaseOffset != 22 || info.LastOffset != 23 {
		t.Fatalf("retry after reopen: %+v %v", info, err)
	}
	if _, err := l.AppendAsLeader(makeBatch(t, vals(1, "x"), idem(11, 3, 30)), 0); !errors.Is(err, ErrOutOfOrderSequence) {
		t.Fatalf("gap after reopen: %v", err)
	}
	if _, err := l.AppendAsLeader(makeBatch(t, vals(1, "x"), idem(11, 2, 0)), 0); !errors.Is(err, ErrInvalidProducerEpoch) {
		t.Fatalf("old epoch after reopen: %v", err)
	}
	if info := mustAppend(t, l, makeBatch(t, vals(1, "x"), idem(11, 3, 24)), 0); info.BaseOffset != 24 {
		t.Fatalf("next in sequence: %+v", info)
	}
}

func TestStorageProducerStateSurvivesClose(t *testing.T) {
	dir := t.TempDir()
	l, sent := producerLog(t, dir)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	checkProducerSurvived(t, dir, sent)
}

func TestStorageProducerStateSurvivesCrash(t *testing.T) {
	dir := t.TempDir()
	l, sent := producerLog(t, dir)
	l.crash()
	checkProducerSurvived(t, dir, sent)
}

func TestStorageProducerStateSurvivesCrashWithoutSnapshots(t *testing.T) {
	dir := t.TempDir()
	l, sent := producerLog(t, dir)
	l.crash()
	offs, _ := listOffsets(dir, snapshotSuffix)
	if len(offs) == 0 {
		t.Fatal("rolls wrote no snapshot")
	}
	for _, o := range offs {
		os.Remove(offsetName(dir, o, snapshotSuffix))
	}
	checkProducerSurvived(t, dir, sent)
}

func TestStorageProducerSnapshotRoundTrip(t *testing.T) {
	table := map[int64]producerEntry{}
	for id := int64(0); id < 4; id++ {
		var e producerEntry
		e.epoch = int16(id)
		for i := range int(id) + 3 {
			e.add(batchMeta{firstSeq: int32(i), lastSeq: int32(i), firstOff: int64(10 * i), lastOff: int64(10*i + 1)})
		}
		table[id*1000] = e
	}
	raw := encodeSnapshot(77, table)
	off, back, err := decodeSnapshot(raw)
	if err != nil || off != 77 || len(back) != 4 || back[3000] != table[3000] || back[0] != table[0] {
		t.Fatalf("round trip: %v %d %v", err, off, back)
	}
	raw[len(raw)/2] ^= 1
	if _, _, err := decodeSnapshot(raw); err == nil {
		t.Fatal("corrupt snapshot decoded")
	}
}

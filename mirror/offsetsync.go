package mirror

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/kdr-io/kdr/mirror/offsets"
)

// This file and addSync are the only users of package offsets, which decides
// when a sync is worth writing and owns the offset-syncs topic's settings.

// pair is one copied record: its source offset and its offset on the target.
type pair = offsets.Pair

// emitter picks the offset syncs of one source partition. A new one is made
// on every assignment, so a partition that moves between workers starts with
// a sync on its first copied record.
type emitter struct {
	e *offsets.Emitter
	// blind: records were copied after the last pair given to e whose
	// target offsets are unknown (a forwarded batch the target took as a
	// duplicate), so e cannot say where the next record lands.
	blind bool
}

func newEmitter() *emitter { return &emitter{e: offsets.NewEmitter()} }

// batch takes the pairs of one acknowledged batch, in offset order, and
// returns those to write as offset syncs.
func (e *emitter) batch(pairs []pair) []pair {
	e.blind = false
	return e.e.Batch(pairs)
}

// unpaired notes copies whose target offsets are unknown, after the last
// batch: no position until the next batch.
func (e *emitter) unpaired() { e.blind = true }

// position takes the copy position once everything before it is
// acknowledged and returns the position sync to write, if any.
func (e *emitter) position(upstream int64) (pair, bool) {
	if e.blind {
		return pair{}, false
	}
	return e.e.Position(upstream)
}

// ensureSyncTopic creates the offset-syncs topic (on the cluster adm
// reaches: the source, or the target) if needed.
// A topic that keeps less than it should (compacted, as MM2 makes it, or
// with a retention the cluster would not change) is usable, with a warning:
// old positions cannot be translated.
func ensureSyncTopic(ctx context.Context, adm *kadm.Client, name string, retention time.Duration, rf int16) (warning, err error) {
	err = offsets.EnsureSyncTopic(ctx, adm, name, retention.Milliseconds(), rf)
	if err != nil && offsets.SyncTopicUsable(err) {
		return err, nil
	}
	return nil, err
}

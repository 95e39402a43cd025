package mirror

import (
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// entry is one unit of a partition's queue: a record decoded by franz-go,
// copied record by record, or a whole batch forwarded as it is.
type entry struct {
	rec *kgo.Record
	raw *rawBatch
}

func recordEntry(r *kgo.Record) entry { return entry{rec: r} }

// first and last are the source offsets the entry covers.
func (e entry) first() int64 {
	if e.raw != nil {
		return e.raw.base
	}
	return e.rec.Offset
}

func (e entry) last() int64 {
	if e.raw != nil {
		return e.raw.last
	}
	return e.rec.Offset
}

// epoch is the source leader epoch of the entry's last record.
func (e entry) epoch() int32 {
	if e.raw != nil {
		return e.raw.epoch
	}
	return e.rec.LeaderEpoch
}

// count is the records the entry holds.
func (e entry) count() int {
	if e.raw != nil {
		return int(e.raw.count)
	}
	return 1
}

// timestamp is the entry's first record's timestamp.
func (e entry) timestamp() time.Time {
	if e.raw != nil {
		return time.UnixMilli(e.raw.timestamp)
	}
	return e.rec.Timestamp
}

// size is the bytes the entry holds in memory, for the fetch bound.
func (e entry) size() int {
	if e.raw != nil {
		return len(e.raw.data)
	}
	return recordBytes(e.rec) + 64
}

// recordBytes is what a copied record counts in kdr_mirror_bytes_total:
// its key, value and headers.
func recordBytes(r *kgo.Record) int {
	n := len(r.Key) + len(r.Value)
	for _, h := range r.Headers {
		n += len(h.Key) + len(h.Value)
	}
	return n
}

// queuedRecords is the records a queue holds.
func queuedRecords(q []entry) int {
	n := 0
	for _, e := range q {
		n += e.count()
	}
	return n
}

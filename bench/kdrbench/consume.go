package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// consumeIdle is how long a consumer may see no records before it gives up
// short of the expected count.
const consumeIdle = 10 * time.Second

// consumeResult is what one read of the topic from offset 0 saw.
type consumeResult struct {
	records  int64
	bytes    int64         // value bytes
	elapsed  time.Duration // client start to the last expected record
	gaps     int64         // offsets skipped within a partition
	dups     int64         // offsets seen again or going backwards
	errs     []error       // fetch errors (the first few)
	stalled  bool          // gave up after consumeIdle without records
	canceled bool          // ctx ended first
}

// mbps is value bytes per second, in MB (10^6 bytes).
func (r consumeResult) mbps() float64 { return float64(r.bytes) / r.elapsed.Seconds() / 1e6 }

// consumeAll reads the topic from offset 0 with one client until it has seen
// want records, ctx ends, or no record arrives for consumeIdle. It checks
// that each partition's offsets are contiguous, as they must be in a topic
// that is neither compacted nor transactional.
func consumeAll(ctx context.Context, addr string, w workload, want int64) (consumeResult, error) {
	var r consumeResult
	start := time.Now()
	cl, err := kgo.NewClient(w.consumerOpts(addr)...)
	if err != nil {
		return r, err
	}
	defer cl.Close()

	next := make(map[int32]int64, w.partitions)
	for r.records < want {
		pollCtx, cancel := context.WithTimeout(ctx, consumeIdle)
		fs := cl.PollFetches(pollCtx)
		cancel()
		if ctx.Err() != nil {
			r.canceled = true
			break
		}
		fs.EachError(func(t string, p int32, err error) {
			if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
				return
			}
			if len(r.errs) < 5 {
				r.errs = append(r.errs, fmt.Errorf("%s[%d]: %w", t, p, err))
			}
		})
		n := 0
		fs.EachRecord(func(rec *kgo.Record) {
			n++
			r.records++
			r.bytes += int64(len(rec.Value))
			want := next[rec.Partition]
			switch {
			case rec.Offset > want:
				r.gaps += rec.Offset - want
			case rec.Offset < want:
				r.dups++
			}
			next[rec.Partition] = rec.Offset + 1
		})
		if n == 0 && pollCtx.Err() != nil {
			r.stalled = true
			break
		}
	}
	r.elapsed = time.Since(start)
	return r, nil
}

// check describes what is wrong with a read that expected want records, or
// returns "" when nothing is.
func (r consumeResult) check(want int64) string {
	var msgs []string
	if r.records != want {
		msgs = append(msgs, fmt.Sprintf("consumed %d records, expected %d", r.records, want))
	}
	if r.stalled {
		msgs = append(msgs, fmt.Sprintf("no records for %v", consumeIdle))
	}
	if r.gaps > 0 {
		msgs = append(msgs, fmt.Sprintf("%d offsets skipped", r.gaps))
	}
	if r.dups > 0 {
		msgs = append(msgs, fmt.Sprintf("%d records repeated or out of order", r.dups))
	}
	for _, err := range r.errs {
		msgs = append(msgs, "fetch error: "+err.Error())
	}
	if len(msgs) == 0 {
		return ""
	}
	return fmt.Sprint(msgs)
}

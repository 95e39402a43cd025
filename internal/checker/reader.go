package checker

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Reader consumes the topic from the beginning, as a member of Config.Group
// or (without a group) by assigning itself every partition, and keeps every
// distinct record it read. Its methods are safe for concurrent use.
type Reader struct {
	cfg    Config
	cl     *kgo.Client
	cancel context.CancelFunc
	done   chan struct{}

	closeOnce sync.Once
	closeErr  error

	mu          sync.Mutex
	reads       []Record
	seen        map[position]string // id read at each offset
	next        map[int32]int64     // one past the highest offset read, per partition
	redelivered int64
	fetchErrs   int64
	lastErr     error
	advanced    chan struct{} // closed and replaced whenever next moves
}

// NewReader connects to cfg.Brokers and starts reading.
func NewReader(cfg Config) (*Reader, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	opts := append(cfg.clientOpts(),
		kgo.ConsumeTopics(cfg.Topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(200*time.Millisecond),
	)
	if cfg.Group != "" {
		opts = append(opts, kgo.ConsumerGroup(cfg.Group), kgo.AutoCommitInterval(time.Second))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("checker: reader client: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &Reader{
		cfg: cfg, cl: cl, cancel: cancel, done: make(chan struct{}),
		seen: map[position]string{}, next: map[int32]int64{}, advanced: make(chan struct{}),
	}
	go r.loop(ctx)
	return r, nil
}

func (r *Reader) loop(ctx context.Context) {
	defer close(r.done)
	for {
		fs := r.cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return
		}
		fs.EachError(func(topic string, p int32, err error) {
			r.mu.Lock()
			r.fetchErrs++
			r.lastErr = fmt.Errorf("%s-%d: %w", topic, p, err)
			n := r.fetchErrs
			r.mu.Unlock()
			if n <= maxExamples {
				r.cfg.Logger.Warn("checker: fetch error", "topic", topic, "partition", p, "err", err)
			}
		})
		fs.EachRecord(r.add)
	}
}

// add keeps a fetched record unless the same record was read at its offset
// before.
func (r *Reader) add(kr *kgo.Record) {
	rec := Record{Key: string(kr.Key), Partition: kr.Partition, Offset: kr.Offset}
	var v value
	if err := json.Unmarshal(kr.Value, &v); err != nil || v.Key != rec.Key {
		rec.Seq, rec.ID = -1, string(kr.Value)
	} else {
		rec.Seq, rec.ID = v.Seq, v.ID
	}
	pos := position{kr.Partition, kr.Offset}
	r.mu.Lock()
	defer r.mu.Unlock()
	if id, ok := r.seen[pos]; ok && id == rec.ID {
		r.redelivered++
		return
	}
	r.seen[pos] = rec.ID
	r.reads = append(r.reads, rec)
	if kr.Offset+1 > r.next[kr.Partition] {
		r.next[kr.Partition] = kr.Offset + 1
		close(r.advanced)
		r.advanced = make(chan struct{})
	}
}

// Drain waits until the reader has read up to (not including) the given
// offset of every partition in ends, or ctx ends. On ctx's end the error
// names the partitions still behind.
func (r *Reader) Drain(ctx context.Context, ends map[int32]int64) error {
	for {
		r.mu.Lock()
		var behind []string
		for _, p := range slices.Sorted(maps.Keys(ends)) {
			if r.next[p] < ends[p] {
				behind = append(behind, fmt.Sprintf("%d at %d of %d", p, r.next[p], ends[p]))
			}
		}
		advanced, lastErr := r.advanced, r.lastErr
		r.mu.Unlock()
		if len(behind) == 0 {
			return nil
		}
		select {
		case <-advanced:
		case <-ctx.Done():
			err := fmt.Errorf("checker: drain: partitions behind: %s: %w", strings.Join(behind, ", "), ctx.Err())
			if lastErr != nil {
				err = fmt.Errorf("%w (last fetch error: %v)", err, lastErr)
			}
			return err
		}
	}
}

// Reads returns every distinct record read so far, in reading order.
func (r *Reader) Reads() []Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.reads)
}

// Count is the number of distinct records read so far.
func (r *Reader) Count() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return int64(len(r.reads))
}

// Redelivered is how many reads repeated a record already read at the same
// offset (after a group rebalance or a reset).
func (r *Reader) Redelivered() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.redelivered
}

// Close stops reading; a group member commits what it read and leaves the
// group. The error is the final commit's; calling Close again returns it.
func (r *Reader) Close(ctx context.Context) error {
	r.closeOnce.Do(func() {
		r.cancel()
		<-r.done
		if r.cfg.Group != "" {
			r.closeErr = r.cl.CommitUncommittedOffsets(ctx)
		}
		r.cl.Close()
	})
	return r.closeErr
}

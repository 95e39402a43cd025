package checker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Run is a producer and a reader working on one topic, with progress logs.
type Run struct {
	cfg    Config
	prod   *Producer
	reader *Reader
	admCl  *kgo.Client
	adm    *kadm.Client

	stopProgress chan struct{}
	progressDone chan struct{}
	closeOnce    sync.Once
}

// Start creates cfg.Topic if it does not exist and starts the producer and
// the reader.
func Start(ctx context.Context, cfg Config) (*Run, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	admCl, err := kgo.NewClient(cfg.clientOpts()...)
	if err != nil {
		return nil, fmt.Errorf("checker: admin client: %w", err)
	}
	r := &Run{cfg: cfg, admCl: admCl, adm: kadm.NewClient(admCl), stopProgress: make(chan struct{}), progressDone: make(chan struct{})}
	if err := r.createTopic(ctx); err != nil {
		admCl.Close()
		return nil, err
	}
	if r.prod, err = NewProducer(cfg); err != nil {
		admCl.Close()
		return nil, err
	}
	if r.reader, err = NewReader(cfg); err != nil {
		r.prod.Stop(ctx)
		admCl.Close()
		return nil, err
	}
	cfg.Logger.Info("checker: started", "topic", cfg.Topic, "keys", cfg.Keys, "acks", cfg.Acks, "idempotent", cfg.Idempotent, "rate", cfg.Rate, "group", cfg.Group)
	go r.progress()
	return r, nil
}

func (r *Run) createTopic(ctx context.Context) error {
	rf := r.cfg.ReplicationFactor
	if rf == 0 {
		rf = -1
	}
	resp, err := r.adm.CreateTopic(ctx, r.cfg.Partitions, rf, nil, r.cfg.Topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("checker: creating topic %s: %w", r.cfg.Topic, err)
	}
	return nil
}

// Producer is the run's producer.
func (r *Run) Producer() *Producer { return r.prod }

// Reader is the run's reader.
func (r *Run) Reader() *Reader { return r.reader }

func (r *Run) progress() {
	defer close(r.progressDone)
	t := time.NewTicker(r.cfg.ProgressInterval)
	defer t.Stop()
	last, lastAt := int64(0), time.Now()
	for {
		select {
		case <-r.stopProgress:
			return
		case now := <-t.C:
			s := r.prod.Stats()
			rate := float64(s.Acked-last) / now.Sub(lastAt).Seconds()
			last, lastAt = s.Acked, now
			r.cfg.Logger.Info("checker: progress", "topic", r.cfg.Topic, "acked", s.Acked, "failed", s.Failed, "pending", s.Pending,
				"rate", fmt.Sprintf("%.0f/s", rate), "unavailable", s.CurrentUnavailable.Round(time.Millisecond),
				"max_unavailable", s.MaxUnavailable.Round(time.Millisecond), "read", r.reader.Count())
		}
	}
}

// Stop stops the producer and waits for the outcome of every record (see
// Producer.Stop). The reader keeps reading.
func (r *Run) Stop(ctx context.Context) error { return r.prod.Stop(ctx) }

// Drain stops the producer if it still runs, waits until the reader has read
// every acknowledged record and up to the log end offsets, and returns the
// verdict. If ctx ends first, the report covers what was read (the rest
// counts as lost) and the error says which partitions were behind.
func (r *Run) Drain(ctx context.Context) (Report, error) {
	stopErr := r.prod.Stop(ctx)
	acked, failed := r.prod.Acked(), r.prod.Failed()
	ends, err := r.targets(ctx, acked)
	if err == nil {
		err = r.reader.Drain(ctx, ends)
	}
	rep := Check(acked, failed, r.reader.Reads())
	rep.Redelivered = r.reader.Redelivered()
	s := r.prod.Stats()
	rep.MaxUnavailable, rep.TotalUnavailable, rep.Outages = s.MaxUnavailable, s.TotalUnavailable, s.Outages
	r.cfg.Logger.Info("checker: report", "topic", r.cfg.Topic, "report", rep.String())
	return rep, errors.Join(stopErr, err)
}

// targets is, per partition, the larger of the log end offset and one past
// the highest acknowledged offset: a leader elected moments ago may report a
// high watermark below what was acknowledged.
func (r *Run) targets(ctx context.Context, acked []Record) (map[int32]int64, error) {
	ends := map[int32]int64{}
	for _, a := range acked {
		ends[a.Partition] = max(ends[a.Partition], a.Offset+1)
	}
	for {
		listed, err := r.adm.ListEndOffsets(ctx, r.cfg.Topic)
		if err == nil {
			err = listed.Error()
		}
		if err == nil {
			listed.Each(func(o kadm.ListedOffset) { ends[o.Partition] = max(ends[o.Partition], o.Offset) })
			return ends, nil
		}
		r.cfg.Logger.Info("checker: listing end offsets", "topic", r.cfg.Topic, "err", err)
		select {
		case <-ctx.Done():
			return ends, fmt.Errorf("checker: listing end offsets of %s: %w", r.cfg.Topic, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Close stops everything the run started. The error is the reader's final
// commit's.
func (r *Run) Close() error {
	var err error
	r.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		close(r.stopProgress)
		<-r.progressDone
		r.prod.Stop(ctx)
		err = r.reader.Close(ctx)
		r.admCl.Close()
	})
	return err
}

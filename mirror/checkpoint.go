package mirror

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/kdr-io/kdr/mirror/offsets"
)

// The checkpoint side of a flow. Every worker reads the offset syncs back
// (an offsets.SyncStore over the flow's offset-syncs topic), but only one
// worker of the flow checkpoints at a time: the member of the workers'
// consumer group that owns partition 0 of the flow's first source topic
// (by name). The group protocol already gives every partition exactly one
// owner, so this needs no election of its own and moves with the partition
// when a worker dies. Around a rebalance there may be a moment with no
// checkpointer or with two; both are harmless: a missed cycle is made up
// at the next one, and two checkpointers write the same translations
// (checkpoints are idempotent, keyed by group, topic and partition; group
// commits never move a partition back).
//
// A worker that becomes the checkpointer starts a fresh
// offsets.Checkpointer, so that it rewrites every checkpoint once rather
// than trusting what it wrote before another worker took over; one that
// stops being it closes its Checkpointer, whose checkpoint-age series
// leave this worker's registry with it.

// checkpointState is what Status reports of the checkpoint side. Guarded by
// Worker.mu.
type checkpointState struct {
	active       bool      // this worker is the flow's checkpointer
	last         time.Time // end of the last successful cycle
	checkpoints  int64     // checkpoint records written
	synced       int64     // group offsets committed on the target
	untranslated int       // offsets the last cycle could not translate
}

// CheckpointStatus is the checkpoint side of a worker.
type CheckpointStatus struct {
	// Active is true while this worker is the flow's checkpointer (it owns
	// partition 0 of the flow's first source topic).
	Active bool
	// Last is when the last successful cycle ended (zero before one); Age
	// is the time since then (0 before one).
	Last time.Time
	Age  time.Duration
	// Checkpoints counts checkpoint records written and GroupOffsetsSynced
	// partition offsets committed to target groups, by this worker.
	Checkpoints        int64
	GroupOffsetsSynced int64
	// Untranslated counts the committed offsets the last cycle could not
	// translate (see offsets.Status for the reasons).
	Untranslated int
}

// checkpoint reads the offset syncs and, while this worker is the flow's
// checkpointer, runs a checkpoint cycle every CheckpointInterval, until ctx
// ends.
func (w *Worker) checkpoint(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() {
		if err := w.store.Run(ctx); err != nil {
			w.noteErr(KindCheckpoint, err)
		}
	})
	if err := w.store.WaitReady(ctx); err != nil {
		w.noteErr(KindCheckpoint, err)
		return
	}
	var cp *offsets.Checkpointer
	defer func() {
		if cp != nil {
			cp.Close()
		}
		// A stopped worker checkpoints no more: Status must not keep
		// claiming it does.
		w.mu.Lock()
		w.cp.active = false
		w.mu.Unlock()
	}()
	t := time.NewTicker(w.flow.CheckpointInterval)
	defer t.Stop()
	for {
		active := w.isCheckpointer()
		if !active && cp != nil {
			cp.Close()
			cp = nil
			w.log.Info("no longer the flow's checkpointer")
		}
		if active && cp == nil {
			var err error
			if cp, err = w.newCheckpointer(ctx); err != nil {
				w.noteErr(KindCheckpoint, err)
			} else {
				w.log.Info("now the flow's checkpointer")
			}
		}
		w.mu.Lock()
		w.cp.active = cp != nil
		w.mu.Unlock()
		if cp != nil {
			sum, err := cp.RunOnce(ctx)
			if err != nil {
				w.noteErr(KindCheckpoint, err)
			} else {
				w.mu.Lock()
				w.cp.last = time.Now()
				w.cp.checkpoints += int64(sum.Checkpoints)
				w.cp.synced += int64(sum.Synced)
				w.cp.untranslated = len(sum.Failed)
				w.mu.Unlock()
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (w *Worker) newCheckpointer(ctx context.Context) (*offsets.Checkpointer, error) {
	rf, err := w.internalRF(ctx, w.tgtAdm, KindTarget)
	if err != nil {
		return nil, err // retried at the next tick
	}
	cp, err := offsets.NewCheckpointer(offsets.CheckpointerConfig{
		SourceAlias: w.flow.SourceAlias, TargetAlias: w.flow.TargetAlias,
		Policy:   w.policy,
		Groups:   w.flow.GroupFilter(),
		Mirrored: w.mirrors,
		Source:   w.srcCl, Target: w.tgtCl,
		Store:             w.store,
		Interval:          w.flow.CheckpointInterval,
		ReplicationFactor: rf,
		SyncGroupOffsets:  w.flow.SyncGroupOffsets,
		Logger:            w.log,
		Registerer:        w.reg,
	})
	if err != nil {
		return nil, fmt.Errorf("mirror: starting the checkpointer: %w", err)
	}
	return cp, nil
}

// mirrors reports whether the flow mirrors source topic: the topic manager
// selected it and it has not disappeared.
func (w *Worker) mirrors(topic string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	ts := w.topics[topic]
	return ts != nil && !ts.gone
}

// isCheckpointer reports whether this worker owns partition 0 of the
// flow's first mirrored source topic.
func (w *Worker) isCheckpointer() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	first := ""
	for name, ts := range w.topics {
		if !ts.gone && (first == "" || name < first) {
			first = name
		}
	}
	return first != "" && w.parts[topicPartition{first, 0}] != nil
}

// checkpointStatus is the checkpoint part of Status; w.mu must be held.
func (w *Worker) checkpointStatus() CheckpointStatus {
	s := CheckpointStatus{
		Active: w.cp.active, Last: w.cp.last, Checkpoints: w.cp.checkpoints,
		GroupOffsetsSynced: w.cp.synced, Untranslated: w.cp.untranslated,
	}
	if !s.Last.IsZero() {
		s.Age = time.Since(s.Last)
	}
	return s
}

package mirror

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kdr-io/kdr/mirror/mm2"
)

// emitHeartbeats writes an MM2 heartbeat (source alias, target alias, now)
// to the target's heartbeats topic every HeartbeatInterval, once the topic
// manager has created it. Replicated onward, heartbeats show which paths
// records travel and how far behind each hop is.
func (w *Worker) emitHeartbeats(ctx context.Context) {
	t := time.NewTicker(w.flow.HeartbeatInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		w.mu.Lock()
		ready := w.hbReady
		w.mu.Unlock()
		if !ready {
			continue
		}
		hb := mm2.Heartbeat{SourceAlias: w.flow.SourceAlias, TargetAlias: w.flow.TargetAlias, Timestamp: time.Now()}
		rec := &kgo.Record{Topic: mm2.HeartbeatsTopic, Partition: 0, Key: hb.Key(), Value: hb.Value(), Timestamp: hb.Timestamp}
		hctx, cancel := context.WithTimeout(ctx, max(w.flow.HeartbeatInterval, 5*time.Second))
		err := w.tgtCl.ProduceSync(hctx, rec).FirstErr()
		cancel()
		if err != nil {
			w.noteErr(KindHeartbeat, fmt.Errorf("writing a heartbeat to %s: %w", mm2.HeartbeatsTopic, err))
			continue
		}
		w.m.heartbeats.WithLabelValues(w.flow.Name()).Inc()
		w.mu.Lock()
		w.heartbeats++
		w.mu.Unlock()
	}
}

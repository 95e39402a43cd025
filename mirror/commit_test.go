package mirror

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/kdr-io/kdr/internal/kdrtest"
)

// TestMirrorCommitInterval copies a steady stream in cycles of at most ten
// records, so in a hundred cycles or more, and counts the worker's commits:
// with an interval they are gathered, at most one per interval; with 0 there
// is one per cycle. Either way the workers' group ends at the log end offset.
func TestMirrorCommitInterval(t *testing.T) {
	const n, batch = 1000, 10
	for _, c := range []struct {
		name     string
		interval time.Duration
	}{
		{"gathered", 400 * time.Millisecond},
		{"every cycle", 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			east, west := startCluster(t), startCluster(t)
			east.createTopic("orders", 1)
			f := testFlow(east, west, "east", "west")
			f.Topics = "orders"
			f.BatchRecords = batch
			f.CommitInterval = c.interval
			w := startWorker(t, f)
			east.produce(seqRecords("orders", 1, 0, batch)...)
			waitCount(t, west, "east.orders", batch, 30*time.Second)

			// About 1000 records/s for a second: the worker, caught up,
			// copies each round as it comes.
			start := time.Now()
			pace := time.NewTicker(10 * time.Millisecond)
			for i := batch; i < n; i += batch {
				<-pace.C
				east.produce(seqRecords("orders", 1, i, batch)...)
			}
			pace.Stop()
			waitCount(t, west, "east.orders", n, 30*time.Second)
			ctx := context.Background()
			kdrtest.Eventually(t, 20*time.Second, func() (bool, string) {
				offs, err := east.adm.FetchOffsets(ctx, f.Group())
				if err != nil {
					return false, err.Error()
				}
				o, _ := offs.Lookup("orders", 0)
				return o.At == n, fmt.Sprintf("the workers' group is at %d, want %d", o.At, n)
			})
			elapsed := time.Since(start)

			commits := metricSum(t, w.reg, "kdr_mirror_commits_total", map[string]string{"flow": "east->west"})
			t.Logf("%d records in %v: %.0f commits", n, elapsed.Round(time.Millisecond), commits)
			if c.interval > 0 {
				// One at the first record, then at most one per interval.
				if most := 2 + elapsed.Seconds()/c.interval.Seconds(); commits > most {
					t.Errorf("%.0f commits in %v, want at most %.0f with a %v interval", commits, elapsed, most, c.interval)
				}
				return
			}
			if commits < n/batch/2 {
				t.Errorf("%.0f commits of %d records copied %d at a time, want one per cycle", commits, n, batch)
			}
		})
	}
}

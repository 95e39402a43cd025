package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/kdr-io/kdr/bench/internal/benchkit"
)

// profileResult is one broker's CPU profile taken during a workload.
type profileResult struct {
	node    int32
	phase   string // the run profiled, for the report
	leads   int    // partitions of the profiled topic it led
	path    string // saved profile
	top     string // go tool pprof -top output
	err     error
	seconds int
}

// profileAll takes a CPU profile of every broker at once, starting half a
// second into a run of o.Duration, and returns a channel that yields the
// saved profiles (not yet summarised: see summarise). file names the phase
// in the profiles' file names, label in the report.
func profileAll(ctx context.Context, c *cluster, o options, file, label string, leads map[int32]int) <-chan []profileResult {
	out := make(chan []profileResult, 1)
	secs := min(o.ProfileSecs, int(o.Duration.Seconds())-1)
	if secs <= 0 {
		out <- nil
		return out
	}
	go func() {
		prs := make([]profileResult, len(c.nodes))
		defer func() { out <- prs }()
		select {
		case <-ctx.Done():
			prs = nil
			return
		case <-time.After(500 * time.Millisecond):
		}
		var wg sync.WaitGroup
		for i, n := range c.nodes {
			pr := &prs[i]
			pr.node, pr.leads, pr.seconds, pr.phase = n.id, leads[n.id], secs, label
			pr.path = filepath.Join(o.OutDir, fmt.Sprintf("cluster-broker-%d-%s.pprof", n.id, file))
			if n.metrics == "" {
				pr.err = fmt.Errorf("broker %d has no metrics address", n.id)
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				pr.err = benchkit.FetchCPUProfile(ctx, n.metrics, secs, pr.path)
			}()
		}
		wg.Wait()
	}()
	return out
}

// summarise adds `go tool pprof -top` to each saved profile. It runs after
// the measured phase, so that pprof's own CPU use does not count in it.
func summarise(ctx context.Context, prs []profileResult) []profileResult {
	for i := range prs {
		pr := &prs[i]
		if pr.err != nil {
			continue
		}
		top, err := benchkit.PprofTop(ctx, pr.path, 15)
		pr.top, pr.err = strings.TrimSpace(top), err
	}
	return prs
}

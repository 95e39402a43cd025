package main

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	"github.com/kdr-io/kdr/bench/internal/benchkit"
	"github.com/twmb/franz-go/pkg/kadm"
)

// manyTopic is the topic whose creation is timed.
const manyTopic = "clusterbench-many"

// createResult times the creation of a topic of many partitions, each
// duration from the moment the CreateTopics request was sent.
type createResult struct {
	partitions int
	response   time.Duration // to the CreateTopics response
	leaders    time.Duration // to fresh Metadata showing a leader for every partition
	served     time.Duration // to every partition's leader answering ListOffsets for it
	firstFull  time.Duration // to fresh Metadata first showing every ISR full
	settled    time.Duration // to every ISR full again after the last time one was short
	maxShort   int           // most partitions seen with a short ISR after firstFull
}

// measureCreate creates manyTopic with o.createPartitions partitions of
// replication factor 3 in one CreateTopics request, then polls fresh
// Metadata and ListOffsets until every partition has a leader that answers
// for it and every ISR has been full for replica.lag.time.max.ms and a
// second (a new partition's ISR starts full, before any follower has
// fetched; it shrinks if a follower takes longer than that to start). A
// second into the creation it saves every broker's goroutine stacks, to
// show where the time goes.
func measureCreate(ctx context.Context, c *cluster, o options) (createResult, error) {
	res := createResult{partitions: o.createPartitions}
	const interval = 100 * time.Millisecond
	start := time.Now()
	var dumps sync.WaitGroup
	dumps.Add(1)
	go func() {
		defer dumps.Done()
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
		for _, n := range c.nodes {
			path := filepath.Join(o.OutDir, fmt.Sprintf("cluster-broker-%d-create-goroutines.txt", n.id))
			if err := benchkit.FetchPprof(ctx, n.metrics, "goroutine?debug=1", 10*time.Second, path); err != nil {
				logf("create: goroutine dump of broker %d: %v", n.id, err)
			}
		}
	}()
	defer dumps.Wait()

	if err := c.createTopic(ctx, manyTopic, o.createPartitions, clusterSize, nil); err != nil {
		return res, err
	}
	res.response = time.Since(start)
	logf("create: CreateTopics answered after %v", res.response.Round(time.Millisecond))

	stable := time.Duration(o.replicaLagMaxMS)*time.Millisecond + time.Second
	adm := kadm.NewClient(c.client)
	deadline := start.Add(5 * time.Minute)
	var last string
	for {
		ps, err := c.topicState(ctx, manyTopic)
		elapsed := time.Since(start) // as of the answer
		if err != nil {
			last = err.Error()
		} else if len(ps) == o.createPartitions {
			leaderless, short := 0, 0
			for _, p := range ps {
				if p.err != nil || p.leader < 0 {
					leaderless++
				}
				if len(p.isr) < len(p.replicas) {
					short++
				}
			}
			last = fmt.Sprintf("%d partitions without a leader, %d with a short ISR", leaderless, short)
			if leaderless == 0 && res.leaders == 0 {
				res.leaders = elapsed
				logf("create: every partition has a leader after %v", elapsed.Round(time.Millisecond))
			}
			switch {
			case short == 0 && res.firstFull == 0:
				res.firstFull, res.settled = elapsed, elapsed
				logf("create: every ISR is full after %v", elapsed.Round(time.Millisecond))
			case short == 0 && res.settled == 0:
				res.settled = elapsed
				logf("create: every ISR is full again after %v", elapsed.Round(time.Millisecond))
			case short > 0 && res.firstFull > 0:
				if res.settled > 0 {
					logf("create: %d ISRs short again after %v", short, elapsed.Round(time.Millisecond))
				}
				res.settled, res.maxShort = 0, max(res.maxShort, short)
			}
		}
		if res.leaders > 0 && res.served == 0 {
			if n, err := servingPartitions(ctx, adm); err != nil {
				last = err.Error()
			} else if n == o.createPartitions {
				res.served = time.Since(start)
				logf("create: every leader answers ListOffsets after %v", res.served.Round(time.Millisecond))
			} else {
				last = fmt.Sprintf("%d of %d partitions answer ListOffsets", n, o.createPartitions)
			}
		}
		if res.served > 0 && res.settled > 0 && time.Since(start)-max(res.served, res.settled) >= stable {
			return res, nil
		}
		if time.Now().After(deadline) {
			return res, fmt.Errorf("not settled after 5 minutes: %s", last)
		}
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(interval):
		}
	}
}

// servingPartitions counts the partitions of manyTopic whose leader
// answers ListOffsets for them without an error.
func servingPartitions(ctx context.Context, adm *kadm.Client) (int, error) {
	offs, err := adm.ListEndOffsets(ctx, manyTopic)
	if err != nil {
		return 0, err
	}
	n := 0
	offs.Each(func(l kadm.ListedOffset) {
		if l.Err == nil {
			n++
		}
	})
	return n, nil
}

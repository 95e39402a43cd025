// Package client is what applications use to follow failovers: a Client
// watches the coordination store's State.Active (the cluster producers and
// consumers should use) and repoints a Producer and Consumers to the new
// active cluster whenever it changes.
//
//	cl, err := client.New(ctx, client.Config{Topology: t, Store: st})
//	p, err := cl.NewProducer(kgo.DefaultProduceTopic("orders"))
//	p.Produce(ctx, rec, func(r *kgo.Record, err error) { ... })
//	c, err := cl.NewConsumer(client.ConsumerConfig{Group: "billing", Topics: []string{"orders"}})
//	for { b, err := c.Poll(ctx); ...process b.Records... }
//
// # Repointing
//
// Producer: on a change of Active a new franz-go client is created for the
// new cluster and takes every later Produce; the old client is flushed for
// at most Config.FlushTimeout and closed. Records the old cluster refused
// (POLICY_VIOLATION from a fenced cluster) or that were still buffered at
// the close are reported to their promise as failed: the application may
// resend them. Nothing is dropped silently.
//
// Consumer: at-least-once. Records returned by Poll count as processed at
// the next Poll (or Close): they are then marked and committed. On a change
// of Active the consumer commits on the old cluster (if it answers within
// Config.CommitTimeout), leaves the group, waits until State.ConsumerOffsets
// names the new cluster (the orchestrator sets it once it has copied the
// group's offsets exactly; after Config.OffsetsTimeout it starts anyway,
// from whatever the group has there, and logs it), then joins the group on
// the new cluster.
//
// Without a state document the active cluster is the first active-passive
// pattern's primary, else the first cluster of the topology.
package client

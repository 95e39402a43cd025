// Package checker is a correctness workload for failover tests, in the
// spirit of Jepsen's Kafka queue checks: a Producer writes numbered records
// per key and remembers which ones the cluster acknowledged, a Reader reads
// the topic back, and Check compares the two.
//
// Records have key "k<N>" and a JSON value {"key","seq","id"}: seq counts
// the records of one key from 0, id is unique per record. Records of a key
// go to one partition (default key hashing), so the seqs of a key must be
// read in increasing order. The verdict (Report):
//
//   - Lost: acknowledged, never read.
//   - Duplicated: one (key, seq) read at two or more offsets.
//   - Reordered: within a key, a seq read at a higher offset than a larger
//     seq of the same key.
//   - Misplaced: acknowledged at one offset, read only at others.
//   - Unexpected: read but never produced by this run (foreign or garbled).
//   - Divergent: one offset read with two different records (the log was
//     truncated under a reader).
//
// Records that failed (not acknowledged) may or may not be in the log; if
// they are, they count as read and must be in order and unique like the
// rest. The topic must have no other writer.
//
// The Producer also measures availability as a client sees it: the longest
// and the total time during which records were pending and none was
// acknowledged.
//
// A Run ties the pieces together:
//
//	run, err := checker.Start(ctx, cfg)   // creates the topic, starts both sides
//	... inject faults ...
//	err = run.Stop(ctx)                   // stop producing, wait for outcomes
//	report, err := run.Drain(ctx)         // read everything acknowledged, compare
//	run.Close()
package checker

// Package replica is in-cluster replication: the leader-side bookkeeping of
// followers (their log end offsets, the high watermark, which followers are
// caught up enough to be in the ISR) and the follower side that fetches a
// leader's log with the Kafka Fetch API and appends it verbatim.
//
// The follower protocol is Kafka's. A follower fetches with its replica id
// set; its fetch offset tells the leader its log end offset. The leader
// answers with records up to its log end offset (not the high watermark) and
// with its high watermark, which the follower adopts (capped at its own log
// end offset). The high watermark is the minimum log end offset over the ISR;
// acks=all produces and consumers wait for it.
//
// Before a follower fetches from a leader for a new leader epoch, it asks the
// leader with OffsetForLeaderEpoch where its latest epoch ended and truncates
// any suffix the leader does not have: a divergent tail (records a dead
// leader appended but never committed) is cut back, never served.
//
// ISR membership changes are proposed by the leader to the controller through
// the cluster metadata (cluster.AlterPartition); this package only decides
// when: a follower joins once it has reached the high watermark and the start
// of the leader's epoch, and leaves when it has not been caught up with the
// log end offset for replica.lag.time.max.ms.
package replica

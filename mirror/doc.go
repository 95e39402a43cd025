// Package mirror copies records from one Kafka cluster to another the way
// MirrorMaker 2 does, on franz-go, against any Kafka (Apache Kafka,
// Redpanda, MSK, kdr). A Flow names the two clusters; a Worker runs it.
// The names (mirror/naming), offset syncs and heartbeats (mirror/mm2) are
// MM2's, so MM2 tooling reads what kdr writes.
//
// # The copy
//
// Workers of a flow join one consumer group on the source (Flow.Group,
// cooperative-sticky), so several `kdr mirror run` processes share the
// partitions and a dead one's partitions move to the others. Each worker
// loops over cycles:
//
//	poll ≤ BatchRecords source records
//	  → per partition, in offset order: skip, or copy key, value, headers and
//	    timestamp to the same partition of the remote topic
//	  → flush the target producer (idempotent, acks=all, manual flushing)
//	  → settle: the acknowledged prefix of each partition advances its position
//	  → hand over to the committer, which, while the next cycles copy, at
//	    most once per CommitInterval (default 100 ms):
//	      writes the offset syncs (mm2.OffsetSync, chosen by mirror/offsets)
//	      of every cycle settled since its last commit to
//	      mm2-offset-syncs.<target>.internal, partition 0, on the source
//	      (or the target, Flow.OffsetSyncsLocation), then commits the
//	      source positions they cover (the offset after the last settled
//	      record)
//	  → rebalances allowed (kgo.BlockRebalanceOnPoll)
//
// A commit is two round trips to the source; gathering the cycles of an
// interval into one keeps that cost bounded by time rather than by the
// number of cycles, which under a steady stream are many and small. With
// CommitInterval 0 the committer commits after every cycle and the
// hand-over waits while it is still busy with the previous one, so at most
// one commit is outstanding. A revocation writes the syncs and commits
// before letting go.
//
// The target producer sends uncompressed batches, as MM2's does by default:
// the batch cap then matches the target's max.message.bytes check exactly,
// and no CPU is spent recompressing.
//
// # Forwarded batches
//
// With Compression "none" (Flow.ForwardBatches, the default), a worker does
// not decode records into franz-go's records at all: it fetches the source's
// record batches itself (fetch.go; franz-go's consumer then only keeps the
// group membership, its partitions paused) and sends each batch to the
// target as it is (forwarder.go), with only the producer ID, epoch and base
// sequence rewritten for the mirror's own idempotent producer, and the CRC
// updated by CRC-32C's linearity rather than recomputed over the records.
// Key, value, headers, timestamps, compression and record order are the
// source's bytes. That costs about half the CPU per GB of decoding and
// re-encoding every record (docs/benchmarks.md). Kafka takes one batch per
// partition per Produce request, so a forwarding cycle is one request per
// target leader with the next batch of each of its partitions, and two
// cycles may wait for the target at once, as Kafka's idempotent producer
// keeps requests in flight: a batch fetched while the target answers goes
// at once instead of after the answer (forwarder.go says why two). Their requests are written, and
// their answers read, in the order the cycles were sent; after a failure a
// partition sends nothing more until what it had in flight is back, then
// starts again from the failed batch with its sequence.
//
// Under identity naming every record needs the hop in its provenance header,
// so an uncompressed batch is rewritten rather than sent as it is
// (forward_identity.go): a walk over its records drops those whose
// provenance names the target (counted as loops), appends the source alias
// to the others' provenance and renumbers them; runs of consecutive source
// offsets keep the offset syncs exact across the dropped records. A plain
// provenance chain is extended in place; other shapes (spaces, empty
// entries, several headers) get naming.WithHop's normal form, as on the
// record path. Its compressed batches are copied record by record.
//
// A batch goes record by record instead when it cannot go as it is: it is
// transactional or a control batch (franz-go's decoder drops aborted
// records and markers, which needs the whole response in order), it has
// offset gaps (compaction; Kafka refuses gaps on produce), it starts before
// the position (partly copied already), or it is compressed and stamped
// with the source's log append time. An uncompressed log-append-time batch
// is rewritten as create time with every record at the append time, which
// is what the source's consumers saw. A forwarded batch the target refuses
// as too large is split into its records, which then take the too-large
// path below. Fetched, uncopied bytes are bounded per partition (4 MiB) and
// per worker (32 MiB), so memory does not grow with lag. While records flow
// a fetch waits up to 5 ms for 512 KiB; once a fetch comes back empty the
// next waits up to 500 ms for any record: a steady stream then moves in
// requests of milliseconds of records, not of one producer batch each.
//
// Because the producer flushes manually, nothing of a cycle is sent before
// all of it is buffered, and a batch the target refuses fails every later
// record of its partition: what the target acknowledged is always a prefix,
// so per-partition order holds even through failures. Records the target
// did not acknowledge stay queued, their partition's fetching paused, and
// are retried with backoff (200 ms doubling to 10 s).
//
// The worker reads committed. Once every record fetched is acknowledged,
// its position passes the offsets after them that hold nothing to copy
// (transaction markers, aborted records): the committed position reaches
// the source's end, lag reads 0, and a position sync
// (offsets.PositionHeader; also after records skipped, which the position
// already passed) lets groups that read the last transaction translate. The worker's own fetching knows how far it read; on the
// record path (compression, --forward-batches=false) franz-go hands over
// the transaction markers, which are passed, never copied.
//
// # Delivery guarantee
//
// At least once. A position is committed only after the target acknowledged
// every record before it and their offset syncs are written, so a crash
// re-copies at most what the worker copied in one CommitInterval plus two
// cycles (the one whose commit was in flight and the one settled after it,
// ≤ 2 × BatchRecords records); with CommitInterval 0, at most those two
// cycles. The target then holds those records twice, never zero times. A restarted worker resumes exactly from
// the committed positions. Partitions are given up (revoked) only between
// cycles, after a commit; partitions lost without one (the worker was
// thrown out of the group) are re-copied by their next owner from the last
// commit. The group lives on the source: after the source was unreachable
// for half the session timeout or more, the worker copies nothing until the
// group confirms its partitions (membership.go), so that a worker the
// coordinator dropped meanwhile does not copy the outage's records just
// before learning it and giving them to the next owner to copy again.
//
// # Skipped records
//
//   - Identity naming: a record whose provenance header (naming.Visited)
//     says it has been on the target is not copied back; copies get the
//     source alias appended (naming.WithHop). The header stops loops, not a
//     record reaching a cluster by two paths (in a mesh of three clusters,
//     straight from its origin and through the third): with
//     Flow.LocalRecordsOnly a flow copies only records without provenance,
//     written on its source, and `kdr topology validate` refuses identity
//     flows that give a record two paths. Both kinds are counted as
//     reason="loop". Prefix naming needs no header:
//     a topic whose name says it came from the target is never mirrored to it
//     (naming.Rules.ShouldReplicate).
//   - A record larger than the remote topic's max.message.bytes is skipped,
//     counted (kdr_mirror_errors_total{kind="too_large"} and
//     kdr_mirror_records_skipped_total{reason="too_large"}) and logged with
//     its topic, partition and offset. The alternative, stopping the
//     partition until someone raises the limit, would hold back every later
//     record of the partition for one that can never be written as it is;
//     raise the remote topic's max.message.bytes (or stop syncing a smaller
//     one) to copy such records. The producer's batches are capped at each
//     remote topic's limit, so only a record too large on its own is
//     skipped; if the target refuses a batch anyway (its limit was lowered
//     since), the partition's next record is sent alone, and skipped only if
//     it is refused alone.
//
// # Topics
//
// Every RefreshInterval (5 s by default, not MM2's 600 s) the worker lists
// the source's topics, selects them with naming.Rules (MM2's filters,
// internal topics and cycle detection), and for each: creates the remote
// topic with the source's partition count and replication factor (capped at
// the target's broker count; Flow.ReplicationFactor is not, and a target
// that refuses it is reported), grows it
// when the source grows, and sets the source topic's explicitly set configs
// except ConfigsExclude (MM2's list: throttles, min.insync.replicas,
// message.timestamp.*, unclean.leader.election.enable). Configs are only set,
// as MM2 does with incremental alter configs: one removed on the source keeps
// its last value on the target (the worker cannot tell it from one an
// operator set there), so revert it on the target by hand. A topic deleted (or
// re-created) on the source is purged from consumption and its partitions
// dropped, counted as kdr_mirror_errors_total{kind="topic_deleted"}; a
// re-created one is then copied from its start.
//
// By default the remote topic is left alone: deletions are not mirrored (nor
// are they by MM2). With SyncTopicDeletions (--sync-topic-deletions) the
// worker deletes the remote topic too, at the refresh that sees the source
// topic gone, logged and counted in kdr_mirror_topics_deleted_total. It
// deletes only the remote topic of a topic it mirrors, named by the flow's
// naming policy (under prefix naming east.orders, never a target topic of
// the same name as the source's), and only after asking the source again
// and being told the topic does not exist, so a metadata answer that missed
// a topic deletes nothing. A topic deleted and recreated on the source
// between two refreshes keeps its remote topic, and deletions made while no
// worker ran are not seen. Under identity naming the remote topic has the
// source topic's name: a target topic of that name is the flow's and is
// deleted with it.
//
// # Topic ACLs
//
// With SyncTopicACLs (default true, as MM2's sync.topic.acls.enabled;
// --sync-topic-acls=false turns it off), every refresh reads the source's
// ALLOW ACLs on topic resources (DescribeACLs) and creates on the target
// those of the remote topics it lacks:
//
//   - LITERAL ACLs of mirrored topics, renamed to the remote topic
//     (User:alice ALLOW ALL on orders → User:alice ALLOW READ on
//     east.orders); the literal wildcard "*" is not copied;
//   - PREFIXED ACLs, which MM2 skips, when the naming policy maps the
//     prefix to a prefix of the remote names and the prefix covers a
//     mirrored topic: under prefix naming "ord" becomes "east.ord", which
//     covers exactly the remote topics of the source topics "ord" covered.
//     Under identity naming prefixed ACLs are not copied, as the same prefix
//     on the target would also cover the target's own topics;
//   - as MM2, only ALLOW ACLs (DENY ones are not copied), and remote topics
//     are written only by the mirror, so ALLOW WRITE is not copied and ALL
//     becomes READ. kdr goes
//     further: only read-side grants are copied (READ, DESCRIBE,
//     DESCRIBE_CONFIGS), and CREATE, DELETE, ALTER, ALTER_CONFIGS and
//     IDEMPOTENT_WRITE are dropped, as nobody but the mirror should manage a
//     remote topic.
//
// ACLs are only created, never deleted: one removed on the source keeps its
// copy on the target (as in MM2). Re-runs create nothing new. Created ACLs
// are logged and counted in kdr_mirror_acls_created_total; failures count
// as kdr_mirror_errors_total{kind="acl"}. A cluster that answers that it has
// no ACLs (SECURITY_DISABLED, UNSUPPORTED_VERSION, or no ACL API, as kdr's
// own brokers today) is logged once at info and shown in Status.ACLs
// (State "unsupported"); the flow goes on, and the sync is retried quietly
// at every refresh in case the cluster gains ACLs. Reading ACLs needs
// DESCRIBE on the source cluster resource, creating them ALTER on the
// target's.
//
// # Security and least privilege
//
// Each side's ClusterConn.Security (package clientsec) gives every client
// of that cluster TLS and SASL. With OffsetSyncsLocation SyncsOnTarget
// (MM2's offset-syncs.topic.location=target) the workers write nothing to
// the source but their group's commits: READ and DESCRIBE on its topics
// and groups (DESCRIBE_CONFIGS to sync configs, DESCRIBE on the cluster to
// sync ACLs) are enough there. A worker refused the syncs topic on the
// source says so and names the setting.
//
// # Checkpoints
//
// Every worker reads the flow's offset syncs back (offsets.SyncStore), and
// one of them, the owner of partition 0 of the flow's first source topic,
// runs an offsets.Checkpointer every CheckpointInterval (5 s; MM2 60 s):
// the committed offsets of the source groups that Groups/GroupsExclude
// select (never the workers' own group) are translated exactly, written as
// MM2 checkpoints to <source>.checkpoints.internal on the target and, with
// SyncGroupOffsets (default true, MM2 false), committed to the same groups
// on the target while they have no members there, never moving a
// partition back. Ownership follows the consumer group, so it moves with
// the partition; during a rebalance two workers may briefly both
// checkpoint, which is harmless (they write the same translations). Status
// reports whether this worker checkpoints and the age of its last cycle;
// kdr_mirror_checkpoint_age_seconds{group} is exported by the checkpointing
// worker (see package offsets for the checkpoint metrics).
//
// Heartbeats (mm2.Heartbeat) go every HeartbeatInterval to the "heartbeats"
// topic on the target, created with one compacted partition. As in MM2,
// heartbeats topics (heartbeats, east.heartbeats, ...) are mirrored whatever
// the topic filters say, so a cluster's heartbeats show every upstream
// cluster that reaches it; a cycle of flows is stopped by the naming policy
// (a prefix naming one of the flow's clusters), so two aliases for one
// cluster defeat it, as in MM2.
//
// # Metrics
//
// All are registered on Options.Registerer, labelled flow="<src>-><tgt>",
// and, where per partition, topic (source-side name) and partition:
// kdr_mirror_records_total, kdr_mirror_bytes_total,
// kdr_mirror_replication_latency_seconds (histogram per topic: source
// timestamp to target acknowledgement, one observation per batch copied, of
// its first and oldest record: the batch's worst, not a per-record count),
// kdr_mirror_replication_latency_recent_seconds (the same over the last
// minute, a summary per flow with quantiles 0.5 and 0.99, for kdr status),
// kdr_mirror_record_age_seconds,
// kdr_mirror_lag_records, kdr_mirror_lag_seconds,
// kdr_mirror_offset_syncs_total, kdr_mirror_records_skipped_total{reason},
// kdr_mirror_errors_total{kind}, kdr_mirror_assigned_partitions,
// kdr_mirror_fetch_failing_partitions (owned partitions whose fetches have
// failed for 5 s or more, forwarding flows; Health names the oldest),
// kdr_mirror_heartbeats_total, kdr_mirror_topics_deleted_total,
// kdr_mirror_acls_created_total; and, per flow, where a copy's time goes:
// kdr_mirror_fetch_seconds (a fetch from a source broker, forwarding flows),
// kdr_mirror_cycle_seconds (a copy cycle, from sending to the target's last
// acknowledgement) and kdr_mirror_forward_inflight_cycles (forwarding
// cycles waiting for the target when one was sent). Worker.Status gives the
// per-partition figures as a snapshot.
package mirror

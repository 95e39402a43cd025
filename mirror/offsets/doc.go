// Package offsets translates consumer-group offsets from a mirror's source
// to its target exactly, where MirrorMaker 2 approximates.
//
// A mirror copies source partition P to target partition P' in order, so
// each mirrored record has a Pair of offsets (Upstream on the source,
// Downstream on the target). Downstream offsets are contiguous, since only
// the copier writes P' (other writers are not supported); upstream offsets
// have gaps where compaction, transaction markers or retention removed
// records. A group's committed offset u means "the next record to read is
// the first with offset ≥ u", so its exact translation is the target offset
// of the first mirrored record whose source offset is ≥ u.
//
// # Syncs
//
// The copier runs an Emitter per partition and writes the syncs it returns
// to the offset-syncs topic in MM2's OffsetSync format. The Emitter syncs
// the first pair after a (re)start, both sides of every discontinuity and
// the last pair of every acknowledged batch, so an Index holding all syncs
// knows every record: between two syncs lies either one contiguous run or
// nothing. MM2 syncs about every offset.lag.max (100) records and then
// answers "the sync's downstream + 1", re-delivering up to ~100 records per
// partition at the head and many more behind it.
//
// A copier whose position passes source offsets with nothing to copy after
// its last record (the markers that close transactions, aborted records)
// also writes a position (Emitter.Position): a sync of that position and
// the target offset where the next record will land, marked by
// PositionHeader. Without it, a group that read a transaction to its end
// stands past the newest sync's head and is not translated until another
// record is copied; on a transactional topic that is nearly every group.
// A position holds only while it is the newest sync: the record copied at
// its place replaces it, a newer position or any sync further on removes
// it. It is written one below its target offset, so that MM2's readers,
// which do not know it, re-deliver rather than skip (PositionHeader).
//
// # Translation
//
// With syncs sorted by upstream offset and u between syncs lo and hi:
//
//	u == a sync's upstream               → its downstream
//	lo, hi one contiguous run            → lo.Downstream + (u - lo.Upstream)
//	lo, hi the two sides of a gap        → hi.Downstream (the first record after the gap)
//	u == newest.Upstream + 1             → newest.Downstream + 1 (the head: where the next record lands),
//	                                       unless the newest sync is a position (the offset after it is unknown)
//	u beyond that                        → NotMirrored (the consumer is ahead of the mirror)
//	u below the oldest sync              → BeforeHistory
//
// Two cases go beyond that rule, and the Index handles them without
// guessing:
//
//   - Re-copies. A copier that crashes after the target acknowledged a
//     batch but before it committed its source position copies the batch
//     again, so some records have two copies on the target. The Index keeps
//     syncs in target order and answers the earliest target position that
//     still precedes the last copy of every record ≥ u: the newest copy where
//     the re-copy has reached it, the older one where it has not yet (so a
//     failover at that moment loses nothing). Without re-copies this is the
//     rule above.
//   - Missing syncs. Two syncs that are neither one run nor adjacent records
//     mean syncs are missing (a crash between the acknowledgement and the
//     sync write). Offsets whose answer lies there report MissingSyncs
//     rather than a guess that could skip records. Where lost syncs happen
//     to look like a contiguous run, an answer may re-deliver a few records,
//     never skip one. Syncs written by MM2, which thins them out, translate
//     only inside contiguous runs.
//
// Syncs may reach an Index in any order and repeated. For a copier that
// never re-copies, the answers once all syncs are in do not depend on the
// order, and before that no answer skips a record (a randomized simulator
// and a fuzz target check both, positions included). With re-copies the same holds for syncs
// added in the order they were written, which is how the SyncStore reads
// them; added out of order, a sync can hide a re-copy whose syncs have not
// arrived yet. An Index fed in order keeps only the ends of runs: a
// gap-free partition holds two syncs however long it runs.
//
// # Topics
//
// Offset syncs live in mm2.OffsetSyncsTopic(target) on the source, or
// mm2.OffsetSyncsTopic(source) on the target (mirror.Flow.SyncsTopic),
// every record in partition 0, as MM2 keeps them. kdr creates that topic with
// cleanup.policy=delete (EnsureSyncTopic), not compact as MM2 does:
// compaction by key keeps only the newest sync per partition, so after a
// restart older positions could no longer be translated exactly
// (KAFKA-15905). Checkpoints go to mm2.CheckpointsTopic(source) on the
// target, one partition, compacted, keyed by group, renamed topic and
// partition, in MM2's format, so MM2's tooling (RemoteClusterUtils) reads
// them.
//
// # Checkpointer
//
// Every 5 s (MM2: 60 s) the Checkpointer lists the source groups its
// filter selects, translates their committed offsets on mirrored topics,
// writes the checkpoints that changed (all of them every 120 cycles) and,
// with SyncGroupOffsets, commits the translations to the same groups on
// the target while they have no members there, never moving a partition
// back, with leader epoch -1 (the source's epochs mean nothing on the
// target). Translator.TranslateGroup answers the same question on demand.
//
// Metrics, label flow = "source->target":
//
//	kdr_mirror_checkpoint_age_seconds{flow,group}      since all of the group's mirrored partitions were last translated
//	kdr_mirror_checkpoints_total{flow}                 checkpoint records written
//	kdr_mirror_group_offsets_synced_total{flow}        partition offsets committed on the target
//	kdr_mirror_group_offsets_skipped_total{flow,reason} active | target_ahead
//	kdr_mirror_translation_failures_total{flow,reason} no_syncs | before_history | not_mirrored | missing_syncs
//	kdr_mirror_checkpoint_errors_total{flow,stage}     topic | list_groups | fetch | produce | group_commit
//	kdr_mirror_offset_syncs_read_total{flow}           syncs read back by a SyncStore
//	kdr_mirror_offset_syncs_invalid_total{flow}        records of the syncs topic that did not decode
//
// # Limits
//
//   - The target partition must be written by the copier alone, and not
//     transactionally: transaction markers on the target would break the
//     adjacency of the two sides of a gap, and those offsets would report
//     MissingSyncs.
//   - If the target topic is deleted and recreated, its offsets start again
//     and the old syncs describe another log: delete the syncs too.
//   - A compacted source topic has a gap next to most records, so most
//     records get a sync; that is the price of exactness there.
//
// Concurrency: an Emitter belongs to one partition's copy loop; Index,
// SyncStore and Translator are safe for concurrent use; a Checkpointer's
// RunOnce must not overlap itself or Run.
package offsets

// Package storage is kdr's durable partition log, laid out on disk the way
// Kafka lays out its own: one *Log per partition directory, split into
// segments, each a .log file of record batches stored verbatim plus a sparse
// .index and a .timeindex. It assigns offsets, enforces idempotent-producer
// sequences, keeps the leader epoch cache, recovers after a crash, and applies
// retention and compaction when the broker calls Maintain.
//
// # Files in a partition directory
//
//	00000000000000000000.log        record batches, base offsets ascending
//	00000000000000000000.index      sparse offset index of that segment
//	00000000000000000000.timeindex  sparse time index of that segment
//	00000000000000001234.log        the next segment: its base offset is 1234
//	00000000000000001234.snapshot   producer state as of offset 1234
//	leader-epoch-checkpoint         (epoch, start offset) pairs
//	log-start-offset                the log start offset (DeleteRecords)
//	cleaner-offset-checkpoint       first offset compaction has not seen
//	recovery-point-offset           segments ending at or before it are on disk
//	.kdr-clean-shutdown             present only between Close and Open
//	*.cleaned                       compaction output before its rename
//
// Names are built in files.go only. Small files are replaced atomically
// (write a temporary file, fsync, rename, fsync the directory).
//
// # Record batch (magic 2), as stored in a .log file
//
//	 0               8      12     16 17         21    23               27
//	+---------------+------+------+--+----------+-----+----------------+
//	| baseOffset    |length|epoch |m | crc32c   |attrs| lastOffsetDelta|
//	| int64         |int32 |int32 |2 | uint32   |int16| int32          |
//	+---------------+------+------+--+----------+-----+----------------+
//	27              35              43              51    53       57     61
//	+---------------+---------------+---------------+-----+--------+------+---------
//	| baseTimestamp | maxTimestamp  | producerId    |pEpoch| baseSeq|count | records…
//	| int64         | int64         | int64         |int16 | int32  |int32 |
//	+---------------+---------------+---------------+-----+--------+------+---------
//
// length counts the bytes after itself (a batch is length+12 bytes); the CRC
// (Castagnoli) covers bytes 21 to the end. attrs bits 0-2 are the codec, bit 3
// LogAppendTime, bit 4 transactional, bit 5 control. The broker writes only
// baseOffset and the partition leader epoch, which sit outside the CRC; the
// one exception is LogAppendTime, which rewrites maxTimestamp and attrs and so
// recomputes the CRC.
//
// # Offset index entry (8 bytes, big endian)
//
//	+----------------+----------------+
//	| relativeOffset | position       |
//	| int32          | int32          |
//	+----------------+----------------+
//
// relativeOffset is a batch's base offset minus the segment's base offset and
// position is where that batch starts in the .log file. One entry is added
// whenever more than index.interval.bytes were appended since the previous
// one, so a lookup is a binary search followed by a short forward scan of
// batch headers. The first batch of a segment is at position 0 and needs no
// entry.
//
// # Time index entry (12 bytes, big endian)
//
//	+----------------+----------------+
//	| timestamp      | relativeOffset |
//	| int64          | int32          |
//	+----------------+----------------+
//
// timestamp is the largest batch maxTimestamp of the segment so far and
// relativeOffset the base offset of the first batch that reached it, so no
// batch before that offset has a timestamp >= timestamp. Entries are added
// with offset index entries when the maximum grew, and once more when the
// segment stops being active, so the last entry holds the segment's largest
// timestamp. Timestamps strictly increase from entry to entry.
//
// Indexes live in memory and are written to their files when the segment
// rolls (fsynced in the background with the segment), when the log closes
// and when recovery rebuilds them; after a crash the index of every segment
// past the recovery point is rebuilt from its batches.
//
// The active segment also remembers where its latest 128 batches sit
// (tail.go), in memory only: a read starting among them, as consumers and
// followers at the log end do, finds its range without reading batch
// headers from the file. Older reads go through the offset index and the
// headers.
//
// # Locking
//
// Four locks, always taken in this order: cleanMu → writeMu → flushMu → mu.
//
//   - cleanMu serializes Maintain (retention and compaction) with the
//     operations that delete or replace whole segments: TruncateTo,
//     DeleteRecordsBefore, Close.
//   - writeMu serializes everything that writes files: appends, rolls,
//     flushes, truncation, retention. It is held across the write syscall so
//     that appends stay ordered without blocking readers.
//   - flushMu serializes the flushes of rolled segments and the recovery
//     point (flush.go). The flushing goroutine takes it and mu, never
//     writeMu, so a roll hands its segment over and appends go on while
//     the disk syncs it.
//   - mu (RWMutex) guards the in-memory state. Every field it guards is
//     changed with writeMu held as well, so a goroutine holding writeMu may
//     read that state without mu; readers (Read, LogEndOffset, …) take mu
//     for reading only for the time of a lookup.
//
// Compaction reads and rewrites inactive segments holding only cleanMu, and
// takes writeMu and mu for the instant it swaps the cleaned files in, so
// appends and reads continue while it runs. The only goroutine a Log starts
// is the one that flushes rolled segments, at most one at a time, and Close
// waits for it. The broker drives time-based work by calling Maintain, and
// may share one Writeback among its logs, whose goroutine hands appended
// ranges to the kernel's writeback (writeback.go).
package storage

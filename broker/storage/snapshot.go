package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"slices"

	"github.com/kdr-io/kdr/internal/atomicfile"
)

// Producer snapshot file, <offset>.snapshot: the producer table as it was
// when the log end offset was <offset>. Recovery loads the newest snapshot
// at or below the log end offset and replays the batch headers after it.
//
//	0      4        6           14        18
//	+------+--------+-----------+---------+------------------------------+-------+
//	| KDRP | ver=1  | offset    | count   | count × producer             | crc32c|
//	|      | int16  | int64     | int32   |                              | uint32|
//	+------+--------+-----------+---------+------------------------------+-------+
//
//	producer: producerId int64, epoch int16, n int8,
//	          n × (firstSeq int32, lastSeq int32, firstOffset int64, lastOffset int64)
//
// The CRC (Castagnoli) covers every byte before it. Producers are sorted by
// ID so that equal tables give equal files.
const (
	snapshotMagic   = "KDRP"
	snapshotVersion = 1
	snapshotHeader  = 18
	snapshotsKept   = 2 // the newest two; an older one is never the best choice
)

func encodeSnapshot(offset int64, table map[int64]producerEntry) []byte {
	ids := make([]int64, 0, len(table))
	for id := range table {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	be := binary.BigEndian
	b := append([]byte(nil), snapshotMagic...)
	b = be.AppendUint16(b, snapshotVersion)
	b = be.AppendUint64(b, uint64(offset))
	b = be.AppendUint32(b, uint32(len(ids)))
	for _, id := range ids {
		e := table[id]
		b = be.AppendUint64(b, uint64(id))
		b = be.AppendUint16(b, uint16(e.epoch))
		b = append(b, byte(e.n))
		for _, m := range e.batches[:e.n] {
			b = be.AppendUint32(b, uint32(m.firstSeq))
			b = be.AppendUint32(b, uint32(m.lastSeq))
			b = be.AppendUint64(b, uint64(m.firstOff))
			b = be.AppendUint64(b, uint64(m.lastOff))
		}
	}
	return be.AppendUint32(b, crc32c(b))
}

var errBadSnapshot = errors.New("storage: bad producer snapshot")

func decodeSnapshot(b []byte) (int64, map[int64]producerEntry, error) {
	be := binary.BigEndian
	if len(b) < snapshotHeader+4 || string(b[:4]) != snapshotMagic || be.Uint16(b[4:]) != snapshotVersion {
		return 0, nil, errBadSnapshot
	}
	body := b[:len(b)-4]
	if crc32c(body) != be.Uint32(b[len(b)-4:]) {
		return 0, nil, errBadSnapshot
	}
	offset := int64(be.Uint64(b[6:]))
	count := int(be.Uint32(b[14:]))
	rest := body[snapshotHeader:]
	if count < 0 || count > len(rest)/11 {
		return 0, nil, errBadSnapshot
	}
	table := make(map[int64]producerEntry, count)
	for range count {
		if len(rest) < 11 {
			return 0, nil, errBadSnapshot
		}
		id := int64(be.Uint64(rest))
		e := producerEntry{epoch: int16(be.Uint16(rest[8:])), n: int(rest[10])}
		rest = rest[11:]
		if e.n > producerBatches || len(rest) < e.n*24 {
			return 0, nil, errBadSnapshot
		}
		for i := range e.n {
			e.batches[i] = batchMeta{
				firstSeq: int32(be.Uint32(rest)), lastSeq: int32(be.Uint32(rest[4:])),
				firstOff: int64(be.Uint64(rest[8:])), lastOff: int64(be.Uint64(rest[16:])),
			}
			rest = rest[24:]
		}
		table[id] = e
	}
	if len(rest) != 0 {
		return 0, nil, errBadSnapshot
	}
	return offset, table, nil
}

// writeSnapshot stores the table as of offset and deletes all but the
// newest snapshotsKept snapshots.
func writeSnapshot(dir string, offset int64, table map[int64]producerEntry) error {
	return writeSnapshotBytes(dir, offset, encodeSnapshot(offset, table))
}

// writeSnapshotBytes is writeSnapshot of a table encodeSnapshot encoded
// earlier.
func writeSnapshotBytes(dir string, offset int64, data []byte) error {
	if err := atomicfile.Write(offsetName(dir, offset, snapshotSuffix), data, 0o644); err != nil {
		return fmt.Errorf("storage: %w", err)
	}
	offs, err := listOffsets(dir, snapshotSuffix)
	if err != nil {
		return err
	}
	for len(offs) > snapshotsKept {
		if err := removeFiles(offsetName(dir, offs[0], snapshotSuffix)); err != nil {
			return fmt.Errorf("storage: %w", err)
		}
		offs = offs[1:]
	}
	return nil
}

// loadSnapshot returns the newest readable snapshot at or below leo and
// deletes the ones above it (they describe records that no longer exist).
// With none it returns offset -1 and an empty table.
func loadSnapshot(dir string, leo int64) (int64, map[int64]producerEntry, error) {
	offs, err := listOffsets(dir, snapshotSuffix)
	if err != nil {
		return 0, nil, err
	}
	for i := len(offs) - 1; i >= 0; i-- {
		path := offsetName(dir, offs[i], snapshotSuffix)
		if offs[i] > leo {
			if err := removeFiles(path); err != nil {
				return 0, nil, fmt.Errorf("storage: %w", err)
			}
			continue
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		if off, table, err := decodeSnapshot(raw); err == nil && off == offs[i] {
			return off, table, nil
		}
	}
	return -1, map[int64]producerEntry{}, nil
}

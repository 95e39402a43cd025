package storage

import (
	"encoding/binary"
	"fmt"
	"os"
	"sort"
)

const (
	offsetEntryLen = 8  // relative offset int32, position int32
	timeEntryLen   = 12 // timestamp int64, relative offset int32
)

type offsetEntry struct{ rel, pos int32 }

type timeEntry struct {
	ts  int64
	rel int32
}

// segIndex is a segment's offset and time index, kept in memory and written
// to its two files on flush, roll and close (formats in doc.go).
type segIndex struct {
	offsets []offsetEntry
	times   []timeEntry
	// How many entries of each the files already hold; the rest are
	// written by the next write. rewrite means the files no longer match
	// a prefix of the entries (after a rebuild or truncation).
	offsetsOnDisk, timesOnDisk int
	rewrite                    bool
}

// positionOf returns the position of the last indexed batch whose base is
// at or before rel, or 0 (the segment's first batch).
func (x *segIndex) positionOf(rel int64) (int64, int64) {
	i := sort.Search(len(x.offsets), func(i int) bool { return int64(x.offsets[i].rel) > rel })
	if i == 0 {
		return 0, 0
	}
	e := x.offsets[i-1]
	return int64(e.rel), int64(e.pos)
}

// atPosition returns the last indexed batch starting at or before pos.
func (x *segIndex) atPosition(pos int64) int64 {
	i := sort.Search(len(x.offsets), func(i int) bool { return int64(x.offsets[i].pos) > pos })
	if i == 0 {
		return 0
	}
	return int64(x.offsets[i-1].pos)
}

// relForTime returns the relative offset to start a search for the first
// timestamp >= ts: the last entry with timestamp <= ts (every batch before
// its offset has a smaller maximum), or 0.
func (x *segIndex) relForTime(ts int64) int64 {
	i := sort.Search(len(x.times), func(i int) bool { return x.times[i].ts > ts })
	if i == 0 {
		return 0
	}
	return int64(x.times[i-1].rel)
}

func (x *segIndex) lastTime() int64 {
	if len(x.times) == 0 {
		return -1
	}
	return x.times[len(x.times)-1].ts
}

// maybeAddTime appends (ts, rel) if ts is a new maximum.
func (x *segIndex) maybeAddTime(ts, rel int64) {
	if ts > x.lastTime() {
		x.times = append(x.times, timeEntry{ts: ts, rel: int32(rel)})
	}
}

// truncate drops the entries at or after position pos / relative offset rel.
func (x *segIndex) truncate(pos, rel int64) {
	i := sort.Search(len(x.offsets), func(i int) bool { return int64(x.offsets[i].pos) >= pos })
	j := sort.Search(len(x.times), func(j int) bool { return int64(x.times[j].rel) >= rel })
	if i < len(x.offsets) || j < len(x.times) {
		x.offsets, x.times = x.offsets[:i], x.times[:j]
		x.rewrite = true
	}
}

func (x *segIndex) reset() {
	x.offsets, x.times = x.offsets[:0], x.times[:0]
	x.rewrite = true
}

// write brings the index files up to date, fsyncing them when sync is set.
func (x *segIndex) write(indexPath, timePath string, sync bool) error {
	from, tfrom := x.offsetsOnDisk, x.timesOnDisk
	if x.rewrite {
		from, tfrom = 0, 0
	}
	buf := make([]byte, 0, max(len(x.offsets)-from, 0)*offsetEntryLen)
	for _, e := range x.offsets[from:] {
		buf = binary.BigEndian.AppendUint32(buf, uint32(e.rel))
		buf = binary.BigEndian.AppendUint32(buf, uint32(e.pos))
	}
	if err := writeEntries(indexPath, buf, int64(from)*offsetEntryLen, int64(len(x.offsets))*offsetEntryLen, sync); err != nil {
		return err
	}
	buf = make([]byte, 0, max(len(x.times)-tfrom, 0)*timeEntryLen)
	for _, e := range x.times[tfrom:] {
		buf = binary.BigEndian.AppendUint64(buf, uint64(e.ts))
		buf = binary.BigEndian.AppendUint32(buf, uint32(e.rel))
	}
	if err := writeEntries(timePath, buf, int64(tfrom)*timeEntryLen, int64(len(x.times))*timeEntryLen, sync); err != nil {
		return err
	}
	x.offsetsOnDisk, x.timesOnDisk, x.rewrite = len(x.offsets), len(x.times), false
	return nil
}

// writeEntries writes buf at position at and cuts the file to size.
func writeEntries(path string, buf []byte, at, size int64, sync bool) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("storage: %w", err)
	}
	_, err = f.WriteAt(buf, at)
	if err == nil {
		err = f.Truncate(size)
	}
	if err == nil && sync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("storage: writing %s: %w", path, err)
	}
	return nil
}

// readIndex loads a segment's index files and checks what can be checked
// without reading the log: sizes are whole entries, offsets, positions and
// timestamps increase, positions lie inside the log file. ok is false when
// either file is missing or fails a check; the caller then rebuilds.
func readIndex(indexPath, timePath string, logSize int64) (segIndex, bool) {
	var x segIndex
	raw, err := os.ReadFile(indexPath)
	if err != nil || len(raw)%offsetEntryLen != 0 {
		return x, false
	}
	traw, err := os.ReadFile(timePath)
	if err != nil || len(traw)%timeEntryLen != 0 {
		return x, false
	}
	x.offsets = make([]offsetEntry, 0, len(raw)/offsetEntryLen)
	for b := raw; len(b) > 0; b = b[offsetEntryLen:] {
		e := offsetEntry{rel: int32(binary.BigEndian.Uint32(b)), pos: int32(binary.BigEndian.Uint32(b[4:]))}
		if e.rel < 0 || e.pos < 0 || int64(e.pos) >= logSize {
			return x, false
		}
		if n := len(x.offsets); n > 0 && (e.rel <= x.offsets[n-1].rel || e.pos <= x.offsets[n-1].pos) {
			return x, false
		}
		x.offsets = append(x.offsets, e)
	}
	x.times = make([]timeEntry, 0, len(traw)/timeEntryLen)
	for b := traw; len(b) > 0; b = b[timeEntryLen:] {
		e := timeEntry{ts: int64(binary.BigEndian.Uint64(b)), rel: int32(binary.BigEndian.Uint32(b[8:]))}
		if e.rel < 0 {
			return x, false
		}
		if n := len(x.times); n > 0 && (e.ts <= x.times[n-1].ts || e.rel < x.times[n-1].rel) {
			return x, false
		}
		x.times = append(x.times, e)
	}
	x.offsetsOnDisk, x.timesOnDisk = len(x.offsets), len(x.times)
	return x, true
}

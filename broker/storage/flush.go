package storage

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/kdr-io/kdr/internal/atomicfile"
)

// A rolled segment is made durable in the background, as Kafka does, not
// under writeMu: fsyncing it there held every append to the partition for
// as long as the disk took. On a 2-core VM at 60 MB/s, each roll of a
// 128 MiB segment stalled produce for ~90 ms, and of a 1 GiB one for
// 290–490 ms (docs/benchmarks.md).
//
// The recovery point is what makes that safe. Every segment that ends at or
// before it is on disk with its index, and the recovery-point file says so;
// recovery after a crash trusts those segments and re-reads every later one
// batch by batch, as it always did for the active segment. The point only
// moves up once the segments below it are fsynced, and it moves down, on
// disk first, when truncation removes offsets below it.

// FlushLimit bounds how many logs flush rolled segments at once; a broker
// shares one among its logs. Without it, partitions that roll together (as
// segment.ms makes them) would each block a thread in fsync at the same time,
// thousands on a large broker, where Go stops a program at 10,000 threads.
type FlushLimit chan struct{}

// NewFlushLimit allows n flushes at once.
func NewFlushLimit(n int) FlushLimit { return make(FlushLimit, max(n, 1)) }

// acquire waits for a slot; a nil FlushLimit has no bound.
func (f FlushLimit) acquire() {
	if f != nil {
		f <- struct{}{}
	}
}

func (f FlushLimit) release() {
	if f != nil {
		<-f
	}
}

// flushRequest is the newest roll not yet flushed: the end of the sealed
// segments, and the producer snapshot taken at that offset.
type flushRequest struct {
	upTo    int64
	snap    []byte // encoded producer table as of upTo
	gen     uint64 // l.flush.gen at the roll; a truncation since voids snap
	seq     uint64 // counts requests, so the goroutine knows it has the newest
	running bool   // a goroutine is flushing; it picks the request up
}

// flushState is the recovery point; guarded by the log's flushMu.
type flushState struct {
	// point: every segment ending at or before it is on disk.
	point int64
	// onDisk is the recovery-point file's offset (-1: no file). It may
	// be above point (Close writes the log end offset) but never above
	// what is on disk.
	onDisk int64
	// gen counts truncations; also changed only with writeMu held, so
	// roll reads it without flushMu.
	gen uint64
}

// scheduleFlush asks for the segments ending at or before upTo to be made
// durable, with snap (the producer table as of upTo) written alongside.
// Called by roll with writeMu held; at most one goroutine per log flushes,
// taking the newest request each time round.
func (l *Log) scheduleFlush(upTo int64, snap []byte) {
	l.flushReqMu.Lock()
	defer l.flushReqMu.Unlock()
	l.flushReq.upTo, l.flushReq.snap, l.flushReq.gen = upTo, snap, l.flush.gen
	l.flushReq.seq++
	if l.flushReq.running {
		return
	}
	l.flushReq.running = true
	l.flushing.Add(1)
	go l.flushLoop()
}

func (l *Log) flushLoop() {
	defer l.flushing.Done()
	var done uint64
	for {
		l.flushReqMu.Lock()
		req := l.flushReq
		l.flushReq.snap = nil
		if req.seq == done {
			l.flushReq.running = false
			l.flushReqMu.Unlock()
			return
		}
		done = req.seq
		l.flushReqMu.Unlock()
		l.flushLimit.acquire()
		err := l.flushRolled(req.upTo, req.snap, req.gen)
		l.flushLimit.release()
		if err != nil {
			// The recovery point stays where it was, so recovery
			// re-reads these segments; the next roll or Close tries
			// again.
			l.logger.Error("flushing rolled segments failed", "up_to", req.upTo, "err", err)
		}
	}
}

// flushRolled fsyncs every sealed segment between the recovery point and
// upTo (no further than the active segment's base), writes snap (the
// producer table as of upTo) if no truncation voided it, moves the recovery
// point up, and reports to OnFlush. It takes flushMu, never writeMu, so
// appends go on meanwhile.
func (l *Log) flushRolled(upTo int64, snap []byte, gen uint64) error {
	start := time.Now()
	err := l.flushRolledLocked(upTo, snap, gen)
	if l.onFlush != nil {
		l.onFlush(time.Since(start), err)
	}
	return err
}

func (l *Log) flushRolledLocked(upTo int64, snap []byte, gen uint64) error {
	l.flushMu.Lock()
	defer l.flushMu.Unlock()
	snapAt := upTo
	var todo []*segment
	l.mu.RLock()
	upTo = min(upTo, l.segs[len(l.segs)-1].base)
	for _, s := range l.segs[:len(l.segs)-1] {
		if s.next > l.flush.point && s.next <= upTo {
			todo = append(todo, s)
		}
	}
	l.mu.RUnlock()
	for _, s := range todo {
		// By path: retention may remove the segment meanwhile (then
		// there is nothing to keep), and compaction may replace the
		// file with its own output, which it fsynced.
		for _, p := range []string{s.logPath(), s.indexPath(), s.timeIndexPath()} {
			if err := syncPath(p); err != nil {
				return err
			}
		}
	}
	if snap != nil && gen == l.flush.gen {
		// Also makes the directory durable: the new segment's file
		// and the index files written at the roll.
		if err := writeSnapshotBytes(l.dir, snapAt, snap); err != nil {
			return err
		}
	} else if err := atomicfile.SyncDir(l.dir); err != nil {
		return err
	}
	if upTo <= l.flush.point {
		return nil
	}
	if upTo > l.flush.onDisk {
		if err := l.writeRecoveryPoint(upTo); err != nil {
			return err
		}
	}
	l.flush.point = upTo
	l.flushedTo.Store(upTo)
	return nil
}

// flushAllRolled makes every sealed segment durable now; callers hold
// writeMu, so no roll adds one meanwhile. Flush, flush.messages, flush.ms
// and Close promise that everything appended is on disk, the rolled
// segments included.
func (l *Log) flushAllRolled() error {
	if l.flushedTo.Load() >= l.active().base {
		return nil
	}
	return l.flushRolled(l.active().base, nil, l.flush.gen)
}

// writeRecoveryPoint writes the recovery-point file; callers hold flushMu
// (or are Open, before anything else runs).
func (l *Log) writeRecoveryPoint(offset int64) error {
	if err := writeOffsetFile(l.path(recoveryPointFile), offset); err != nil {
		return fmt.Errorf("storage: %w", err)
	}
	l.flush.onDisk = offset
	return nil
}

// lowerRecoveryPoint moves the recovery point down to offset, on disk
// first, after a truncation removed the offsets from there on: what is
// appended there next is not on disk yet. It also voids the pending
// snapshot, which describes removed offsets. Callers hold writeMu.
func (l *Log) lowerRecoveryPoint(offset int64) error {
	l.flushMu.Lock()
	defer l.flushMu.Unlock()
	l.flush.gen++
	if l.flush.onDisk > offset {
		if err := l.writeRecoveryPoint(offset); err != nil {
			return err
		}
	}
	l.flush.point = min(l.flush.point, offset)
	l.flushedTo.Store(l.flush.point)
	return nil
}

// syncPath fsyncs the file at path; a file that no longer exists needs
// nothing.
func syncPath(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("storage: %w", err)
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("storage: fsync %s: %w", path, err)
	}
	return nil
}

package storage

import (
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
)

// Writeback starts the kernel's writeback of appended log bytes early and
// steadily, off the append path.
//
// Left alone, Linux writes nothing back until dirty pages pass
// vm.dirty_background_ratio of memory (gigabytes on a large machine), and
// then flushes them as fast as the disk takes them. A broker appending
// 160 MB/s crosses that line about 15 s after a quiet start, and the flush
// burst took both CPUs of a 2-core VM: records copied by a mirror waited
// 0.3–1 s while it lasted, where they otherwise waited 20–60 ms. Handing
// each few appended megabytes to writeback at once (sync_file_range(2)
// SYNC_FILE_RANGE_WRITE, the same as RocksDB's bytes_per_sync) spreads the
// same disk work evenly. It does not make anything durable: fsync still
// follows flush.messages and flush.ms, and replication protects acknowledged
// records.
//
// One worker goroutine makes the calls, because one can block while the
// device is saturated; an append only queues a range, and when the queue is
// full it leaves the range to the kernel's own thresholds.
//
// With drop-behind (log.drop.behind.bytes, off by default) the worker also
// drops from the page cache what lies more than that many bytes behind a
// segment's end, once the disk has it (SYNC_FILE_RANGE_WAIT_AFTER, then
// POSIX_FADV_DONTNEED). Appends then keep reusing the pages drop-behind
// freed. On a VM whose host reclaims guest memory the guest is not using,
// filling fresh page-cache pages cost 2.5–3.5 CPU-s per GiB against 0.3–0.4
// for recycled ones (docs/benchmarks.md). The price: a consumer further
// behind than that reads from the disk, where Kafka would serve it from
// memory.
type Writeback struct {
	every      int64
	dropBehind int64 // 0: no drop-behind
	logger     *slog.Logger
	jobs       chan writebackJob
	done       chan struct{}

	mu     sync.RWMutex // offer holds it to send, Close to stop offers
	closed bool

	bytes    atomic.Int64
	dropped  atomic.Int64
	failures atomic.Int64
}

// writebackJob is one range of a segment file, with the descriptor it is
// read through: the segment may be removed meanwhile, and the descriptor
// keeps the file (and its number) until the job puts it back.
type writebackJob struct {
	f      *os.File
	gen    uint64
	rd     *descriptors
	off, n int64
	// dropFrom..dropTo is dropped from the page cache after the range is
	// handed to writeback; empty without drop-behind.
	dropFrom, dropTo int64
}

// pageSize aligns drop-behind ranges.
var pageSize = int64(os.Getpagesize())

// writebackQueue bounds the ranges waiting for the worker.
const writebackQueue = 256

// NewWriteback starts a worker that hands every `every` bytes appended to a
// segment to the kernel's writeback, and, when dropBehind is positive, drops
// what lies more than dropBehind bytes behind a segment's end from the page
// cache. It returns nil (appends leave writeback to the kernel) when every is
// 0 or less, or where the platform has no sync_file_range.
func NewWriteback(every, dropBehind int64, logger *slog.Logger) *Writeback {
	if every <= 0 || !writebackSupported {
		return nil
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	w := &Writeback{every: every, dropBehind: max(dropBehind, 0), logger: logger, jobs: make(chan writebackJob, writebackQueue), done: make(chan struct{})}
	go w.run()
	return w
}

func (w *Writeback) run() {
	defer close(w.done)
	for j := range w.jobs {
		if err := startWriteback(j.f, j.off, j.n); err != nil {
			// Nothing is lost: the kernel writes the range back later
			// by itself. Only the first failure is logged; the
			// metric counts them all.
			if w.failures.Add(1) == 1 {
				w.logger.Warn("early writeback failed; the kernel writes these bytes back on its own schedule",
					"file", j.f.Name(), "offset", j.off, "bytes", j.n, "err", err)
			}
		} else {
			w.bytes.Add(j.n)
		}
		if j.dropTo > j.dropFrom {
			if err := dropCache(j.f, j.dropFrom, j.dropTo-j.dropFrom); err != nil {
				if w.failures.Add(1) == 1 {
					w.logger.Warn("drop-behind failed; the pages stay in the page cache until the kernel evicts them",
						"file", j.f.Name(), "offset", j.dropFrom, "bytes", j.dropTo-j.dropFrom, "err", err)
				}
			} else {
				w.dropped.Add(j.dropTo - j.dropFrom)
			}
		}
		j.rd.put(j.f, j.gen)
	}
}

// offer queues s's bytes up to end once at least w.every of them have not
// been handed to writeback yet. Called with the log's writeMu held, after
// the bytes are written.
func (w *Writeback) offer(s *segment, end int64) {
	if w == nil || end-s.handed < w.every {
		return
	}
	f, gen, err := s.rd.get(s.logPath())
	if err != nil {
		return // the next append tries again
	}
	w.mu.RLock()
	defer w.mu.RUnlock()
	if !w.closed {
		j := w.job(s, f, gen, end)
		select {
		case w.jobs <- j:
			s.handed, s.dropped = end, max(s.dropped, j.dropTo)
			return
		default:
			// The worker is behind: the device is saturated.
		}
	}
	s.rd.put(f, gen)
}

// job is the range of s up to end not handed yet, and with drop-behind what
// is now dropBehind bytes or more behind end and not dropped yet.
func (w *Writeback) job(s *segment, f *os.File, gen uint64, end int64) writebackJob {
	j := writebackJob{f: f, gen: gen, rd: &s.rd, off: s.handed, n: end - s.handed}
	// Whole pages only: POSIX_FADV_DONTNEED leaves a page the range only
	// partly covers, and the next range would start past it.
	if to := (end - w.dropBehind) &^ (pageSize - 1); w.dropBehind > 0 && to > s.dropped {
		j.dropFrom, j.dropTo = s.dropped, to
	}
	return j
}

// Close lets the worker finish the queued ranges and stops it. Offers after
// Close are ignored.
func (w *Writeback) Close() {
	if w == nil {
		return
	}
	w.mu.Lock()
	if !w.closed {
		w.closed = true
		close(w.jobs)
	}
	w.mu.Unlock()
	<-w.done
}

// Bytes is how many appended bytes were handed to writeback so far; 0 for a
// nil (disabled) Writeback.
func (w *Writeback) Bytes() int64 {
	if w == nil {
		return 0
	}
	return w.bytes.Load()
}

// Dropped is how many bytes drop-behind dropped from the page cache so far.
func (w *Writeback) Dropped() int64 {
	if w == nil {
		return 0
	}
	return w.dropped.Load()
}

// Failures is how many ranges the kernel refused.
func (w *Writeback) Failures() int64 {
	if w == nil {
		return 0
	}
	return w.failures.Load()
}

package storage

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kdr-io/kdr/internal/atomicfile"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Options are the Log's collaborators.
type Options struct {
	// Logger receives recovery and maintenance messages; nil discards
	// them.
	Logger *slog.Logger
	// Now is the clock for LogAppendTime, segment.ms, retention.ms and
	// flush.ms; nil is time.Now. Tests inject a fake one.
	Now func() time.Time
	// Writeback, if set, starts the kernel's writeback of appended bytes
	// early; shared by all of a broker's logs.
	Writeback *Writeback
	// OnFlush, if set, is called after each flush of rolled segments
	// (in the background after a roll, or before Flush and Close) with
	// how long it took and its error.
	OnFlush func(took time.Duration, err error)
	// FlushLimit, if set, bounds the background flushes of rolled
	// segments running at once; shared by all of a broker's logs.
	FlushLimit FlushLimit
}

// Log is one partition's log. All methods are safe for concurrent use; the
// locking contract is in doc.go.
type Log struct {
	dir    string
	logger *slog.Logger
	now    func() time.Time
	dec    kgo.Decompressor
	wb     *Writeback // nil: the kernel alone decides when to write back
	chunks sync.Pool  // *[]byte, header-walk buffers for readers

	cleanMu sync.Mutex
	writeMu sync.Mutex
	mu      sync.RWMutex

	// Guarded by mu, and changed only with writeMu held too.
	cfg       Config
	segs      []*segment // ascending base offsets; the last one is active
	logStart  int64
	epochs    epochCache
	producers map[int64]producerEntry
	closed    bool

	// Guarded by writeMu.
	wbuf        []byte           // leader appends are stamped here, then written
	staged      []producerUpdate // producer changes of the append in progress
	unflushed   int64            // records appended since the last fsync
	lastFlushMs int64
	epochsDirty bool // the checkpoint failed to write; retried later

	// Guarded by cleanMu.
	cleanerOffset int64 // segments before it have been compacted

	// Rolled segments are flushed in the background (flush.go). flushMu
	// comes after writeMu and before mu in the lock order; the flushing
	// goroutine never takes writeMu.
	flushMu    sync.Mutex
	flush      flushState   // guarded by flushMu
	flushedTo  atomic.Int64 // flush.point, read without flushMu
	flushReqMu sync.Mutex   // guards flushReq; held for no I/O
	flushReq   flushRequest
	flushing   sync.WaitGroup // the flushing goroutine, for Close
	onFlush    func(time.Duration, error)
	flushLimit FlushLimit
}

func (l *Log) active() *segment { return l.segs[len(l.segs)-1] }

func (l *Log) leo() int64 { return l.active().next }

func (l *Log) nowMs() int64 { return l.now().UnixMilli() }

func (l *Log) path(name string) string { return filepath.Join(l.dir, name) }

// chunk borrows a buffer for a fileReader used under mu.RLock.
func (l *Log) chunk() *[]byte {
	if b, ok := l.chunks.Get().(*[]byte); ok {
		return b
	}
	b := make([]byte, 0, 4096)
	return &b
}

// LogStartOffset is the first offset a consumer may read.
func (l *Log) LogStartOffset() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.logStart
}

// LogEndOffset is the offset the next appended record gets.
func (l *Log) LogEndOffset() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.leo()
}

// LatestEpoch is the newest leader epoch in the log, -1 if none.
func (l *Log) LatestEpoch() int32 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.epochs.latest()
}

// EndOffsetForEpoch answers OffsetForLeaderEpoch: the largest epoch <= epoch
// that the log has, and the offset where the next epoch starts (the log end
// offset for the latest epoch); (-1, -1) when epoch is newer than all.
func (l *Log) EndOffsetForEpoch(epoch int32) (leaderEpoch int32, endOffset int64) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.epochs.endOffsetFor(epoch, l.leo())
}

// Config returns the settings in effect.
func (l *Log) Config() Config {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.cfg
}

// SetConfig changes the settings; they apply from the next append or
// Maintain.
func (l *Log) SetConfig(cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	l.writeMu.Lock()
	defer l.writeMu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cfg = cfg
	return nil
}

// Size is the bytes of all segment files.
func (l *Log) Size() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	var n int64
	for _, s := range l.segs {
		n += s.size
	}
	return n
}

// ProducerState returns a producer's epoch and the sequence of its last
// appended record (-1 when it has appended none in this epoch).
func (l *Log) ProducerState(producerID int64) (epoch int16, lastSeq int32, ok bool) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	e, ok := l.producers[producerID]
	if !ok {
		return 0, 0, false
	}
	lastSeq = -1
	if m, ok := e.last(); ok {
		lastSeq = m.lastSeq
	}
	return e.epoch, lastSeq, true
}

// Flush fsyncs what has been appended.
func (l *Log) Flush() error {
	l.writeMu.Lock()
	defer l.writeMu.Unlock()
	if l.closed {
		return ErrClosed
	}
	return l.flushLocked(l.nowMs())
}

// flushLocked fsyncs the rolled segments the background has not flushed yet
// and the active segment. The active segment's index is not written: after a
// crash it is rebuilt anyway.
func (l *Log) flushLocked(nowMs int64) error {
	if err := l.flushAllRolled(); err != nil {
		return err
	}
	if err := l.active().f.Sync(); err != nil {
		return fmt.Errorf("storage: fsync %s: %w", l.active().logPath(), err)
	}
	l.unflushed, l.lastFlushMs = 0, nowMs
	return nil
}

// persistEpochs writes the leader epoch checkpoint. A failure is logged and
// retried on the next change, Maintain or Close: the batches still carry
// their epochs, and recovery re-reads the ones after the last snapshot.
func (l *Log) persistEpochs() {
	if err := writeEpochs(l.path(epochFile), l.epochs.entries); err != nil {
		l.epochsDirty = true
		l.logger.Error("writing leader epoch checkpoint", "err", err)
		return
	}
	l.epochsDirty = false
}

// Close flushes everything, writes the producer snapshot and the
// clean-shutdown marker, and closes the files. It is idempotent; other
// methods return ErrClosed afterwards.
func (l *Log) Close() error {
	l.cleanMu.Lock()
	defer l.cleanMu.Unlock()
	l.writeMu.Lock()
	defer l.writeMu.Unlock()
	if l.closed {
		return nil
	}
	// The flushing goroutine takes no lock Close holds.
	l.flushing.Wait()
	a := l.active()
	l.mu.Lock()
	a.seal()
	l.mu.Unlock()
	errs := []error{l.flushAllRolled(), a.writeIndex(true), a.f.Sync()}
	errs = append(errs, writeSnapshot(l.dir, l.leo(), l.producers))
	if errors.Join(errs...) == nil {
		// Everything is on disk: after a later crash, recovery need
		// not re-read any of it.
		errs = append(errs, l.writeRecoveryPointAtClose())
	}
	if l.epochsDirty {
		l.persistEpochs()
	}
	err := errors.Join(errs...)
	if err == nil {
		// Only a log whose every file is complete may skip recovery.
		err = atomicfile.Write(l.path(cleanShutdownFile), nil, 0o644)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	for _, s := range l.segs {
		err = errors.Join(err, s.close())
	}
	return err
}

// writeRecoveryPointAtClose records that the whole log, up to the log end
// offset, is on disk; Close calls it after fsyncing everything.
func (l *Log) writeRecoveryPointAtClose() error {
	l.flushMu.Lock()
	defer l.flushMu.Unlock()
	if l.flush.onDisk == l.leo() || len(l.segs) == 1 {
		// Recovery re-reads the last segment anyway.
		return nil
	}
	return l.writeRecoveryPoint(l.leo())
}

// Delete closes the log and removes its directory (topic deletion).
func (l *Log) Delete() error {
	err := l.Close()
	if rerr := os.RemoveAll(l.dir); rerr != nil {
		err = errors.Join(err, fmt.Errorf("storage: %w", rerr))
	}
	return err
}

package storage

import (
	"errors"
	"os"
	"sync"
)

// maxIdleDescriptors bounds the read descriptors a segment keeps open
// between reads. Most fetches read the active segment, one or two at a
// time per partition; a lagging reader of an older segment opens one anew
// when none is idle.
const maxIdleDescriptors = 2

// descriptors keeps a segment file's read-only descriptors between reads.
// Every FileSlice needs one of its own (sendfile moves the file offset, and
// a slice must stay readable after its segment is removed), and opening the
// file for every fetch cost a busy leader about a sixth of its CPU.
//
// A descriptor belongs to one generation of the file: when compaction
// replaces the file or the segment is removed, the generation moves on, idle
// descriptors are closed, and ones handed out before are closed when their
// slice is.
type descriptors struct {
	mu     sync.Mutex
	idle   []*os.File
	gen    uint64
	closed bool
}

// get returns an idle descriptor of the current file, or opens one.
func (d *descriptors) get(path string) (*os.File, uint64, error) {
	d.mu.Lock()
	gen := d.gen
	if n := len(d.idle); n > 0 && !d.closed {
		f := d.idle[n-1]
		d.idle = d.idle[:n-1]
		d.mu.Unlock()
		return f, gen, nil
	}
	d.mu.Unlock()
	f, err := os.Open(path)
	return f, gen, err
}

// put takes back a descriptor of generation gen, or closes it.
func (d *descriptors) put(f *os.File, gen uint64) error {
	d.mu.Lock()
	if !d.closed && gen == d.gen && len(d.idle) < maxIdleDescriptors {
		d.idle = append(d.idle, f)
		d.mu.Unlock()
		return nil
	}
	d.mu.Unlock()
	return f.Close()
}

// replaced starts a new generation (the file at the path is another one
// now) and closes the idle descriptors; final stops keeping any.
func (d *descriptors) replaced(final bool) error {
	d.mu.Lock()
	idle := d.idle
	d.idle = nil
	d.gen++
	d.closed = d.closed || final
	d.mu.Unlock()
	var errs []error
	for _, f := range idle {
		errs = append(errs, f.Close())
	}
	return errors.Join(errs...)
}

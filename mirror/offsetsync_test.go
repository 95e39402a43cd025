package mirror

import "testing"

// TestEmitterBlindAfterUnpairedCopies: a forwarded batch the target took
// as a duplicate has no known target offsets, so after it the emitter
// cannot say where the next record lands: no position until the next
// batch's pairs.
func TestEmitterBlindAfterUnpairedCopies(t *testing.T) {
	e := newEmitter()
	e.batch([]pair{{Upstream: 10, Downstream: 0}, {Upstream: 11, Downstream: 1}})
	e.unpaired() // 12..14 copied to 2..4, offsets unknown
	if p, ok := e.position(16); ok {
		t.Fatalf("position %v after copies of unknown offsets; the next record lands at 5, not 2", p)
	}
	e.batch([]pair{{Upstream: 15, Downstream: 5}})
	if p, ok := e.position(17); !ok || p != (pair{Upstream: 17, Downstream: 6}) {
		t.Fatalf("position %v, %v after the next batch; want {17 6}", p, ok)
	}
}

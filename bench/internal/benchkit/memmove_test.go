package benchkit

import "testing"

func TestMemmoveGBps(t *testing.T) {
	// Any machine this runs on copies faster than 10 MB/s and slower than
	// 10 TB/s; outside that, the arithmetic is wrong.
	if got := MemmoveGBps(); got < 0.01 || got > 10000 {
		t.Fatalf("MemmoveGBps() = %v GB/s", got)
	}
}

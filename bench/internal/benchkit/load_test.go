package benchkit

import (
	"errors"
	"io/fs"
	"os"
	"testing"
	"time"
)

// TestMeasureLoad spins until this process has used 300 ms of CPU (however
// long a loaded machine takes to give it that) and expects MeasureLoad to
// account for them: in this process's cores and in the host's busy share.
func TestMeasureLoad(t *testing.T) {
	self := os.Getpid()
	// The window opens before the first reading and closes after the
	// last, so it holds at least the 300 ms spun between them.
	start := time.Now()
	stop := MeasureLoad(Named{Name: "self", Pid: self})
	cpu0, err := ProcessCPU(self)
	if err != nil {
		t.Fatal(err)
	}
	deadline := start.Add(30 * time.Second)
	for {
		c, err := ProcessCPU(self)
		if err != nil {
			t.Fatal(err)
		}
		if c-cpu0 >= 300*time.Millisecond {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("used %v of CPU in 30 s", c-cpu0)
		}
		for i := 0; i < 1e6; i++ {
		}
	}
	l := stop()
	wall := time.Since(start).Seconds()
	if len(l.Procs) != 1 || l.Procs[0].Name != "self" {
		t.Fatalf("procs %+v, want self alone", l.Procs)
	}
	// /proc counts in 10 ms ticks: allow one of them.
	if used := l.Procs[0].Cores * wall; used < 0.29 || used > float64(l.CPUs)*wall+0.02 {
		t.Errorf("self used %.3f CPU-s in %.3f s by MeasureLoad, want 0.28..%.3f", used, wall, float64(l.CPUs)*wall)
	}
	if busy := l.Busy * float64(l.CPUs) * wall; busy < 0.27 || l.Busy > 1 {
		t.Errorf("host busy %.2f (%.3f CPU-s), want at least this process's 0.3 CPU-s", l.Busy, busy)
	}
	if l.String() == "" {
		t.Error("empty String")
	}
	t.Logf("%s over %.2f s", l, wall)
}

// TestHostTimes: the parts of /proc/stat's first line fit in each other,
// and the steal share over a short spin is a fraction.
func TestHostTimes(t *testing.T) {
	h0, err := ReadHostTimes()
	if err != nil {
		t.Fatal(err)
	}
	for end := time.Now().Add(50 * time.Millisecond); time.Now().Before(end); {
	}
	h, err := ReadHostTimes()
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range []HostTimes{h0, h} {
		if x.Total <= 0 || x.Idle > x.Total || x.Steal > x.Busy() {
			t.Fatalf("inconsistent %+v", x)
		}
	}
	if st := h.StealShare(h0); st < 0 || st > 1 {
		t.Fatalf("steal share %v", st)
	}
	if st := h.StealShare(h); st != 0 {
		t.Fatalf("no time passed: steal share %v", st)
	}
}

// TestPressure: where the kernel has pressure stall information, the
// totals read and never go back.
func TestPressure(t *testing.T) {
	for _, r := range []string{"cpu", "io"} {
		a, err := Pressure(r)
		if errors.Is(err, fs.ErrNotExist) {
			t.Skipf("no /proc/pressure/%s on this kernel", r)
		}
		if err != nil {
			t.Fatal(err)
		}
		if b, err := Pressure(r); err != nil || b < a {
			t.Fatalf("%s: %v then %v (%v)", r, a, b, err)
		}
	}
}

func TestHostCPU(t *testing.T) {
	busy, total, err := HostCPU()
	if err != nil {
		t.Fatal(err)
	}
	if total <= 0 || busy < 0 || busy > total {
		t.Fatalf("busy %v of total %v", busy, total)
	}
}

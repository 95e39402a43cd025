package benchkit

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// HostCPU reads the first line of /proc/stat: the CPU time all CPUs spent
// busy (everything but idle and iowait) and in all, since boot.
func HostCPU() (busy, total time.Duration, err error) {
	h, err := ReadHostTimes()
	return h.Busy(), h.Total, err
}

// HostTimes is the CPU time all CPUs spent, since boot, from the first line
// of /proc/stat.
type HostTimes struct {
	Total time.Duration
	Idle  time.Duration // idle and iowait
	Steal time.Duration // taken by the hypervisor while this guest wanted to run
}

// Busy is everything but idle and iowait; steal counts as busy.
func (h HostTimes) Busy() time.Duration { return h.Total - h.Idle }

// StealShare returns the share of the time between h0 and h that the
// hypervisor took, 0..1; zero when no time passed.
func (h HostTimes) StealShare(h0 HostTimes) float64 {
	total := h.Total - h0.Total
	if total <= 0 {
		return 0
	}
	return float64(h.Steal-h0.Steal) / float64(total)
}

// ReadHostTimes reads HostTimes.
func ReadHostTimes() (HostTimes, error) {
	var h HostTimes
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return h, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 6 || f[0] != "cpu" {
		return h, fmt.Errorf("/proc/stat: unexpected first line %q", line)
	}
	// user nice system idle iowait irq softirq steal (guest time is
	// already inside user and nice, so it is left out).
	for i, s := range f[1:min(len(f), 9)] {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return HostTimes{}, fmt.Errorf("/proc/stat: field %d: %w", i+1, err)
		}
		d := time.Duration(v) * clockTick
		switch i {
		case 3, 4:
			h.Idle += d
		case 7:
			h.Steal = d
		}
		h.Total += d
	}
	return h, nil
}

// Pressure reads the "some" line of /proc/pressure/<resource> (cpu, io or
// memory; Linux's pressure stall information): the total time, since boot,
// during which at least one task was stalled waiting for the resource.
func Pressure(resource string) (time.Duration, error) {
	b, err := os.ReadFile("/proc/pressure/" + resource)
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	for _, f := range strings.Fields(line) {
		if v, ok := strings.CutPrefix(f, "total="); ok {
			us, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				return 0, fmt.Errorf("/proc/pressure/%s: %w", resource, err)
			}
			return time.Duration(us) * time.Microsecond, nil
		}
	}
	return 0, fmt.Errorf("/proc/pressure/%s: no total in %q", resource, line)
}

// Load is what the machine did during a window: the busy share of all its
// CPUs, and the cores each named process used.
type Load struct {
	CPUs  int
	Busy  float64 // 0..1 of all CPUs
	Procs []ProcLoad
}

// ProcLoad is one process's share of a Load.
type ProcLoad struct {
	Name  string
	Cores float64
}

// Named is a process to follow in a Load.
type Named struct {
	Name string
	Pid  int
}

// MeasureLoad starts a window now; the function it returns ends it and
// returns the load. A figure that could not be read is left out (or 0 for
// the host's busy share), so a bench never fails for want of /proc.
func MeasureLoad(procs ...Named) func() Load {
	start := time.Now()
	busy0, total0, herr := HostCPU()
	cpu0 := make([]time.Duration, len(procs))
	ok := make([]bool, len(procs))
	for i, p := range procs {
		d, err := ProcessCPU(p.Pid)
		cpu0[i], ok[i] = d, err == nil
	}
	return func() Load {
		l := Load{CPUs: runtime.NumCPU()}
		wall := time.Since(start).Seconds()
		if busy1, total1, err := HostCPU(); err == nil && herr == nil && total1 > total0 {
			l.Busy = float64(busy1-busy0) / float64(total1-total0)
		}
		for i, p := range procs {
			d, err := ProcessCPU(p.Pid)
			if err != nil || !ok[i] || wall <= 0 {
				continue
			}
			l.Procs = append(l.Procs, ProcLoad{Name: p.Name, Cores: (d - cpu0[i]).Seconds() / wall})
		}
		return l
	}
}

// String reads "2 CPUs 86 % busy; cores used: source broker 0.36, …".
func (l Load) String() string {
	var parts []string
	for _, p := range l.Procs {
		parts = append(parts, fmt.Sprintf("%s %.2f", p.Name, p.Cores))
	}
	return fmt.Sprintf("%d CPUs %.0f %% busy; cores used: %s", l.CPUs, l.Busy*100, strings.Join(parts, ", "))
}

package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/kdr-io/kdr/bench/internal/benchkit"
)

// clockTick is the unit of /proc CPU times (USER_HZ, 100 on every Linux
// this runs on).
const clockTick = 10 * time.Millisecond

// cpuSample is a snapshot of CPU time spent so far: by each broker process,
// by this process, and by the whole machine.
type cpuSample struct {
	at      time.Time
	brokers map[int32]time.Duration // by node id; absent if unreadable
	pids    map[int32]int           // the process each figure belongs to
	self    time.Duration
	machine machineCPU
}

// machineCPU is the aggregate line of /proc/stat, in clock ticks.
type machineCPU struct {
	busy, iowait, idle uint64
}

// cpuUsage is CPU use between two samples, in cores (CPU seconds per
// second).
type cpuUsage struct {
	brokers map[int32]float64
	self    float64
	others  float64 // busy machine time not spent by the brokers or the bench
	iowait  float64
	idle    float64
}

func sampleCPU(c *cluster) cpuSample {
	s := cpuSample{at: time.Now(), brokers: map[int32]time.Duration{}, pids: map[int32]int{}}
	for _, n := range c.nodes {
		if !n.running() {
			continue
		}
		if d, err := benchkit.ProcessCPU(n.pid()); err == nil {
			s.brokers[n.id], s.pids[n.id] = d, n.pid()
		}
	}
	s.self = benchkit.SelfCPU()
	s.machine, _ = readMachineCPU()
	return s
}

// usageSince is the CPU use from a to s. A broker restarted in between is
// left out.
func (s cpuSample) usageSince(a cpuSample) cpuUsage {
	secs := s.at.Sub(a.at).Seconds()
	u := cpuUsage{brokers: map[int32]float64{}}
	if secs <= 0 {
		return u
	}
	var brokers float64
	for id, d := range s.brokers {
		if prev, ok := a.brokers[id]; ok && a.pids[id] == s.pids[id] {
			u.brokers[id] = (d - prev).Seconds() / secs
			brokers += u.brokers[id]
		}
	}
	u.self = (s.self - a.self).Seconds() / secs
	tick := clockTick.Seconds() / secs
	u.others = max(float64(s.machine.busy-a.machine.busy)*tick-brokers-u.self, 0)
	u.iowait = float64(s.machine.iowait-a.machine.iowait) * tick
	u.idle = float64(s.machine.idle-a.machine.idle) * tick
	return u
}

// String is the usage in one line, for the report.
func (u cpuUsage) String() string {
	var parts []string
	for id := int32(1); id <= clusterSize; id++ {
		if v, ok := u.brokers[id]; ok {
			parts = append(parts, fmt.Sprintf("broker %d %.2f", id, v))
		}
	}
	parts = append(parts, fmt.Sprintf("bench client %.2f", u.self), fmt.Sprintf("other processes %.2f", u.others),
		fmt.Sprintf("idle %.2f", u.idle), fmt.Sprintf("iowait %.2f", u.iowait))
	return strings.Join(parts, ", ")
}

// readMachineCPU reads the "cpu" line of /proc/stat: user nice system idle
// iowait irq softirq steal ...
func readMachineCPU() (machineCPU, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return machineCPU{}, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return machineCPU{}, fmt.Errorf("/proc/stat: unexpected first line %q", line)
	}
	var v [8]uint64
	for i := range v {
		if v[i], err = strconv.ParseUint(f[i+1], 10, 64); err != nil {
			return machineCPU{}, fmt.Errorf("/proc/stat: %w", err)
		}
	}
	return machineCPU{
		busy:   v[0] + v[1] + v[2] + v[5] + v[6] + v[7],
		iowait: v[4],
		idle:   v[3],
	}, nil
}

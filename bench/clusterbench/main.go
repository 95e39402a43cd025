// Command clusterbench measures a replicated kdr cluster: three `kdr broker`
// processes on loopback, every one a voter of the metadata quorum, driven by
// a franz-go workload from this process (1 KiB incompressible values, no
// compression, 8 partitions). In one run it measures:
//
//   - produce throughput of a replication-factor-1 topic with acks=1 and of a
//     replication-factor-3 topic (min.insync.replicas=2) with acks=all, each
//     for --duration, and their ratio, with CPU profiles of every broker
//     during both runs;
//   - produce latency (p50, p99, p99.9) with acks=all at half (or
//     --latency-fraction) of the measured acks=all rate, with CPU profiles;
//   - client-observed leader failover: a producer writes acks=all to one
//     replication-factor-3 partition at a steady rate, the partition
//     leader's process is SIGKILLed, and the time from the kill to the first
//     batch acknowledged by another broker is taken, --failovers times, the
//     killed broker being restarted and the ISR refilled between runs;
//   - the time to create a topic of --create-partitions partitions
//     (replication factor 3) until fresh Metadata shows a leader for each,
//     until every leader answers ListOffsets for them, and until every ISR
//     is full for good;
//   - each broker's resident memory (VmRSS, VmHWM) after the runs, and how
//     long each took to stop.
//
// Each throughput and latency phase also records the CPU time of every
// broker, of this process and of the rest of the machine, since a shared
// two-core machine is the usual place it runs. Broker logs (info level),
// the failover client's log, profiles and goroutine dumps land in
// --out-dir.
//
// It prints a markdown report on stdout and progress on stderr. It reports
// figures only: no run fails because a figure is low. `make bench` runs it
// through scripts/bench.sh.
//
//	go run ./bench/clusterbench --kdr-bin bin/kdr --duration 15s --out docs/bench-run.md
package main

import (
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/kdr-io/kdr/bench/internal/benchkit"
)

// options are the parsed command-line flags.
type options struct {
	benchkit.Common

	sessionTimeoutMS    int // --broker-session-timeout-ms of every broker
	heartbeatIntervalMS int // --broker-heartbeat-interval-ms
	replicaLagMaxMS     int // --replica-lag-time-max-ms
	brokerLogLevel      string

	latencyFraction float64 // of the measured acks=all rate, for the latency phase

	failovers         int
	failoverRate      float64 // records/s of the failover producer
	createPartitions  int
	failoverSteady    time.Duration // steady production before each kill
	failoverWaitLimit time.Duration // longest wait for an acknowledgement after a kill
}

// parseFlags defines clusterbench's flags on fs and parses args with it.
func parseFlags(fs *flag.FlagSet, args []string) (options, error) {
	var o options
	o.Register(fs, benchkit.CommonUsage{
		KdrBin:      "kdr binary to run the three brokers with (copied first, so a rebuild mid-run changes nothing)",
		Duration:    "length of each throughput phase and of the latency phase",
		Partitions:  "partitions of the throughput topics",
		MaxBuffered: "records the throughput client buffers before Produce blocks",
		ProfileSecs: "length of the CPU profiles taken during the throughput and latency runs (capped to --duration minus 1 s); 0 skips them",
	})
	fs.IntVar(&o.sessionTimeoutMS, "broker-session-timeout-ms", 2000, "broker.session.timeout.ms of every broker: how soon a killed broker is fenced")
	fs.IntVar(&o.heartbeatIntervalMS, "broker-heartbeat-interval-ms", 300, "broker.heartbeat.interval.ms of every broker")
	fs.IntVar(&o.replicaLagMaxMS, "replica-lag-time-max-ms", 10000, "replica.lag.time.max.ms of every broker")
	fs.StringVar(&o.brokerLogLevel, "broker-log-level", "info", "--log-level of every broker (logs land in --out-dir)")
	fs.Float64Var(&o.latencyFraction, "latency-fraction", 0.5, "rate of the latency run, as a fraction of the measured acks=all throughput")
	fs.IntVar(&o.failovers, "failovers", 5, "leader SIGKILLs to time")
	fs.Float64Var(&o.failoverRate, "failover-rate", 500, "records/s of the producer during the failover runs")
	fs.DurationVar(&o.failoverSteady, "failover-steady", 2*time.Second, "steady production before each kill")
	fs.DurationVar(&o.failoverWaitLimit, "failover-wait", 60*time.Second, "longest wait for an acknowledgement after a kill")
	fs.IntVar(&o.createPartitions, "create-partitions", 1000, "partitions of the topic whose creation is timed; 0 skips it")
	if err := benchkit.Parse(fs, args); err != nil {
		return o, err
	}
	switch {
	case o.sessionTimeoutMS <= 0 || o.heartbeatIntervalMS <= 0 || o.heartbeatIntervalMS >= o.sessionTimeoutMS:
		return o, fmt.Errorf("--broker-heartbeat-interval-ms %d must be positive and below --broker-session-timeout-ms %d",
			o.heartbeatIntervalMS, o.sessionTimeoutMS)
	case o.replicaLagMaxMS <= 0:
		return o, fmt.Errorf("--replica-lag-time-max-ms %d: must be positive", o.replicaLagMaxMS)
	case o.Duration < 2*time.Second:
		return o, fmt.Errorf("--duration %v: must be at least 2s", o.Duration)
	}
	if err := o.Check(); err != nil {
		return o, err
	}
	switch {
	case o.latencyFraction <= 0 || o.latencyFraction > 1:
		return o, fmt.Errorf("--latency-fraction %g: must be in (0, 1]", o.latencyFraction)
	case o.failovers < 0:
		return o, fmt.Errorf("--failovers %d: must not be negative", o.failovers)
	case o.failoverRate <= 0:
		return o, fmt.Errorf("--failover-rate %g: must be positive", o.failoverRate)
	case o.failoverWaitLimit <= 0:
		return o, fmt.Errorf("--failover-wait %v: must be positive", o.failoverWaitLimit)
	case o.createPartitions < 0:
		return o, fmt.Errorf("--create-partitions %d: must not be negative", o.createPartitions)
	}
	return o, nil
}

func main() {
	os.Exit(benchkit.Main("clusterbench", os.Args[1:], parseFlags, bench))
}

// logf prints progress on stderr, so stdout carries only the report.
func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, time.Now().Format("15:04:05.000 ")+format+"\n", args...)
}

package checker_test

import (
	"context"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kdr-io/kdr/internal/checker"
	"github.com/kdr-io/kdr/internal/faultproxy"
	"github.com/kdr-io/kdr/internal/kdrtest"
)

// testLogger writes the checker's progress to the test log.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(b[:len(b)-1]))
	return len(b), nil
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func startRun(t *testing.T, cfg checker.Config) *checker.Run {
	t.Helper()
	run, err := checker.Start(ctxFor(t, 30*time.Second), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { run.Close() })
	return run
}

// waitAcked waits until the producer has n more acknowledgements than from.
func waitAcked(t *testing.T, run *checker.Run, from, n int64) int64 {
	t.Helper()
	kdrtest.Eventually(t, 30*time.Second, func() (bool, string) {
		s := run.Producer().Stats()
		return s.Acked >= from+n, "waiting for acknowledgements"
	})
	return run.Producer().Stats().Acked
}

// runFor lets the workload run for d: the run's length, not a wait for a
// condition.
func runFor(d time.Duration) { <-time.After(d) }

func endOffsetsSum(t *testing.T, addr, topic string) int64 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctxFor(t, 10*time.Second), topic)
	if err != nil || ends.Error() != nil {
		t.Fatalf("listing end offsets: %v %v", err, ends.Error())
	}
	var sum int64
	ends.Each(func(o kadm.ListedOffset) { sum += o.Offset })
	return sum
}

func TestCheckerSingleBrokerRunIsClean(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a broker process")
	}
	proc := kdrtest.StartProcess(t, kdrtest.Binary(t))
	cfg := checker.DefaultConfig([]string{proc.Addr()}, "clean")
	cfg.Group = "clean-reader"
	cfg.Logger = testLogger(t)
	cfg.ProgressInterval = time.Second
	run := startRun(t, cfg)

	waitAcked(t, run, 0, 100)
	runFor(3 * time.Second)
	rep, err := run.Drain(ctxFor(t, 60*time.Second))
	if err != nil {
		t.Fatalf("drain: %v\n%v", err, rep)
	}
	t.Log(rep)
	s := run.Producer().Stats()
	if !rep.OK() || rep.Failed != 0 || rep.Acked != s.Produced || rep.Read != rep.Acked {
		t.Fatalf("want every produced record acknowledged and read once: produced %d\n%v", s.Produced, rep)
	}
	if sum := endOffsetsSum(t, proc.Addr(), "clean"); sum != rep.Acked {
		t.Fatalf("log end offsets add up to %d, acknowledged %d", sum, rep.Acked)
	}
	// The reader's group committed everything it read: a fresh member
	// starts at the log end and fetches nothing.
	if err := run.Close(); err != nil {
		t.Fatalf("closing the reader: %v", err)
	}
	res, err := checker.ResumeCheck(ctxFor(t, 30*time.Second), []string{proc.Addr()}, "clean-reader", "clean")
	if err != nil || !res.OK() {
		t.Fatalf("resume check: %v\n%v", err, res)
	}
	for _, p := range res.Partitions {
		if p.Committed != p.End {
			t.Fatalf("partition %d committed %d, end %d", p.Partition, p.Committed, p.End)
		}
	}
}

// TestCheckerKill9ThreeTimesLosesNothing kills the single broker with
// SIGKILL three times mid-run. With acks=all the broker has written every
// acknowledged batch to the page cache, which survives the process, so
// nothing acknowledged may be lost, and the idempotent producer's retries
// of batches appended just before a kill must not duplicate.
func TestCheckerKill9ThreeTimesLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a broker process")
	}
	proc := kdrtest.StartProcess(t, kdrtest.Binary(t))
	cfg := checker.DefaultConfig([]string{proc.Addr()}, "kill9")
	cfg.Group = "kill9-reader"
	cfg.Logger = testLogger(t)
	cfg.ProgressInterval = time.Second
	run := startRun(t, cfg)

	// Each kill keeps the broker down until the producer has waited
	// downFor with records pending, so each is a measurable outage.
	const downFor = 300 * time.Millisecond
	acked := waitAcked(t, run, 0, 2000)
	for i := 0; i < 3; i++ {
		proc.Kill()
		killedAt := run.Producer().Stats().Acked
		kdrtest.Eventually(t, 10*time.Second, func() (bool, string) {
			return run.Producer().Stats().CurrentUnavailable >= downFor, "producer has not noticed the kill"
		})
		t.Logf("kill %d after %d acknowledgements", i+1, killedAt)
		proc.Restart()
		acked = waitAcked(t, run, max(acked, killedAt), 2000)
	}
	rep, err := run.Drain(ctxFor(t, 2*time.Minute))
	if err != nil {
		t.Fatalf("drain: %v\n%v", err, rep)
	}
	t.Log(rep)
	if !rep.OK() {
		t.Fatalf("anomalies after kill -9:\n%v", rep)
	}
	if rep.Failed != 0 || rep.Read != rep.Acked {
		t.Fatalf("want every record acknowledged and read once:\n%v", rep)
	}
	if rep.MaxUnavailable < downFor || rep.Outages < 3 || rep.TotalUnavailable < 3*downFor {
		t.Fatalf("three kills caused no measured outage:\n%v", rep)
	}
	if err := run.Close(); err != nil {
		t.Fatalf("closing the reader: %v", err)
	}
	res, err := checker.ResumeCheck(ctxFor(t, 30*time.Second), []string{proc.Addr()}, "kill9-reader", "kill9")
	if err != nil || !res.OK() {
		t.Fatalf("resume check after kills: %v\n%v", err, res)
	}
}

// TestCheckerResumeCheckStartsAtCommittedOffsets commits offsets in the
// middle of each partition and checks a fresh member starts exactly there,
// and that the check leaves the commits where they were.
func TestCheckerResumeCheckStartsAtCommittedOffsets(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a broker process")
	}
	proc := kdrtest.StartProcess(t, kdrtest.Binary(t))
	cfg := checker.DefaultConfig([]string{proc.Addr()}, "resume")
	cfg.Partitions = 4
	run := startRun(t, cfg)
	waitAcked(t, run, 0, 400)
	rep, err := run.Drain(ctxFor(t, 60*time.Second))
	if err != nil || !rep.OK() {
		t.Fatalf("drain: %v\n%v", err, rep)
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(proc.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ends, err := adm.ListEndOffsets(ctxFor(t, 10*time.Second), "resume")
	if err != nil {
		t.Fatal(err)
	}
	commits := kadm.Offsets{}
	want := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Partition == 3 {
			return // no commit: the member must start at the log start
		}
		at := o.Offset / (int64(o.Partition) + 2)
		commits.Add(kadm.Offset{Topic: "resume", Partition: o.Partition, At: at, LeaderEpoch: -1})
		want[o.Partition] = at
	})
	want[3] = 0
	if resp, err := adm.CommitOffsets(ctxFor(t, 10*time.Second), "resume-group", commits); err != nil || resp.Error() != nil {
		t.Fatalf("commit: %v %v", err, resp.Error())
	}
	res, err := checker.ResumeCheck(ctxFor(t, 30*time.Second), []string{proc.Addr()}, "resume-group", "resume")
	if err != nil || !res.OK() {
		t.Fatalf("resume check: %v\n%v", err, res)
	}
	t.Log(res)
	if len(res.Partitions) != 4 {
		t.Fatalf("checked %d partitions, want 4", len(res.Partitions))
	}
	for _, p := range res.Partitions {
		first := want[p.Partition]
		if first >= p.End {
			first = -1 // nothing after the commit to fetch
		}
		if p.First != first || (p.Partition == 3) != (p.Committed == -1) {
			t.Fatalf("partition %d: %+v, want first %d", p.Partition, p, first)
		}
	}
}

// TestCheckerRidesThroughProxyCutAndRefuse puts a faultproxy between every
// client and the broker (the broker advertises the proxy), black-holes it
// for a second and then refuses connections for half a second: a held
// request must complete intact after the heal, a reset one must be retried
// without duplication.
func TestCheckerRidesThroughProxyCutAndRefuse(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a broker process")
	}
	// The harness reports the advertised address as Addr, so the broker's
	// own port is chosen here.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	brokerAddr := ln.Addr().String()
	ln.Close()
	proxy, err := faultproxy.New(brokerAddr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proxy.Close() })
	kdrtest.StartProcess(t, kdrtest.Binary(t), "--listen", brokerAddr, "--advertised-listen", proxy.Addr())

	cfg := checker.DefaultConfig([]string{proxy.Addr()}, "proxied")
	cfg.Group = "proxied-reader"
	cfg.Logger = testLogger(t)
	cfg.ProgressInterval = time.Second
	run := startRun(t, cfg)
	unavailableFor := func(d time.Duration) {
		kdrtest.Eventually(t, 10*time.Second, func() (bool, string) {
			return run.Producer().Stats().CurrentUnavailable >= d, "producer still gets acknowledgements"
		})
	}

	acked := waitAcked(t, run, 0, 1000)
	proxy.Cut()
	unavailableFor(time.Second)
	proxy.Heal()
	acked = waitAcked(t, run, acked, 1000)
	proxy.Refuse()
	unavailableFor(500 * time.Millisecond)
	proxy.Heal()
	waitAcked(t, run, acked, 1000)

	rep, err := run.Drain(ctxFor(t, time.Minute))
	if err != nil {
		t.Fatalf("drain: %v\n%v", err, rep)
	}
	t.Log(rep)
	if !rep.OK() || rep.Failed != 0 || rep.Read != rep.Acked {
		t.Fatalf("want every record acknowledged and read once:\n%v", rep)
	}
	if rep.MaxUnavailable < time.Second || rep.Outages < 2 {
		t.Fatalf("the cut and the refusal were not measured:\n%v", rep)
	}
}

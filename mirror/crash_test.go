package mirror

import (
	"bufio"
	"fmt"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kdr-io/kdr/internal/kdrtest"
	"github.com/kdr-io/kdr/internal/promtext"
)

// mirrorProc is `kdr mirror run` as a separate process.
type mirrorProc struct {
	cmd     *exec.Cmd
	metrics string
	done    chan struct{}
}

var runningLine = regexp.MustCompile(`^kdr mirror (\S+) running \(metrics on (http://\S+/metrics)\)`)

// startMirrorProc starts `bin mirror run args...` and waits for its
// "running" line. Its stderr goes to logDir.
func startMirrorProc(t *testing.T, bin, logDir string, args ...string) *mirrorProc {
	t.Helper()
	logs, err := os.CreateTemp(logDir, "mirror-*.log")
	if err != nil {
		t.Fatal(err)
	}
	defer logs.Close()
	cmd := exec.Command(bin, append([]string{"mirror", "run"}, args...)...)
	cmd.Stderr = logs
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", bin, err)
	}
	p := &mirrorProc{cmd: cmd, done: make(chan struct{})}
	line := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		if sc.Scan() {
			line <- sc.Text()
		}
		close(line)
		for sc.Scan() {
		}
		cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(p.kill)
	select {
	case l := <-line:
		m := runningLine.FindStringSubmatch(l)
		if m == nil {
			p.kill()
			t.Fatalf("mirror printed %q, want its running line; logs in %s", l, logs.Name())
		}
		p.metrics = m[2]
	case <-time.After(30 * time.Second):
		p.kill()
		t.Fatalf("mirror did not start within 30s; logs in %s", logs.Name())
	}
	return p
}

// kill sends SIGKILL: nothing is flushed or committed.
func (p *mirrorProc) kill() {
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

func TestMirrorCrashResume(t *testing.T) {
	const parts, batch, kills = 3, 100, 3
	bin, east, west := startCrashClusters(t, parts)
	logDir := t.TempDir()
	args := crashArgs(east, west, batch)

	// A producer writes while the worker is killed under it.
	var mu sync.Mutex
	produced := 0
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		pace := time.NewTicker(5 * time.Millisecond) // at most 2000 records/s
		defer pace.Stop()
		for i := 0; ; i += 10 {
			select {
			case <-stop:
				return
			case <-pace.C:
			}
			if err := east.tryProduce(seqRecords("orders", parts, i, 10)...); err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			produced = i + 10
			mu.Unlock()
		}
	}()
	progress := func(from int64, by int64) {
		t.Helper()
		kdrtest.Eventually(t, 60*time.Second, func() (bool, string) {
			got := west.count("east.orders")
			return got >= from+by, fmt.Sprintf("east.orders grew from %d to %d, want +%d", from, got, by)
		})
	}

	// A worker is killed only once it has caught up and committed since:
	// the bound below is what a worker copies at the producer's pace. A
	// restarted worker first copies the backlog of its predecessor's
	// downtime at full speed, and killed then it would leave more than an
	// interval's worth to copy again.
	settled := func(p *mirrorProc) {
		t.Helper()
		var commits float64
		kdrtest.Eventually(t, 30*time.Second, func() (bool, string) {
			lag := flowSum(p.metrics, "kdr_mirror_lag_records")
			commits = flowSum(p.metrics, "kdr_mirror_commits_total")
			return lag >= 0 && lag <= 2*batch && commits >= 0, fmt.Sprintf("worker lag %v records", lag)
		})
		kdrtest.Eventually(t, 30*time.Second, func() (bool, string) {
			n := flowSum(p.metrics, "kdr_mirror_commits_total")
			return n > commits, fmt.Sprintf("no commit since catching up (%v commits)", n)
		})
	}
	p := startMirrorProc(t, bin, logDir, args...)
	for k := 0; k < kills; k++ {
		progress(west.count("east.orders"), 3*batch)
		settled(p)
		p.kill()
		t.Logf("kill %d: target holds %d records", k+1, west.count("east.orders"))
		p = startMirrorProc(t, bin, logDir, args...)
	}
	progress(west.count("east.orders"), 3*batch)
	close(stop)
	<-stopped
	mu.Lock()
	n := produced
	mu.Unlock()

	// Everything arrives; duplicates are the copies unacknowledged or
	// uncommitted when a worker died: at most two cycles and what one
	// commit interval copied per kill (the worker runs with the default
	// interval; TestMirrorWorkerKilledPartitionsMove checks 0). Twice the
	// interval's records leave room for the commit's own round trips.
	perKill := 2*batch + int(2*DefaultFlow().CommitInterval.Seconds()*2000)
	got := waitEveryRecord(t, west, "east.orders", parts, n)
	total := len(flatten(got))
	dups := total - n
	t.Logf("%d produced, %d on the target: %d duplicates after %d kills (bound %d)", n, total, dups, kills, kills*perKill)
	if dups > kills*perKill {
		t.Errorf("%d duplicates, more than two cycles and two commit intervals (%d records) per kill", dups, perKill)
	}
	// Where the duplicates are: after a kill the successor starts again at
	// the last commit, a little behind where the dead worker had got to.
	windows, inWindows := recopyWindows(t, east.readAll("orders"), got, perKill)
	t.Logf("duplicates: %d windows of %d records in all", windows, inWindows)
	if windows > kills*parts || inWindows != dups {
		t.Errorf("%d re-copied windows holding %d records for %d duplicates, want at most one per kill and partition (%d) holding them all",
			windows, inWindows, dups, kills*parts)
	}
	// Order: per partition, first occurrences come in source order.
	checkFirstCopiesInOrder(t, got)

	// `kdr mirror status` reads the running worker's metrics.
	out, err := exec.Command(bin, "mirror", "status", "--metrics", p.metrics).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "east->west") || !strings.Contains(string(out), "orders") {
		t.Errorf("kdr mirror status: %v\n%s", err, out)
	}
	t.Logf("kdr mirror status:\n%s", out)
	if t.Failed() {
		logs, _ := filepath.Glob(filepath.Join(logDir, "*.log"))
		for _, l := range logs {
			b, _ := os.ReadFile(l)
			t.Logf("%s:\n%s", l, b)
		}
	}
}

// startCrashClusters builds kdr for the mirror processes the crash tests
// kill, and starts east, with topic orders of parts partitions, and west.
func startCrashClusters(t *testing.T, parts int32) (bin string, east, west *cluster) {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the kdr binary")
	}
	bin = kdrtest.Binary(t)
	east, west = startCluster(t), startCluster(t)
	east.createTopic("orders", parts)
	return bin, east, west
}

// crashArgs are the `kdr mirror run` arguments of the crash tests: east to
// west, topic orders, a static member, batchRecords records a cycle.
func crashArgs(east, west *cluster, batchRecords int) []string {
	return []string{"--source-alias", "east", "--source-brokers", east.addr, "--target-alias", "west", "--target-brokers", west.addr,
		"--topics", "orders", "--metrics-listen", "127.0.0.1:0", "--instance-id", "w1", "--session-timeout", "6s",
		"--batch-records", strconv.Itoa(batchRecords), "--refresh-interval", "500ms", "--heartbeat-interval", "200ms"}
}

// waitEveryRecord waits until topic on c holds each of the n records of
// seqRecords(_, parts, 0, n) at least once and returns what it holds.
func waitEveryRecord(t *testing.T, c *cluster, topic string, parts, n int) map[int32][]*kgo.Record {
	t.Helper()
	want := map[string]bool{}
	for _, r := range seqRecords("orders", parts, 0, n) {
		want[string(r.Value)] = true
	}
	var got map[int32][]*kgo.Record
	kdrtest.Eventually(t, 60*time.Second, func() (bool, string) {
		if c.count(topic) < int64(n) {
			return false, fmt.Sprintf("%s holds %d records, %d produced", topic, c.count(topic), n)
		}
		got = c.readAll(topic)
		seen := map[string]bool{}
		for _, r := range flatten(got) {
			if want[string(r.Value)] {
				seen[string(r.Value)] = true
			}
		}
		return len(seen) == n, fmt.Sprintf("%s holds %d of the %d records produced", topic, len(seen), n)
	})
	return got
}

// recopyWindows walks each partition's copies on the target (got) against
// the source (src): the target must hold the source in order, except that
// the copy may go back to an earlier source offset (a worker resuming from
// the last commit) and re-copy from there; it must never skip one. It
// returns how many times the copy went back and how many records those
// windows re-copied, each window at most max records.
func recopyWindows(t *testing.T, src, got map[int32][]*kgo.Record, max int) (windows, records int) {
	t.Helper()
	srcOffset := map[string]int64{}
	for _, rs := range src {
		for _, r := range rs {
			srcOffset[string(r.Value)] = r.Offset
		}
	}
	for p, rs := range got {
		for i := 1; i < len(rs); i++ {
			prev, cur := srcOffset[string(rs[i-1].Value)], srcOffset[string(rs[i].Value)]
			switch {
			case cur > prev+1:
				t.Errorf("partition %d: target offset %d holds source offset %d right after %d: records skipped", p, rs[i].Offset, cur, prev)
			case cur <= prev:
				windows++
				records += int(prev - cur + 1)
				if prev-cur+1 > int64(max) {
					t.Errorf("partition %d: the copy went back from source offset %d to %d, more than %d records", p, prev, cur, max)
				}
			}
		}
	}
	return windows, records
}

// TestMirrorCrashDuringCatchUp kills the worker twice while it copies a
// backlog at full speed, where TestMirrorCrashResume kills only a worker
// that has caught up. What one commit interval copies is then larger and
// not bounded here, but the shape is the same: nothing lost, and every
// duplicate in one contiguous window per kill and partition, starting where
// the successor resumed.
func TestMirrorCrashDuringCatchUp(t *testing.T) {
	const parts, n, kills = 3, 30000, 2
	bin, east, west := startCrashClusters(t, parts)
	for i := 0; i < n; i += 3000 {
		east.produce(seqRecords("orders", parts, i, 3000)...)
	}
	logDir := t.TempDir()
	args := crashArgs(east, west, 500)
	p := startMirrorProc(t, bin, logDir, args...)
	for k := 0; k < kills; k++ {
		// Killed once it has copied something more, long before the end.
		from := west.count("east.orders")
		kdrtest.Eventually(t, 60*time.Second, func() (bool, string) {
			got := west.count("east.orders")
			return got > from, fmt.Sprintf("east.orders still at %d", got)
		})
		p.kill()
		at := west.count("east.orders")
		t.Logf("kill %d: target holds %d records", k+1, at)
		if at >= n {
			t.Logf("the backlog was copied before kill %d: this kill was not during the catch-up", k+1)
		}
		p = startMirrorProc(t, bin, logDir, args...)
	}
	got := waitEveryRecord(t, west, "east.orders", parts, n)
	dups := len(flatten(got)) - n
	windows, inWindows := recopyWindows(t, east.readAll("orders"), got, n)
	t.Logf("%d duplicates after %d kills during the catch-up, in %d windows", dups, kills, windows)
	if windows > kills*parts || inWindows != dups {
		t.Errorf("%d re-copied windows holding %d records for %d duplicates, want at most one per kill and partition (%d) holding them all",
			windows, inWindows, dups, kills*parts)
	}
	checkFirstCopiesInOrder(t, got)
}

// assignedOf reads kdr_mirror_assigned_partitions from a worker's metrics.
// checkWorkerGC checks that a `kdr mirror run` process collects only near
// its default memory limit: a GOGC percentage made its heap swing with each
// fetched backlog, and the page faults of each swing made latency spikes.
func checkWorkerGC(t *testing.T, metricsURL string) {
	t.Helper()
	if os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" {
		t.Log("GOGC or GOMEMLIMIT set: they win over the worker's own settings, which are not checked")
		return
	}
	resp, err := http.Get(metricsURL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	samples, err := promtext.Parse(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, s := range samples {
		switch s.Name {
		case "go_gc_gogc_percent":
			// runtime/metrics reports "off" as the largest uint64.
			if s.Value < math.MaxUint64 {
				t.Errorf("worker's GOGC is %v, want off", s.Value)
			}
			seen++
		case "go_gc_gomemlimit_bytes":
			if want := float64(DefaultMemoryLimitMiB << 20); s.Value != want {
				t.Errorf("worker's memory limit is %v bytes, want %v", s.Value, want)
			}
			seen++
		}
	}
	if seen != 2 {
		t.Errorf("worker's metrics have %d of go_gc_gogc_percent and go_gc_gomemlimit_bytes", seen)
	}
}

func assignedOf(t *testing.T, metricsURL string) int {
	t.Helper()
	return int(flowSum(metricsURL, "kdr_mirror_assigned_partitions"))
}

// flowSum adds up a worker's series of name for the east->west flow; -1
// when the worker does not answer or has no such series yet.
func flowSum(metricsURL, name string) float64 {
	resp, err := http.Get(metricsURL)
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	samples, err := promtext.Parse(resp.Body)
	if err != nil {
		return -1
	}
	sum, seen := 0.0, false
	for _, s := range samples {
		if s.Name == name && s.Labels["flow"] == "east->west" {
			sum, seen = sum+s.Value, true
		}
	}
	if !seen {
		return -1
	}
	return sum
}

// TestMirrorWorkerKilledPartitionsMove runs two worker processes of one
// flow and SIGKILLs one mid-stream: the survivor takes its partitions over
// once the group notices (the session timeout) and nothing is lost.
func TestMirrorWorkerKilledPartitionsMove(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the kdr binary")
	}
	bin := kdrtest.Binary(t)
	east, west := startCluster(t), startCluster(t)
	const parts, batch = 6, 100
	east.createTopic("orders", parts)
	logDir := t.TempDir()
	args := []string{"--source-alias", "east", "--source-brokers", east.addr, "--target-alias", "west", "--target-brokers", west.addr,
		"--topics", "orders", "--metrics-listen", "127.0.0.1:0", "--session-timeout", "6s",
		"--batch-records", strconv.Itoa(batch), "--refresh-interval", "500ms",
		"--commit-interval", "0"} // a commit after every cycle: at most two cycles re-copied
	a := startMirrorProc(t, bin, logDir, args...)
	b := startMirrorProc(t, bin, logDir, args...)
	kdrtest.Eventually(t, 30*time.Second, func() (bool, string) {
		na, nb := assignedOf(t, a.metrics), assignedOf(t, b.metrics)
		return na > 0 && nb > 0 && na+nb == parts, fmt.Sprintf("worker a owns %d partitions, b %d", na, nb)
	})
	checkWorkerGC(t, a.metrics)
	east.produce(seqRecords("orders", parts, 0, 1000)...)
	waitCount(t, west, "east.orders", 1000, 30*time.Second)

	// Kill a while records are produced and copied.
	const n = 3000
	done := make(chan struct{})
	go func() {
		defer close(done)
		pace := time.NewTicker(5 * time.Millisecond)
		defer pace.Stop()
		for i := 1000; i < n; i += 20 {
			<-pace.C
			if err := east.tryProduce(seqRecords("orders", parts, i, 20)...); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	kdrtest.Eventually(t, 30*time.Second, func() (bool, string) {
		got := west.count("east.orders")
		return got >= 1500, fmt.Sprintf("east.orders has %d records", got)
	})
	a.kill()
	kdrtest.Eventually(t, 30*time.Second, func() (bool, string) {
		nb := assignedOf(t, b.metrics)
		return nb == parts, fmt.Sprintf("survivor owns %d partitions", nb)
	})
	<-done
	seen := map[string]int{}
	kdrtest.Eventually(t, 30*time.Second, func() (bool, string) {
		seen = map[string]int{}
		for _, id := range ids(west.readAll("east.orders")) {
			seen[id]++
		}
		return len(seen) == n, fmt.Sprintf("%d of %d records on the target", len(seen), n)
	})
	dups := 0
	for _, c := range seen {
		dups += c - 1
	}
	// What a copied but had not committed is copied again: at most its
	// cycle in flight and the one before (whose commit may not have
	// landed).
	t.Logf("%d produced, %d duplicates", n, dups)
	if dups > 2*batch {
		t.Errorf("%d duplicates, more than two cycles (%d records)", dups, 2*batch)
	}
}

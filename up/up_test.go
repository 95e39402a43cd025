package up_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kdr-io/kdr/internal/kdrtest"
	"github.com/kdr-io/kdr/status"
	"github.com/kdr-io/kdr/up"
)

func readEndpoints(t *testing.T, dir string) *up.Endpoints {
	t.Helper()
	e, err := up.ReadEndpoints(up.Layout{Dir: dir}.Endpoints())
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// waitHealthy waits until kdr up says it is healthy in endpoints.json.
// startUp runs `kdr up` with args.
func startUp(t *testing.T, bin string, args ...string) *kdrtest.Command {
	t.Helper()
	return kdrtest.StartCommand(t, bin, append([]string{"up"}, args...)...)
}

func waitHealthy(t *testing.T, p *kdrtest.Command, dir string) *up.Endpoints {
	t.Helper()
	var e *up.Endpoints
	kdrtest.Eventually(t, 45*time.Second, func() (bool, string) {
		select {
		case <-p.Done():
			t.Fatalf("kdr up exited early:\n%s", p.Output())
		default:
		}
		var err error
		e, err = up.ReadEndpoints(up.Layout{Dir: dir}.Endpoints())
		if err != nil {
			return false, err.Error()
		}
		return e.Healthy && len(e.PIDs()) > 0, "endpoints.json not healthy yet"
	})
	return e
}

func admin(t *testing.T, bootstrap ...string) *kadm.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(bootstrap...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

// waitBrokers waits until Metadata, fresh from the cluster, lists n
// brokers and a controller.
func waitBrokers(t *testing.T, bootstrap []string, n int) {
	t.Helper()
	kdrtest.Eventually(t, 30*time.Second, func() (bool, string) {
		cl, err := kgo.NewClient(kgo.SeedBrokers(bootstrap...))
		if err != nil {
			return false, err.Error()
		}
		defer cl.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		m, err := status.FetchMetadata(ctx, cl)
		if err != nil {
			return false, err.Error()
		}
		return len(m.Brokers) == n && m.ControllerID >= 0, fmt.Sprintf("%d brokers, controller %d", len(m.Brokers), m.ControllerID)
	})
}

// produceFirst creates topic (two partitions) on the cluster and writes a
// record "first" to it.
func produceFirst(t *testing.T, bootstrap []string, topic string) {
	t.Helper()
	ctx := context.Background()
	if _, err := admin(t, bootstrap...).CreateTopic(ctx, 2, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	prod, err := kgo.NewClient(kgo.SeedBrokers(bootstrap...))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	if err := prod.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("first")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// waitRecord waits until topic on the cluster holds a record with value;
// opts are more client options (TLS, SASL).
func waitRecord(t *testing.T, bootstrap []string, topic, value string, opts ...kgo.Opt) {
	t.Helper()
	cl, err := kgo.NewClient(append(opts, kgo.SeedBrokers(bootstrap...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	kdrtest.Eventually(t, 30*time.Second, func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		found := false
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { found = found || string(r.Value) == value })
		return found, fmt.Sprintf("no record %q on %s yet", value, topic)
	})
}

// runStatus runs kdr status and decodes its JSON.
func runStatus(t *testing.T, bin string, args ...string) (*status.Report, int) {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"status", "--output", "json"}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	var r status.Report
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		t.Fatalf("kdr status output: %v\n%s\n%s", err, stdout.String(), stderr.String())
	}
	return &r, code
}

func waitGone(t *testing.T, pids []int) {
	t.Helper()
	kdrtest.Eventually(t, 10*time.Second, func() (bool, string) {
		for _, pid := range pids {
			if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
				return false, fmt.Sprintf("process %d still there (%v)", pid, err)
			}
		}
		return true, ""
	})
}

const topologyYAML = `apiVersion: kdr.io/v1
kind: Topology
metadata:
  name: uptest
clusters:
  - name: a
    region: r1
    local: {brokers: 1, basePort: %d}
  - name: b
    region: r2
    local: {brokers: 1, basePort: %d}
replication:
  - type: active-passive
    primary: a
    standby: b
    mirror: {naming: identity}
mirror:
  refreshInterval: 500ms
  checkpointInterval: 1s
`

// TestUpRunsStatusSupervisesAndResumes runs kdr up on a two-cluster
// topology file: it becomes healthy, mirrors a record, restarts a SIGKILLed
// broker, refuses a second kdr up on the same state dir, stops on SIGINT
// with exit 0 and no child left (a SIGTERM on top changes nothing), and
// resumes with the same data; a second SIGINT while it stops ends it at
// once, with its children.
func TestUpRunsStatusSupervisesAndResumes(t *testing.T) {
	bin := kdrtest.Binary(t)
	used := map[int]bool{}
	pa, pb := kdrtest.FreeBasePort(t, 1, used), kdrtest.FreeBasePort(t, 1, used)
	dir := t.TempDir()
	file := filepath.Join(dir, "estate.yaml")
	if err := os.WriteFile(file, []byte(fmt.Sprintf(topologyYAML, pa, pb)), 0o644); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, "state")
	aBoot, bBoot := []string{fmt.Sprintf("127.0.0.1:%d", pa)}, []string{fmt.Sprintf("127.0.0.1:%d", pb)}

	p := startUp(t, bin, file, "--state-dir", state)
	e := waitHealthy(t, p, state)
	waitBrokers(t, aBoot, 1)
	waitBrokers(t, bBoot, 1)
	if len(e.Clusters) != 2 || e.Clusters[0].Brokers[0].PID == 0 || len(e.Flows) != 1 || e.Flows[0].Workers[0].MetricsURL == "" {
		t.Fatalf("endpoints: %+v", e)
	}

	// A record produced on a appears on b (identity naming).
	produceFirst(t, aBoot, "payments")
	waitRecord(t, bBoot, "payments", "first")

	// kdr status agrees, through the Kafka protocol.
	kdrtest.Eventually(t, 30*time.Second, func() (bool, string) {
		r, code := runStatus(t, bin, file, "--state-dir", state)
		return r.Healthy && code == 0 && r.Flows[0].State == status.FlowRunning, fmt.Sprintf("status exit %d: %+v", code, r)
	})
	r, _ := runStatus(t, bin, file, "--state-dir", state)
	if r.ActiveCluster != "a" || len(r.Clusters) != 2 || strings.Join(r.Clusters[0].Bootstrap, ",") != aBoot[0] ||
		strings.Join(r.Clusters[1].Bootstrap, ",") != bBoot[0] || !r.Clusters[0].Reachable || r.Clusters[0].BrokersExpected != 1 {
		t.Fatalf("status: %+v", r)
	}

	// A SIGKILLed broker is restarted and its cluster comes back whole.
	killed := e.Clusters[1].Brokers[0].PID
	if err := syscall.Kill(killed, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	kdrtest.Eventually(t, 30*time.Second, func() (bool, string) {
		e = readEndpoints(t, state)
		pid := e.Clusters[1].Brokers[0].PID
		return pid != 0 && pid != killed, fmt.Sprintf("broker pid %d", pid)
	})
	waitBrokers(t, bBoot, 1)

	// A second kdr up on the same state dir is refused.
	second := exec.Command(bin, "up", file, "--state-dir", state)
	out, err := second.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(string(out), "locked by kdr up") {
		t.Fatalf("second kdr up: %v\n%s", err, out)
	}

	// SIGINT: exit 0, nothing left behind.
	pids := readEndpoints(t, state).PIDs()
	if len(pids) != 3 {
		t.Fatalf("pids %v, want 2 brokers and 1 worker", pids)
	}
	// A SIGTERM on top, as a supervisor signalling the process group and
	// then each process sends, must not cut the clean stop short.
	interruptOnce(t, p)
	p.Signal(syscall.SIGTERM)
	select {
	case <-p.Done():
	case <-time.After(45 * time.Second):
		t.Fatal("kdr up did not exit within 45 s of SIGINT")
	}
	if err := p.Err(); err != nil {
		t.Fatalf("kdr up exited with %v after SIGINT then SIGTERM, want 0", err)
	}
	waitGone(t, pids)
	if e := readEndpoints(t, state); e.Running || len(e.PIDs()) != 0 {
		t.Fatalf("after stop, endpoints say running %v, pids %v", e.Running, e.PIDs())
	}

	// Again on the same state dir: the data is still there.
	p = startUp(t, bin, file, "--state-dir", state)
	waitHealthy(t, p, state)
	waitRecord(t, aBoot, "payments", "first")
	waitRecord(t, bBoot, "payments", "first")

	// A second SIGINT, while kdr up waits for a worker that does not stop
	// (SIGSTOPped, so kdr up would wait out WorkerStopGrace and exit 0),
	// ends kdr up at once by the signal's default action, and its children
	// die with it (parent-death signal).
	e = readEndpoints(t, state)
	pids = e.PIDs()
	worker := e.Flows[0].Workers[0].PID
	if err := syscall.Kill(worker, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	interruptOnce(t, p)
	p.Signal(os.Interrupt)
	select {
	case <-p.Done():
	case <-time.After(up.WorkerStopGrace):
		t.Fatalf("kdr up did not end on a second SIGINT within %s", up.WorkerStopGrace)
	}
	var ee2 *exec.ExitError
	if !errors.As(p.Err(), &ee2) || ee2.Sys().(syscall.WaitStatus).Signal() != syscall.SIGINT {
		t.Fatalf("kdr up ended with %v after a second SIGINT, want death by SIGINT", p.Err())
	}
	waitGone(t, pids)

	// Again on the same state dir: the lock died with kdr up, and the data
	// is there.
	p = startUp(t, bin, file, "--state-dir", state)
	waitHealthy(t, p, state)
	waitRecord(t, aBoot, "payments", "first")
	waitRecord(t, bBoot, "payments", "first")

	// A SIGKILLed kdr up takes its children with it too.
	pids = readEndpoints(t, state).PIDs()
	p.Signal(os.Kill)
	<-p.Done()
	waitGone(t, pids)
}

// interruptOnce sends kdr up a SIGINT and waits until it says it is
// stopping.
func interruptOnce(t *testing.T, p *kdrtest.Command) {
	t.Helper()
	p.Signal(os.Interrupt)
	kdrtest.Eventually(t, 30*time.Second, func() (bool, string) {
		return strings.Contains(p.Output(), "interrupt again to end at once"), "kdr up has not logged that it is stopping"
	})
}

// TestUpRefusesBusyPort: a port a local broker needs is taken, so kdr up
// stops at once with an error naming it.
func TestUpRefusesBusyPort(t *testing.T) {
	bin := kdrtest.Binary(t)
	used := map[int]bool{}
	pa, pb := kdrtest.FreeBasePort(t, 1, used), kdrtest.FreeBasePort(t, 1, used)
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", pb+100))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	dir := t.TempDir()
	file := filepath.Join(dir, "estate.yaml")
	if err := os.WriteFile(file, []byte(fmt.Sprintf(topologyYAML, pa, pb)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "up", file, "--state-dir", filepath.Join(dir, "state")).CombinedOutput()
	var ee *exec.ExitError
	want := fmt.Sprintf("cluster b broker 1 cannot listen for raft on 127.0.0.1:%d", pb+100)
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(string(out), want) {
		t.Fatalf("kdr up with a busy port: %v, want exit 1 and %q:\n%s", err, want, out)
	}
}

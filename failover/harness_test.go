package failover_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kdr-io/kdr/failover/store"
	"github.com/kdr-io/kdr/internal/kdrtest"
	"github.com/kdr-io/kdr/topology"
	"github.com/kdr-io/kdr/up"
)

var (
	binOnce sync.Once
	binDir  string
	binPath string
	binErr  error
)

// TestMain removes the directory binary built kdr in: it outlives any one
// test, so no test's TempDir can hold it.
func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// binary builds kdr once for the package's tests.
func binary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		binDir, binErr = os.MkdirTemp("", "kdr-failover-test-")
		if binErr != nil {
			return
		}
		binPath, binErr = kdrtest.BuildBinary(binDir)
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// estate is a topology file, its state dir and a running kdr up.
type estate struct {
	t     *testing.T
	bin   string
	file  string
	state string
	topo  *topology.Topology
	up    *kdrtest.Command
}

// startEstate writes yaml to a file and runs kdr up on it until healthy.
func startEstate(t *testing.T, yaml string) *estate {
	t.Helper()
	dir := t.TempDir()
	e := &estate{t: t, bin: binary(t), file: filepath.Join(dir, "estate.yaml"), state: filepath.Join(dir, "state")}
	if err := os.WriteFile(e.file, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	topo, err := topology.Load(e.file)
	if err != nil {
		t.Fatal(err)
	}
	e.topo = topo
	e.up = kdrtest.StartCommand(t, e.bin, "up", e.file, "--state-dir", e.state, "--metrics-listen", "127.0.0.1:0", "--log-level", "debug")
	t.Cleanup(func() {
		if t.Failed() { // the mirror workers' logs, besides kdr up's own output
			logs, _ := filepath.Glob(filepath.Join(e.state, "logs", "mirror-*.log"))
			for _, l := range logs {
				b, _ := os.ReadFile(l)
				if len(b) > 4000 {
					b = b[len(b)-4000:]
				}
				t.Logf("%s (tail):\n%s", l, b)
			}
		}
	})
	kdrtest.Eventually(t, 60*time.Second, func() (bool, string) {
		select {
		case <-e.up.Done():
			t.Fatalf("kdr up exited early:\n%s", e.up.Output())
		default:
		}
		ep, err := up.ReadEndpoints(up.Layout{Dir: e.state}.Endpoints())
		if err != nil {
			return false, err.Error()
		}
		return ep.Healthy, "kdr up not healthy yet"
	})
	return e
}

func (e *estate) endpoints() *up.Endpoints {
	ep, err := up.ReadEndpoints(up.Layout{Dir: e.state}.Endpoints())
	if err != nil {
		e.t.Fatal(err)
	}
	return ep
}

// kdr runs the binary with args (and env) and returns its output and exit
// code.
func (e *estate) kdr(env []string, args ...string) (string, int) {
	e.t.Helper()
	cmd := exec.Command(e.bin, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		return string(out), ee.ExitCode()
	case err != nil:
		e.t.Fatal(err)
	}
	return string(out), 0
}

// failover runs `kdr failover <kind> --to <to> FILE --state-dir ... --yes`.
func (e *estate) failover(env []string, kind, to string, extra ...string) (string, int) {
	e.t.Helper()
	args := append([]string{"failover", kind, "--to", to, e.file, "--state-dir", e.state, "--yes"}, extra...)
	return e.kdr(env, args...)
}

// state reads the failover state document.
func (e *estate) doc() store.State {
	e.t.Helper()
	s, err := store.Open(e.topo, e.state)
	if err != nil {
		e.t.Fatal(err)
	}
	defer s.Close()
	v, err := s.Get(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	return v.State
}

func (e *estate) bootstrap(cluster string) []string {
	return e.topo.ClusterByName(cluster).BootstrapServers()
}

// tryProduce produces one record with a normal client id and returns the
// error (nil: accepted).
func tryProduce(brokers []string, topic, value string) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ClientID("test-producer"),
		kgo.RecordDeliveryTimeout(10*time.Second), kgo.ProducerLinger(0))
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	return cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte(value)}).FirstErr()
}

// readAll reads every record of topic on brokers (up to the end offsets
// when called).
func readAll(t *testing.T, brokers []string, topic string) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ends := map[int32]int64{}
	adm := kadmClient(cl)
	lo, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	need := 0
	for _, ps := range lo {
		for p, o := range ps {
			if o.Offset > 0 {
				ends[p] = o.Offset
				need++
			}
		}
	}
	var out []*kgo.Record
	done := map[int32]bool{}
	for len(done) < need {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("reading %s: %v (%d of %d partitions read)", topic, ctx.Err(), len(done), need)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset < ends[r.Partition] {
				out = append(out, r)
			}
			if r.Offset+1 >= ends[r.Partition] {
				done[r.Partition] = true
			}
		})
	}
	return out
}

func isPolicyViolation(err error) bool { return errors.Is(err, kerr.PolicyViolation) }

func kadmClient(cl *kgo.Client) *kadm.Client { return kadm.NewClient(cl) }

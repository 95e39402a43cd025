package failover_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kdr-io/kdr/failover"
	"github.com/kdr-io/kdr/failover/store"
	"github.com/kdr-io/kdr/internal/consultest"
	"github.com/kdr-io/kdr/internal/kdrtest"
)

// createTopic creates a one-partition topic on cluster.
func createTopic(t *testing.T, e *estate, cluster, topic string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.bootstrap(cluster)...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := kadmClient(cl).CreateTopic(context.Background(), 1, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
}

// writable checks that cluster accepts a normal client's produce and
// other refuses it with POLICY_VIOLATION.
func writable(t *testing.T, e *estate, cluster, other, topic, what string) {
	t.Helper()
	if err := tryProduce(e.bootstrap(cluster), topic, what); err != nil {
		t.Fatalf("%s: produce to %s: %v, want accepted", what, cluster, err)
	}
	if err := tryProduce(e.bootstrap(other), topic, what); !isPolicyViolation(err) {
		t.Fatalf("%s: produce to %s: %v, want POLICY_VIOLATION", what, other, err)
	}
}

// TestFailoverAbort aborts a switchover that fenced the active cluster and
// drained the flow: the active cluster takes writes again, the standby
// still refuses them, and the next switchover works. One past its
// promotion is refused with how far it got and what resuming does, and
// resuming finishes it.
func TestFailoverAbort(t *testing.T) {
	used := map[int]bool{}
	e := startEstate(t, fmt.Sprintf(twoLocal, kdrtest.FreeBasePort(t, 1, used), kdrtest.FreeBasePort(t, 1, used)))
	createTopic(t, e, "a", "payments")
	writable(t, e, "a", "b", "payments", "before")

	out, code := e.failover([]string{failover.EnvCrashAfter + "=drain"}, "switchover", "b")
	if code != 3 {
		t.Fatalf("switchover crashing after drain: exit %d, want 3:\n%s", code, out)
	}
	if err := tryProduce(e.bootstrap("a"), "payments", "fenced"); !isPolicyViolation(err) {
		t.Fatalf("produce to a after the fence: %v, want POLICY_VIOLATION", err)
	}
	out, code = e.kdr(nil, "failover", "abort", e.file, "--state-dir", e.state)
	if code != 0 || !strings.Contains(out, "at step promote (4/8)") || !strings.Contains(out, "a unfenced at epoch 1") {
		t.Fatalf("abort after drain: exit %d\n%s", code, out)
	}
	writable(t, e, "a", "b", "payments", "after-abort")
	if st := e.doc(); st.Operation != nil || st.Active != "a" || st.Epoch != 0 {
		t.Fatalf("state after the abort: active %s epoch %d operation %+v", st.Active, st.Epoch, st.Operation)
	}

	out, code = e.failover([]string{failover.EnvCrashAfter + "=promote"}, "switchover", "b")
	if code != 3 {
		t.Fatalf("switchover crashing after promote: exit %d, want 3:\n%s", code, out)
	}
	out, code = e.kdr(nil, "failover", "abort", e.file, "--state-dir", e.state)
	for _, want := range []string{"is at step sync-offsets (5/8)", "it has promoted b (active at epoch 2, a fenced)",
		"an abort cannot undo", "Resume it with `kdr failover switchover --to b`: it runs sync-offsets, reverse, verify, done",
		"run `kdr failover switchover --to a`"} {
		if code != 1 || !strings.Contains(out, want) {
			t.Fatalf("abort after promote: exit %d, want 1 saying %q:\n%s", code, want, out)
		}
	}
	if st := e.doc(); st.Operation == nil || st.Operation.Step != "sync-offsets" {
		t.Fatalf("the refused abort changed the operation: %+v", st.Operation)
	}
	out, code = e.failover(nil, "switchover", "b")
	if code != 0 {
		t.Fatalf("resuming the switchover: exit %d\n%s", code, out)
	}
	// The aborted switchover fenced at epoch 1, so this one took 2.
	if st := e.doc(); st.Operation != nil || st.Active != "b" || st.Epoch != 2 {
		t.Fatalf("state after the resumed switchover: active %s epoch %d operation %+v", st.Active, st.Epoch, st.Operation)
	}
	writable(t, e, "b", "a", "payments", "after-switchover")
}

// TestFailoverStoreBehindTheFences: the clusters' fences carry epoch 2
// from failovers made through another store, and this one starts at 0 (a
// new Consul store after the file store). A switchover takes an epoch
// above the fences' instead of failing at its fence on every rerun, and
// so does an operation left in progress at its fence by a kdr that used
// the state's epoch.
func TestFailoverStoreBehindTheFences(t *testing.T) {
	t.Run("file", func(t *testing.T) { storeBehindTheFences(t, "") })
	t.Run("consul", func(t *testing.T) {
		if os.Getenv(consultest.EnvBin) == "" {
			t.Skip(consultest.SkipMessage)
		}
		storeBehindTheFences(t, consultest.Start(t).Addr())
	})
}

func storeBehindTheFences(t *testing.T, consulAddr string) {
	used := map[int]bool{}
	yaml := fmt.Sprintf(twoLocal, kdrtest.FreeBasePort(t, 1, used), kdrtest.FreeBasePort(t, 1, used))
	if consulAddr != "" {
		yaml = strings.Replace(yaml, "failover:\n", fmt.Sprintf("failover:\n  coordination: {backend: consul, consul: {address: %q}}\n", consulAddr), 1)
	}
	e := startEstate(t, yaml)
	createTopic(t, e, "a", "payments")
	// As two switchovers a -> b -> a through another store left them.
	setFence(t, e, "b", true, 2)
	setFence(t, e, "a", false, 2)
	writable(t, e, "a", "b", "payments", "before")

	out, code := e.failover(nil, "switchover", "b")
	if code != 0 || !strings.Contains(out, "this switchover takes epoch 3") {
		t.Fatalf("switchover with the store behind the fences: exit %d\n%s", code, out)
	}
	if st := e.doc(); st.Active != "b" || st.Epoch != 3 || st.Operation != nil {
		t.Fatalf("state after the switchover: active %s epoch %d operation %+v", st.Active, st.Epoch, st.Operation)
	}
	if fenced, epoch := readFence(t, e, "a"); !fenced || epoch != 3 {
		t.Fatalf("a's fence: fenced %v at epoch %d, want fenced at 3", fenced, epoch)
	}
	writable(t, e, "b", "a", "payments", "after-first")

	// The fences move ahead again, and the store holds a switchover back
	// to a at its fence step without the epoch it fences at, as an
	// earlier kdr left it after failing there.
	setFence(t, e, "a", true, 5)
	setFence(t, e, "b", false, 5)
	s, err := store.Open(e.topo, e.state)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	v, err := s.Get(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	v.State.Operation = &store.Operation{ID: "sw-left-behind", Kind: failover.KindSwitchover, From: "b", To: "a",
		Step: "fence", StepIndex: 1, Started: time.Now().UTC()}
	if _, err := s.CompareAndSwap(context.Background(), v.State, v.Version); err != nil {
		t.Fatal(err)
	}
	out, code = e.failover(nil, "switchover", "a")
	if code != 0 {
		t.Fatalf("resuming the switchover left at its fence: exit %d\n%s", code, out)
	}
	if st := e.doc(); st.Active != "a" || st.Epoch != 6 || st.Operation != nil {
		t.Fatalf("state after the resumed switchover: active %s epoch %d operation %+v", st.Active, st.Epoch, st.Operation)
	}
	if fenced, epoch := readFence(t, e, "b"); !fenced || epoch != 6 {
		t.Fatalf("b's fence: fenced %v at epoch %d, want fenced at 6", fenced, epoch)
	}
	writable(t, e, "a", "b", "payments", "after-second")
}

// setFence sets cluster's write fence as another store's failover would.
func setFence(t *testing.T, e *estate, cluster string, fenced bool, epoch int64) {
	t.Helper()
	if err := failover.SetFence(context.Background(), clusterAdmin(t, e, cluster), fenced, epoch, "test: another store's failover"); err != nil {
		t.Fatalf("fencing %s: %v", cluster, err)
	}
}

// readFence reads cluster's write fence.
func readFence(t *testing.T, e *estate, cluster string) (bool, int64) {
	t.Helper()
	fenced, epoch, err := failover.ReadFence(context.Background(), clusterAdmin(t, e, cluster))
	if err != nil {
		t.Fatal(err)
	}
	return fenced, epoch
}

// clusterAdmin is an admin client of cluster, closed with the test.
func clusterAdmin(t *testing.T, e *estate, cluster string) *kadm.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.bootstrap(cluster)...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

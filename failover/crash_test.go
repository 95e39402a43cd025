package failover_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kdr-io/kdr/failover"
	"github.com/kdr-io/kdr/internal/consultest"
	"github.com/kdr-io/kdr/internal/kdrtest"
)

// TestFailoverSwitchoverCrashAtEveryStep crashes `kdr failover switchover`
// right after each step (KDR_FAILOVER_CRASH_AFTER), checks that at most one
// cluster accepts produce and the state is consistent, and reruns it to
// completion; the direction alternates a → b → a ...
func TestFailoverSwitchoverCrashAtEveryStep(t *testing.T) {
	if testing.Short() {
		t.Skip("a switchover per step (about a minute); skipped with -short")
	}
	t.Run("file", func(t *testing.T) { crashAtEveryStep(t, "", nil) })
	// The same through a real Consul agent: the state checked after every
	// crash is the document in Consul's KV.
	t.Run("consul", func(t *testing.T) {
		if os.Getenv("KDR_CONSUL_BIN") == "" {
			t.Skip("set KDR_CONSUL_BIN (make test builds it: scripts/consul.sh)")
		}
		// A crashed orchestrator's Consul session lock is freed only when
		// Consul expires its session (up to twice the 15 s TTL), so each
		// rerun waits about that long: in make test, crash at the
		// promotion only.
		// KDR_CONSUL_CRASH_ALL_STEPS=1 crashes after every step, as the
		// file variant does (about four minutes).
		only := []string{"promote"}
		if os.Getenv("KDR_CONSUL_CRASH_ALL_STEPS") != "" {
			only = nil
		}
		crashAtEveryStep(t, consultest.Start(t).Addr(), only)
	})
}

// crashAtEveryStep runs the crash test with the file store, or with the
// Consul agent at consulAddr, crashing after every step or after those in
// only.
func crashAtEveryStep(t *testing.T, consulAddr string, only []string) {
	used := map[int]bool{}
	yaml := fmt.Sprintf(twoLocal, kdrtest.FreeBasePort(t, 1, used), kdrtest.FreeBasePort(t, 1, used))
	if consulAddr != "" {
		yaml = strings.Replace(yaml, "failover:\n", fmt.Sprintf("failover:\n  coordination: {backend: consul, consul: {address: %q}}\n", consulAddr), 1)
	}
	e := startEstate(t, yaml)
	ctx := context.Background()
	for _, c := range []string{"a", "b"} {
		cl, err := kgo.NewClient(kgo.SeedBrokers(e.bootstrap(c)...))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := kadmClient(cl).CreateTopic(ctx, 1, 1, nil, "probe-"+c); err != nil {
			t.Fatal(err)
		}
		cl.Close()
	}
	if err := tryProduce(e.bootstrap("a"), "probe-a", "before"); err != nil {
		t.Fatal(err)
	}
	steps, err := failover.Plan(failover.KindSwitchover, "", failover.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if only != nil {
		steps = only
	}
	to := "b"
	for _, step := range steps {
		from := map[string]string{"a": "b", "b": "a"}[to]
		out, code := e.failover([]string{failover.EnvCrashAfter + "=" + step}, "switchover", to)
		if code != 3 {
			t.Fatalf("crash after %s: exit %d, want 3:\n%s", step, code, out)
		}
		// At most one cluster accepts a normal client's produce. The
		// standby is never fenced, so before the promotion it is the one.
		errA := tryProduce(e.bootstrap("a"), "probe-a", "crash-"+step)
		errB := tryProduce(e.bootstrap("b"), "probe-b", "crash-"+step)
		if errA == nil && errB == nil {
			t.Fatalf("after a crash at %s both clusters accept produce", step)
		}
		st := e.doc()
		switch {
		case step == "done" && st.Operation != nil:
			t.Fatalf("crash after done: the operation is still in the state: %+v", st.Operation)
		case step != "done" && (st.Operation == nil || st.Operation.Kind != failover.KindSwitchover):
			t.Fatalf("crash after %s: no switchover in progress in the state: %+v", step, st)
		case st.Active != from && st.Active != to:
			t.Fatalf("crash after %s: active %q", step, st.Active)
		}
		if step != "done" {
			// Another operation is refused while this one is in progress.
			// (With Consul the dead orchestrator's lock may still be held:
			// refused as locked, exit 4, which is as good.)
			out, code := e.failover(nil, "promote", from, "--force", "--lock-wait", "0")
			if !(code == 1 && strings.Contains(out, "is in progress")) && !(code == 4 && consulAddr != "") {
				t.Fatalf("promote during a switchover: exit %d\n%s", code, out)
			}
			out, code = e.failover(nil, "switchover", to)
			if code != 0 {
				t.Fatalf("rerun after a crash at %s: exit %d:\n%s", step, code, out)
			}
		}
		st = e.doc()
		if st.Active != to || st.Operation != nil || len(st.Fenced) != 1 || st.Fenced[0] != from {
			t.Fatalf("after the rerun (crash at %s): active %s fenced %v operation %+v", step, st.Active, st.Fenced, st.Operation)
		}
		if err := tryProduce(e.bootstrap(to), "probe-"+to, "after-"+step); err != nil {
			t.Fatalf("the new active %s refuses produce after a crash at %s: %v", to, step, err)
		}
		if err := tryProduce(e.bootstrap(from), "probe-"+from, "after-"+step); !isPolicyViolation(err) {
			t.Fatalf("the old active %s after a crash at %s: %v, want POLICY_VIOLATION", from, step, err)
		}
		to = from
	}
}

// TestFailoverStoreUnreachable: with the Consul agent unreachable every
// command refuses at once with the store's message and exit 1.
func TestFailoverStoreUnreachable(t *testing.T) {
	bin := binary(t)
	run := func(t *testing.T, addr string) {
		dir := t.TempDir()
		file := filepath.Join(dir, "estate.yaml")
		yaml := strings.Replace(fmt.Sprintf(twoLocal, 41000, 42000), "failover:\n", fmt.Sprintf("failover:\n  coordination: {backend: consul, consul: {address: %q}}\n", addr), 1)
		if err := os.WriteFile(file, []byte(yaml), 0o644); err != nil {
			t.Fatal(err)
		}
		for _, args := range [][]string{
			{"failover", "switchover", "--to", "b", "--yes"},
			{"failover", "promote", "--to", "b", "--force", "--yes"},
			{"failover", "status"},
			{"discover"},
		} {
			start := time.Now()
			cmd := exec.Command(bin, append(args, file, "--state-dir", dir)...)
			out, err := cmd.CombinedOutput()
			code := cmd.ProcessState.ExitCode()
			if err != nil && code < 0 {
				t.Fatal(err)
			}
			want := "consul at " + addr + " unreachable"
			if code != 1 || !strings.Contains(string(out), want) || time.Since(start) > 15*time.Second {
				t.Fatalf("%v with the store down: exit %d after %s, want 1 within 15s saying %q:\n%s", args, code, time.Since(start), want, out)
			}
		}
	}
	t.Run("closed-port", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		run(t, addr)
	})
	t.Run("stopped-agent", func(t *testing.T) {
		a := consultest.Start(t)
		a.Stop()
		run(t, a.Addr())
	})
}

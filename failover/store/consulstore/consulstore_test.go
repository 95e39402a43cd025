package consulstore_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/kdr-io/kdr/failover/store/consulstore"
	"github.com/kdr-io/kdr/failover/store/internal/model"
	"github.com/kdr-io/kdr/internal/consultest"
	"github.com/kdr-io/kdr/internal/kdrtest"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func newStore(t *testing.T, agent *consultest.Agent, topology string) *consulstore.Store {
	t.Helper()
	s, err := consulstore.New(consulstore.Config{Topology: topology, Address: agent.Addr()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func rawClient(t *testing.T, agent *consultest.Agent) *api.Client {
	t.Helper()
	c, err := api.NewClient(&api.Config{Address: agent.Addr()})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestFailoverConsulStoreActivePointer(t *testing.T) {
	agent := consultest.Start(t)
	s := newStore(t, agent, "pointer")
	kv := rawClient(t, agent).KV()
	ctx := ctxT(t)
	active := func() *api.KVPair {
		t.Helper()
		p, _, err := kv.Get("kdr/pointer/active", nil)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}

	v, err := s.CompareAndSwap(ctx, model.State{Topology: "pointer"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if p := active(); p != nil {
		t.Fatalf("active pointer written for a state without an active cluster: %q", p.Value)
	}
	if v, err = s.CompareAndSwap(ctx, model.State{Topology: "pointer", Active: "east", Epoch: 1}, v); err != nil {
		t.Fatal(err)
	}
	p := active()
	if p == nil || string(p.Value) != "east" || p.Flags != 1 {
		t.Fatalf("active pointer = %+v, want east with flags 1", p)
	}
	// A write that keeps the active cluster leaves the pointer alone.
	if v, err = s.CompareAndSwap(ctx, model.State{Topology: "pointer", Active: "east", Epoch: 1, Fenced: []string{"west"}}, v); err != nil {
		t.Fatal(err)
	}
	if again := active(); again.ModifyIndex != p.ModifyIndex {
		t.Fatalf("pointer rewritten (index %d → %d) although the active cluster did not change", p.ModifyIndex, again.ModifyIndex)
	}
	// A lost CAS does not move the pointer either: it is in the same
	// transaction.
	if _, err := s.CompareAndSwap(ctx, model.State{Topology: "pointer", Active: "west", Epoch: 2}, v-1); !errors.Is(err, model.ErrConflict) {
		t.Fatalf("stale CAS: %v, want ErrConflict", err)
	}
	if p := active(); string(p.Value) != "east" {
		t.Fatalf("pointer moved to %q by a lost CAS", p.Value)
	}
	if _, err = s.CompareAndSwap(ctx, model.State{Topology: "pointer", Active: "west", Epoch: 2}, v); err != nil {
		t.Fatal(err)
	}
	if p := active(); string(p.Value) != "west" || p.Flags != 2 {
		t.Fatalf("active pointer = %q flags %d, want west with flags 2", p.Value, p.Flags)
	}
}

func TestFailoverConsulStoreLockLostWhenSessionDestroyed(t *testing.T) {
	agent := consultest.Start(t)
	s := newStore(t, agent, "lost")
	other := newStore(t, agent, "lost")
	client := rawClient(t, agent)
	ctx := ctxT(t)

	l, err := s.Lock(ctx, "orchestrator-1")
	if err != nil {
		t.Fatal(err)
	}
	pair, _, err := client.KV().Get("kdr/lost/lock", nil)
	if err != nil || pair == nil || pair.Session == "" {
		t.Fatalf("lock key = %+v, %v; want it held by a session", pair, err)
	}
	info, _, err := client.Session().Info(pair.Session, nil)
	if err != nil || info == nil || info.TTL != "15s" || info.Behavior != api.SessionBehaviorRelease || info.LockDelay != time.Second {
		t.Fatalf("session = %+v, %v; want TTL 15s, behavior release, lock-delay 1s", info, err)
	}
	if _, err := client.Session().Destroy(pair.Session, nil); err != nil {
		t.Fatal(err)
	}
	select {
	case <-l.Lost():
	case <-time.After(10 * time.Second):
		t.Fatal("Lost() not closed within 10s of the session's destruction")
	}
	// Another orchestrator gets the lock once Consul's lock-delay passes.
	var l2 model.Lock
	kdrtest.Eventually(t, 10*time.Second, func() (bool, string) {
		l2, err = other.Lock(ctx, "orchestrator-2")
		if err != nil {
			return false, err.Error()
		}
		return true, ""
	})
	if err := l.Release(ctx); err != nil {
		t.Fatalf("Release of a lost lock: %v", err)
	}
	if pair, _, _ := client.KV().Get("kdr/lost/lock", nil); pair == nil || !strings.Contains(string(pair.Value), "orchestrator-2") {
		t.Fatalf("releasing the lost lock disturbed the new holder: %+v", pair)
	}
	if err := l2.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if sessions, _, _ := client.Session().List(nil); len(sessions) != 0 {
		t.Fatalf("sessions left after Release: %+v", sessions)
	}
}

func TestFailoverConsulStoreAgentDownAndBack(t *testing.T) {
	agent := consultest.Start(t)
	s := newStore(t, agent, "outage")
	ctx := ctxT(t)
	v, err := s.CompareAndSwap(ctx, model.State{Topology: "outage", Active: "east", Epoch: 1}, 0)
	if err != nil {
		t.Fatal(err)
	}

	agent.Kill()
	budget := consulstore.DefaultTimeout + 2*time.Second
	calls := map[string]func() error{
		"Get": func() error { _, err := s.Get(ctx); return err },
		"CompareAndSwap": func() error {
			_, err := s.CompareAndSwap(ctx, model.State{Active: "west"}, v)
			return err
		},
		"Lock":  func() error { _, err := s.Lock(ctx, "x"); return err },
		"Watch": func() error { _, err := s.Watch(ctx, v); return err },
		"RegisterCluster": func() error {
			return s.RegisterCluster(ctx, model.ClusterRegistration{Cluster: "east", Brokers: []string{"127.0.0.1:1"}})
		},
		"ClusterHealth": func() error { _, err := s.ClusterHealth(ctx, "east"); return err },
	}
	for name, call := range calls {
		start := time.Now()
		err := call()
		if took := time.Since(start); took > budget {
			t.Errorf("%s with the agent down took %s, want at most %s", name, took, budget)
		}
		var unavailable *model.UnavailableError
		if !errors.Is(err, model.ErrUnavailable) || !errors.As(err, &unavailable) {
			t.Errorf("%s with the agent down: %v, want ErrUnavailable", name, err)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, "consul at "+agent.Addr()+" unreachable") || !strings.Contains(msg, "is the agent running? check failover.coordination.consul.address") {
			t.Errorf("%s error %q does not name the address and what to check", name, msg)
		}
	}

	agent.Restart()
	got, err := s.Get(ctx)
	if err != nil {
		t.Fatalf("Get after the restart: %v", err)
	}
	if got.Version != v || got.State.Active != "east" {
		t.Fatalf("after the restart Get = version %d active %q, want %d east (state lost?)", got.Version, got.State.Active, v)
	}
	if _, err := s.CompareAndSwap(ctx, model.State{Topology: "outage", Active: "west", Epoch: 2}, v); err != nil {
		t.Fatalf("CompareAndSwap after the restart: %v", err)
	}
	l, err := s.Lock(ctx, "after-restart")
	if err != nil {
		t.Fatalf("Lock after the restart: %v", err)
	}
	l.Release(ctx)
}

func TestFailoverConsulStoreTimesOutOnSilentAgent(t *testing.T) {
	// Accepts connections and never answers: the call timeout must cut in.
	silent := kdrtest.SilentAddr(t)
	s, err := consulstore.New(consulstore.Config{Topology: "silent", Address: silent, Timeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	start := time.Now()
	_, err = s.Get(context.Background())
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("Get on a silent agent took %s", took)
	}
	if !errors.Is(err, model.ErrUnavailable) || !strings.Contains(err.Error(), "no answer within 300ms") {
		t.Fatalf("Get on a silent agent: %v, want ErrUnavailable saying it timed out", err)
	}
	// The caller's own cancellation is not an outage.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Get(ctx); !errors.Is(err, context.Canceled) || errors.Is(err, model.ErrUnavailable) {
		t.Fatalf("Get with a cancelled context: %v, want context.Canceled", err)
	}
}

func TestFailoverConsulStoreClusterHealth(t *testing.T) {
	agent := consultest.Start(t)
	s := newStore(t, agent, "health")
	ctx := ctxT(t)

	live, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	go func() {
		for {
			c, err := live.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := closed.Addr().String()
	closed.Close()

	reg := model.ClusterRegistration{Cluster: "east", Region: "eu", Brokers: []string{live.Addr().String(), deadAddr}}
	if err := s.RegisterCluster(ctx, reg); err != nil {
		t.Fatal(err)
	}
	services, err := rawClient(t, agent).Agent().Services()
	if err != nil {
		t.Fatal(err)
	}
	svc := services["kdr-health-east"]
	if svc == nil || svc.Meta["kdr_cluster"] != "east" || svc.Meta["kdr_region"] != "eu" {
		t.Fatalf("agent service kdr-health-east = %+v", svc)
	}

	kdrtest.Eventually(t, 20*time.Second, func() (bool, string) {
		h, err := s.ClusterHealth(ctx, "east")
		if err != nil {
			return false, err.Error()
		}
		if len(h.Brokers) != 2 || h.Brokers[0].Status != model.StatusPassing || h.Brokers[1].Status != model.StatusCritical || h.Status != model.StatusCritical {
			return false, "health " + describe(h)
		}
		if h.Brokers[0].Address != reg.Brokers[0] || h.Brokers[1].Address != deadAddr {
			return false, "addresses " + describe(h)
		}
		return true, ""
	})

	// Registering again replaces the checks: only the live broker remains.
	reg.Brokers = reg.Brokers[:1]
	if err := s.RegisterCluster(ctx, reg); err != nil {
		t.Fatal(err)
	}
	kdrtest.Eventually(t, 20*time.Second, func() (bool, string) {
		h, err := s.ClusterHealth(ctx, "east")
		if err != nil {
			return false, err.Error()
		}
		return len(h.Brokers) == 1 && h.Status == model.StatusPassing, describe(h)
	})

	h, err := s.ClusterHealth(ctx, "never-registered")
	if err != nil || h.Status != model.StatusUnknown || len(h.Brokers) != 0 {
		t.Fatalf("health of an unregistered cluster = %+v, %v; want unknown", h, err)
	}
	if err := s.DeregisterCluster(ctx, "east"); err != nil {
		t.Fatal(err)
	}
}

func describe(h model.Health) string {
	var b strings.Builder
	b.WriteString(h.Status + ":")
	for _, br := range h.Brokers {
		b.WriteString(" " + br.Address + "=" + br.Status)
	}
	return b.String()
}

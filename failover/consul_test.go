package failover_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kdr-io/kdr/failover/store"
	"github.com/kdr-io/kdr/internal/consultest"
	"github.com/kdr-io/kdr/internal/kdrtest"
)

// TestFailoverSwitchoverConsul runs a switchover with the Consul backend,
// then stops the agent: kdr up's flows keep running in the current
// direction and failover commands refuse with the store's message.
func TestFailoverSwitchoverConsul(t *testing.T) {
	agent := consultest.Start(t)
	used := map[int]bool{}
	yaml := strings.Replace(fmt.Sprintf(twoLocal, kdrtest.FreeBasePort(t, 1, used), kdrtest.FreeBasePort(t, 1, used)), "failover:\n",
		fmt.Sprintf("failover:\n  coordination: {backend: consul, consul: {address: %q}}\n", agent.Addr()), 1)
	e := startEstate(t, yaml)
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.bootstrap("a")...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := kadmClient(cl).CreateTopic(context.Background(), 1, 1, nil, "payments"); err != nil {
		t.Fatal(err)
	}
	if err := tryProduce(e.bootstrap("a"), "payments", "before"); err != nil {
		t.Fatal(err)
	}
	kdrtest.Eventually(t, 30*time.Second, func() (bool, string) {
		return values(readAll(t, e.bootstrap("b"), "payments"))["before"], "before not on b yet"
	})
	out, code := e.failover(nil, "switchover", "b")
	if code != 0 {
		t.Fatalf("switchover exit %d:\n%s", code, out)
	}
	st := e.doc()
	if st.Active != "b" || st.Epoch != 1 || !slices.Equal(st.Fenced, []string{"a"}) {
		t.Fatalf("state in consul: %+v", st)
	}

	// kdr up registered each cluster as a Consul service with a TCP check
	// per broker, and the checks pass while the brokers run.
	cs, err := store.Open(e.topo, e.state)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	for _, name := range []string{"a", "b"} {
		kdrtest.Eventually(t, 30*time.Second, func() (bool, string) {
			h, err := cs.ClusterHealth(context.Background(), name)
			if err != nil {
				return false, err.Error()
			}
			return h.Status == store.StatusPassing && len(h.Brokers) == len(e.bootstrap(name)), fmt.Sprintf("cluster %s health %+v", name, h)
		})
	}

	agent.Stop()
	if out, code := e.failover(nil, "switchover", "a"); code != 1 || !strings.Contains(out, "consul at "+agent.Addr()+" unreachable") {
		t.Fatalf("switchover with consul down: exit %d\n%s", code, out)
	}
	// The data keeps flowing b → a.
	if err := tryProduce(e.bootstrap("b"), "payments", "during-outage"); err != nil {
		t.Fatal(err)
	}
	kdrtest.Eventually(t, 30*time.Second, func() (bool, string) {
		return values(readAll(t, e.bootstrap("a"), "payments"))["during-outage"], "during-outage not on a yet"
	})
	if !strings.Contains(e.up.Output(), "coordination store unavailable") {
		t.Errorf("kdr up did not log the store outage:\n%s", e.up.Output())
	}
}

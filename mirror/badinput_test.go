package mirror

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/kdr-io/kdr/broker"
	"github.com/kdr-io/kdr/internal/kdrtest"
)

// TestMirrorUnreachableTarget starts a flow whose target is down: the
// worker keeps retrying and says why, then copies everything once the
// target comes up, and again after the target restarts mid-flow.
func TestMirrorUnreachableTarget(t *testing.T) {
	east := startCluster(t)
	east.createTopic("orders", 2)
	east.produce(seqRecords("orders", 2, 0, 100)...)
	addr := kdrtest.FreeAddr(t)
	f := DefaultFlow()
	f.SourceAlias, f.TargetAlias = "east", "west"
	f.Source.Brokers, f.Target.Brokers = []string{east.addr}, []string{addr}
	f.RefreshInterval, f.HeartbeatInterval, f.SessionTimeout, f.DeliveryTimeout = 500*time.Millisecond, 200*time.Millisecond, 6*time.Second, 5*time.Second
	w := startWorker(t, f)

	kdrtest.Eventually(t, 20*time.Second, func() (bool, string) {
		st := w.Status()
		e := st.Errors[KindTarget]
		return e.Count > 0 && strings.Contains(e.Last, addr) && w.Health() != nil,
			fmt.Sprintf("target errors %+v, health %v", e, w.Health())
	})
	if got := metricSum(t, w.reg, "kdr_mirror_errors_total", map[string]string{"kind": KindTarget}); got == 0 {
		t.Error("kdr_mirror_errors_total{kind=target} is 0")
	}

	b := kdrtest.StartBroker(t, kdrtest.WithConfig(func(c *broker.Config) { c.Listen = addr }))
	west := &cluster{t: t, addr: b.Addr()}
	west.cl = startClient(t, b.Addr())
	west.adm = kadm.NewClient(west.cl)
	waitCount(t, west, "east.orders", 100, 60*time.Second)
	kdrtest.Eventually(t, 20*time.Second, func() (bool, string) {
		return w.Health() == nil, fmt.Sprintf("health %v", w.Health())
	})

	// A restart of the target mid-flow loses nothing.
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 100; i < 1100; i += 50 {
			if err := east.tryProduce(seqRecords("orders", 2, i, 50)...); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	b.Restart()
	<-done
	waitDistinct(t, west, "east.orders", 1100, 60*time.Second)
}

// TestMirrorTargetBlackHoled cuts the path to the target (a dropped network:
// no errors, only silence) for longer than DeliveryTimeout while records are
// produced: the status says so, and after the path heals everything
// arrives, in order.
func TestMirrorTargetBlackHoled(t *testing.T) {
	east := startCluster(t)
	east.createTopic("orders", 2)
	west, proxy := startBehindProxy(t)

	f := testFlow(east, west, "east", "west")
	f.Target.Brokers = []string{proxy.Addr()}
	f.DeliveryTimeout = 2 * time.Second
	w := startWorker(t, f)
	east.produce(seqRecords("orders", 2, 0, 100)...)
	waitCount(t, west, "east.orders", 100, 30*time.Second)

	proxy.Cut()
	east.produce(seqRecords("orders", 2, 100, 200)...)
	// Copies already sent are waited for (idempotence forbids dropping
	// them); the status shows the wait (and, once franz-go's request
	// timeout gives up on the connection, the failing reconnections).
	kdrtest.Eventually(t, 30*time.Second, func() (bool, string) {
		st := w.Status()
		return st.FlushWaiting > f.DeliveryTimeout, fmt.Sprintf("waiting for the target for %s", st.FlushWaiting)
	})
	proxy.Heal()
	waitDistinct(t, west, "east.orders", 300, 60*time.Second)
	checkFirstCopiesInOrder(t, west.readAll("east.orders"))
	t.Logf("target holds %d records for 300 produced", west.count("east.orders"))
}

// TestMirrorStopsWhileTargetDown stops a worker whose copies wait for a
// target that went silent, with the default delivery timeout (30 s): the
// stop must not wait it out, since kdr up kills a worker after
// up.WorkerStopGrace (15 s). What was not acknowledged is not committed,
// so a worker started after the target is back copies it: nothing is lost.
func TestMirrorStopsWhileTargetDown(t *testing.T) {
	for _, forward := range []bool{true, false} {
		t.Run(fmt.Sprintf("forward=%v", forward), func(t *testing.T) {
			east := startCluster(t)
			east.createTopic("orders", 2)
			west, proxy := startBehindProxy(t)
			f := testFlow(east, west, "east", "west")
			f.Target.Brokers = []string{proxy.Addr()}
			f.DeliveryTimeout = DefaultFlow().DeliveryTimeout
			f.ForwardBatches = forward
			w := startWorker(t, f)
			east.produce(seqRecords("orders", 2, 0, 100)...)
			waitCount(t, west, "east.orders", 100, 30*time.Second)

			proxy.Cut()
			east.produce(seqRecords("orders", 2, 100, 100)...)
			kdrtest.Eventually(t, 30*time.Second, func() (bool, string) {
				st := w.Status()
				return st.FlushWaiting > time.Second, fmt.Sprintf("waiting for the target for %s", st.FlushWaiting)
			})
			checkStopsInTime(t, w, "its target going silent")

			proxy.Heal()
			startWorker(t, f)
			waitDistinct(t, west, "east.orders", 200, 60*time.Second)
			t.Logf("target holds %d records for 200 produced", west.count("east.orders"))
		})
	}
}

// TestMirrorRefusedSessionTimeout starts a worker whose --session-timeout the
// source's brokers refuse (below group.min.session.timeout.ms): it never
// joins its group, and its health says so and names the flag (it copied
// nothing while its health said ok, the reason only in debug logs).
func TestMirrorRefusedSessionTimeout(t *testing.T) {
	east, west := startCluster(t), startCluster(t)
	east.createTopic("orders", 1)
	f := testFlow(east, west, "east", "west")
	f.SessionTimeout = 4 * time.Second
	w := startWorker(t, f)
	kdrtest.Eventually(t, 30*time.Second, func() (bool, string) {
		err := w.Health()
		return errors.Is(err, kerr.InvalidSessionTimeout) && strings.Contains(err.Error(), "--session-timeout 4s"), fmt.Sprintf("health: %v", err)
	})
	if e := w.Status().Errors[KindSource]; !strings.Contains(e.Last, "group.min.session.timeout.ms") {
		t.Errorf("last source error %q does not name the brokers' bound", e.Last)
	}
}

// TestMirrorReplicationFactorAboveTargetBrokers asks for remote topics of
// replication factor 3 on a one-broker target: the refusal is reported as
// such, naming the setting (it was reported as a config refusal first, then
// as a bare INVALID_REPLICATION_FACTOR).
func TestMirrorReplicationFactorAboveTargetBrokers(t *testing.T) {
	east, west := startCluster(t), startCluster(t)
	east.createTopic("orders", 1)
	f := testFlow(east, west, "east", "west")
	f.ReplicationFactor = 3
	w := startWorker(t, f)
	kdrtest.Eventually(t, 30*time.Second, func() (bool, string) {
		e := w.Status().Errors[KindTopic]
		return strings.Contains(e.Last, "refuses --replication-factor 3 with 1 broker(s)"), fmt.Sprintf("topic errors %+v", e)
	})
	if e := w.Status().Errors[KindConfig]; e.Count != 0 {
		t.Errorf("config errors %+v: the refusal is not a config's", e)
	}
}

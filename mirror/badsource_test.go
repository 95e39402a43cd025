package mirror

import (
	"context"
	"fmt"
	"net"
	"runtime/pprof"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kdr-io/kdr/broker"
	"github.com/kdr-io/kdr/internal/faultproxy"
	"github.com/kdr-io/kdr/internal/kdrtest"
)

// A worker whose source is down retries every failed request, so its
// kind="source" error count grows with its attempts. backoffWindow is how
// long the test watches it; maxSourceErrorsPerSecond is the rate it must stay
// under. With the source refusing connections a failed attempt costs well
// under a millisecond on loopback: the same worker with its clients' retry
// backoff set to zero (kgo.RetryBackoffFn) made about 5,000 a second; with
// its backoff (franz-go's retries, fetches 100 ms doubling to 5 s, refreshes
// 200 ms doubling to RefreshInterval) it makes 30 to 60. A slow machine
// only makes fewer attempts, never more.
const (
	backoffWindow            = 3 * time.Second
	maxSourceErrorsPerSecond = 200
)

// TestMirrorUnreachableSource makes a running flow's source unreachable: the
// proxy the worker reaches it through resets every connection, as a client
// of a source broker that is down sees. The worker stays up, says the
// source is the problem (status, health, kdr_mirror_errors_total{kind=
// "source"}), retries with backoff, and once the source is back copies what
// was produced before, during and after the outage. The outage is shorter
// than the session timeout, so the worker keeps its partitions: each record
// arrives exactly once, in order.
func TestMirrorUnreachableSource(t *testing.T) {
	testSourceOutage(t, false, 30*time.Second, false)
}

// TestMirrorSourceOutageOutlastsSession refuses the source's connections
// until its group coordinator has dropped the worker, then heals. The
// worker's fetches work at once, before franz-go's heartbeat learns it was
// dropped: copying then would copy the outage's records, and the
// rebalance that follows would copy them again. Each must arrive once.
func TestMirrorSourceOutageOutlastsSession(t *testing.T) {
	testSourceOutage(t, false, 6*time.Second, true)
}

// TestMirrorSourceBlackHoled is TestMirrorUnreachableSource with the path
// to the source black-holed (a dropped network: no error, only silence),
// which the worker notices only through its clients' timeouts, after about
// 10 s: longer than the session timeout, so the source's group coordinator
// drops the worker meanwhile. Health says so once the fetches have failed
// for a while (a topic refresh stuck on a silent source would give up only
// after max(RefreshInterval, 30 s)). Retries are paced by the timeouts, so
// backoff is not checked.
func TestMirrorSourceBlackHoled(t *testing.T) {
	testSourceOutage(t, true, 6*time.Second, false)
}

// testSourceOutage copies records, cuts the worker off its source (black
// hole or refused connections) while more records are produced, checks
// what the worker reports, heals the path and checks the copies.
//
// No record may repeat. Within session the worker keeps its partitions.
// When the outage outlasts session, the group drops the worker; right
// after the heal, before franz-go's next heartbeat tells it so, it used to
// copy what the source gained meanwhile, then lose its partitions and copy
// it all again from the last commit. Now it copies nothing until the group
// confirms its partitions (membership.go).
func testSourceOutage(t *testing.T, blackHole bool, session time.Duration, outlast bool) {
	east, proxy := startBehindProxy(t)
	west := startCluster(t)
	const parts = 3
	east.createTopic("orders", parts)
	f := testFlow(east, west, "east", "west")
	f.Source.Brokers = []string{proxy.Addr()}
	f.SessionTimeout = session
	w := startWorker(t, f)

	const before, during, after = 300, 150, 150
	east.produce(seqRecords("orders", parts, 0, before)...)
	waitCount(t, west, "east.orders", before, 30*time.Second)
	waitCommitted(t, east, f.Group(), "orders", before, 30*time.Second)

	errsBefore := sourceErrors(t, w)
	down := time.Now()
	if blackHole {
		proxy.Cut()
	} else {
		proxy.Refuse()
	}
	// Records keep arriving on the source while the mirror cannot reach it.
	direct := directClient(t, east, proxy)
	produceCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := direct.ProduceSync(produceCtx, seqRecords("orders", parts, before, during)...).FirstErr(); err != nil {
		t.Fatalf("producing to the source during the outage: %v", err)
	}

	// The status names the source's address (the one its broker
	// advertises: the proxy's); health says the source failed.
	kdrtest.Eventually(t, 40*time.Second, func() (bool, string) {
		e := w.Status().Errors[KindSource]
		ok := e.Count > 0 && e.At.After(down) && strings.Contains(e.Last, proxy.Addr())
		h := w.Health()
		ok = ok && h != nil && strings.Contains(h.Error(), "source") && strings.Contains(h.Error(), proxy.Addr())
		return ok, fmt.Sprintf("source errors %+v, health %v", e, h)
	})
	t.Logf("%s after the outage began: source error %q; health %v", time.Since(down).Round(time.Millisecond),
		w.Status().Errors[KindSource].Last, w.Health())
	if got := sourceErrors(t, w); got <= errsBefore {
		t.Errorf("kdr_mirror_errors_total{kind=source} is %v, was %v before the outage", got, errsBefore)
	}
	checkStillRunning(t, w)

	if !blackHole {
		// Backoff: count the failed attempts over a window.
		n0 := sourceErrors(t, w)
		start := time.Now()
		select {
		case <-w.done:
			t.Fatal("Run returned while the source was down")
		case <-time.After(backoffWindow):
		}
		n := sourceErrors(t, w) - n0
		elapsed := time.Since(start)
		t.Logf("%.0f source errors in %s (%.0f/s) while the source was down", n, elapsed.Round(time.Millisecond), n/elapsed.Seconds())
		if n == 0 {
			t.Errorf("no source errors in %s: the worker stopped retrying", elapsed)
		}
		if limit := maxSourceErrorsPerSecond * elapsed.Seconds(); n > limit {
			t.Errorf("%.0f source errors in %s, want at most %.0f: retries do not back off", n, elapsed, limit)
		}
		checkStillRunning(t, w)
	}
	if e := w.Status().Errors[KindTarget]; e.At.After(down) {
		t.Errorf("the source outage was reported as a target error: %+v", e)
	}
	if outlast {
		// The coordinator (reached directly) holds no member any more.
		adm := kadm.NewClient(direct)
		kdrtest.Eventually(t, 30*time.Second, func() (bool, string) {
			gs, err := adm.DescribeGroups(context.Background(), f.Group())
			if err != nil {
				return false, err.Error()
			}
			g := gs[f.Group()]
			return g.Err == nil && len(g.Members) == 0, fmt.Sprintf("group %s: state %s, %d members, %v", f.Group(), g.State, len(g.Members), g.Err)
		})
	}
	outage := time.Since(down)
	proxy.Heal()
	t.Logf("source reachable again after %s", outage.Round(time.Millisecond))

	east.produce(seqRecords("orders", parts, before+during, after)...)
	const total = before + during + after
	waitAtLeast(t, west, "east.orders", total, 60*time.Second)
	kdrtest.Eventually(t, 20*time.Second, func() (bool, string) {
		return w.Health() == nil, fmt.Sprintf("health %v", w.Health())
	})
	// Once every position is committed nothing more arrives (a copy is
	// sent before the commit that covers it).
	waitCommitted(t, east, f.Group(), "orders", total, 30*time.Second)
	got := west.readAll("east.orders")
	checkCopies(t, got, seqRecords("orders", parts, 0, total), nil)
	// An outage of half the session timeout or more makes the worker wait
	// for the group before copying again; a shorter one does not.
	if d := w.Status().MembershipDoubts; (outage >= session/2) != (d > 0) {
		t.Errorf("after an outage of %v with a session timeout of %v, copying waited for the group %d times", outage, session, d)
	}
	t.Logf("the target holds %d records for %d produced", len(flatten(got)), total)
}

// TestMirrorSourceUnreachableAtStart starts a flow whose source is down
// (nothing listens at its address): the worker stays up and says why, and
// copies everything once the source comes up.
func TestMirrorSourceUnreachableAtStart(t *testing.T) {
	west := startCluster(t)
	addr := kdrtest.FreeAddr(t)
	f := testFlow(&cluster{addr: addr}, west, "east", "west")
	w := startWorker(t, f)

	kdrtest.Eventually(t, 20*time.Second, func() (bool, string) {
		e := w.Status().Errors[KindSource]
		h := w.Health()
		ok := e.Count > 0 && strings.Contains(e.Last, addr) &&
			h != nil && strings.Contains(h.Error(), "source") && strings.Contains(h.Error(), addr)
		return ok, fmt.Sprintf("source errors %+v, health %v", e, h)
	})
	t.Logf("source down: status %q; health %q", w.Status().Errors[KindSource].Last, w.Health())
	if got := sourceErrors(t, w); got == 0 {
		t.Error("kdr_mirror_errors_total{kind=source} is 0")
	}
	checkStillRunning(t, w)

	b := kdrtest.StartBroker(t, kdrtest.WithConfig(func(c *broker.Config) { c.Listen = addr }))
	// Cleanups run last-registered first: stop the worker while its source
	// is still up.
	t.Cleanup(w.stop)
	east := &cluster{t: t, addr: b.Addr()}
	east.cl = startClient(t, b.Addr())
	east.adm = kadm.NewClient(east.cl)
	const parts, n = 2, 200
	east.createTopic("orders", parts)
	east.produce(seqRecords("orders", parts, 0, n)...)
	up := time.Now()
	waitAtLeast(t, west, "east.orders", n, 60*time.Second)
	t.Logf("copied %d records %s after the source came up", n, time.Since(up).Round(time.Millisecond))
	checkCopies(t, west.readAll("east.orders"), seqRecords("orders", parts, 0, n), nil)
	kdrtest.Eventually(t, 20*time.Second, func() (bool, string) {
		return w.Health() == nil, fmt.Sprintf("health %v", w.Health())
	})
	waitCommitted(t, east, f.Group(), "orders", n, 30*time.Second)
}

// waitAtLeast waits until topic on c holds at least n records (more are
// duplicates, which the caller's checks then report).
func waitAtLeast(t *testing.T, c *cluster, topic string, n int64, within time.Duration) {
	t.Helper()
	kdrtest.Eventually(t, within, func() (bool, string) {
		got := c.count(topic)
		return got >= n, fmt.Sprintf("%s has %d records, want %d", topic, got, n)
	})
}

// sourceErrors is the worker's kdr_mirror_errors_total{kind="source"}.
func sourceErrors(t *testing.T, w *running) float64 {
	t.Helper()
	return metricSum(t, w.reg, "kdr_mirror_errors_total", map[string]string{"kind": KindSource})
}

// checkStillRunning fails the test if the worker's Run has returned.
func checkStillRunning(t *testing.T, w *running) {
	t.Helper()
	select {
	case <-w.done:
		t.Fatal("Run returned while the source was down")
	default:
	}
	if !w.Status().Running {
		t.Fatal("the worker's status says it is not running")
	}
}

// waitCommitted waits until the worker group's committed positions in topic
// on c add up to n.
func waitCommitted(t *testing.T, c *cluster, group, topic string, n int64, within time.Duration) {
	t.Helper()
	kdrtest.Eventually(t, within, func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		offs, err := c.adm.FetchOffsets(ctx, group)
		if err != nil {
			return false, fmt.Sprintf("fetching the offsets of %s: %v", group, err)
		}
		var sum int64
		for _, o := range offs[topic] {
			if o.Err == nil && o.At > 0 {
				sum += o.At
			}
		}
		return sum == n, fmt.Sprintf("group %s committed %d records of %s, want %d", group, sum, topic, n)
	})
}

// waitGroupAt waits until group's committed offsets in topic on c are
// exactly want (partition → offset).
func waitGroupAt(t *testing.T, c *cluster, group, topic string, want map[int32]int64, within time.Duration) {
	t.Helper()
	kdrtest.Eventually(t, within, func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		got, err := c.adm.FetchOffsets(ctx, group)
		if err != nil {
			return false, fmt.Sprintf("fetching the offsets of %s: %v", group, err)
		}
		for p, o := range want {
			if r, ok := got.Lookup(topic, p); !ok || r.Err != nil || r.At != o {
				return false, fmt.Sprintf("group %s at %s/%d: %+v, want %d", group, topic, p, r, o)
			}
		}
		return true, ""
	})
}

// directClient is a client of c that bypasses proxy: c's broker advertises
// the proxy's address, which the client's dialer maps back to the broker's
// own listener.
func directClient(t *testing.T, c *cluster, proxy *faultproxy.Proxy) *kgo.Client {
	t.Helper()
	var d net.Dialer
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.addr), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.Dialer(func(ctx context.Context, network, host string) (net.Conn, error) {
			if host == proxy.Addr() {
				host = c.addr
			}
			return d.DialContext(ctx, network, host)
		}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// checkCopies checks the copies of want's records in got (a remote topic
// read by readAll): each is in the partition want names, the first copies
// in want's order, none missing, none extra, and none repeated unless
// mayRepeat (nil: none may) says it may be.
func checkCopies(t *testing.T, got map[int32][]*kgo.Record, want []*kgo.Record, mayRepeat func(*kgo.Record) bool) {
	t.Helper()
	wantBy := map[int32][]*kgo.Record{}
	for _, r := range want {
		wantBy[r.Partition] = append(wantBy[r.Partition], r)
	}
	for p := range got {
		if _, ok := wantBy[p]; !ok {
			t.Errorf("partition %d: %d records, want none", p, len(got[p]))
		}
	}
	for p, recs := range wantBy {
		index := map[string]int{}
		for i, r := range recs {
			index[string(r.Value)] = i
		}
		copies := make([]int, len(recs))
		var firsts []int
		var extra, badRepeats []string
		for _, r := range got[p] {
			i, ok := index[string(r.Value)]
			switch {
			case !ok:
				extra = append(extra, string(r.Value))
				continue
			case copies[i] == 0:
				firsts = append(firsts, i)
			case mayRepeat == nil || !mayRepeat(recs[i]):
				badRepeats = append(badRepeats, string(r.Value))
			}
			copies[i]++
		}
		var missing []string
		repeats := 0
		for i, n := range copies {
			if n == 0 {
				missing = append(missing, string(recs[i].Value))
			}
			repeats += max(n-1, 0)
		}
		if len(extra) > 0 {
			t.Errorf("partition %d: %d records not produced to it, first %s", p, len(extra), extra[0])
		}
		if len(missing) > 0 {
			t.Errorf("partition %d: %d of %d records missing, first %s", p, len(missing), len(recs), missing[0])
		}
		if len(badRepeats) > 0 {
			t.Errorf("partition %d: %d records copied more than once, first %s (%d repeats in all)", p, len(badRepeats), badRepeats[0], repeats)
		}
		if !slices.IsSorted(firsts) {
			t.Errorf("partition %d: copies out of order", p)
		}
		if repeats > 0 {
			t.Logf("partition %d: %d repeated copies (allowed)", p, repeats)
		}
	}
}

// TestMirrorStopsWhileSourceDown stops a worker whose source went silent
// (black hole) or refuses connections, and one with offset syncs and
// positions still to write. It must stop within kdr up's grace before it
// kills a worker (up.WorkerStopGrace, 15 s): franz-go waits for the answer
// to a request it has sent whatever the context, and stops took 67 s and
// 18 s before the leave was bounded (leaveTimeout), 30 s and more with
// syncs to write before the last commit was (stopGrace).
func TestMirrorStopsWhileSourceDown(t *testing.T) {
	for _, c := range []struct {
		blackHole, uncommitted bool
	}{{true, false}, {false, false}, {true, true}} {
		t.Run(fmt.Sprintf("blackhole=%v,uncommitted=%v", c.blackHole, c.uncommitted), func(t *testing.T) {
			blackHole := c.blackHole
			east, proxy := startBehindProxy(t)
			west := startCluster(t)
			east.createTopic("orders", 3)
			f := testFlow(east, west, "east", "west")
			f.Source.Brokers = []string{proxy.Addr()}
			if c.uncommitted {
				// The copies' syncs and positions are still to write when the
				// source goes down, and writing them would wait for the
				// default delivery timeout.
				f.CommitInterval = time.Hour
				f.DeliveryTimeout = 30 * time.Second
			}
			w := startWorker(t, f)
			east.produce(seqRecords("orders", 3, 0, 300)...)
			waitCount(t, west, "east.orders", 300, 30*time.Second)
			if !c.uncommitted {
				waitCommitted(t, east, f.Group(), "orders", 300, 30*time.Second)
			} else {
				// The first commit comes at once, the next in an hour, and
				// a rebalance commits too: produce until copies wait.
				n := 300
				kdrtest.Eventually(t, 30*time.Second, func() (bool, string) {
					var behind int64
					for _, ps := range w.Status().Partitions {
						behind += ps.NextOffset - max(ps.Committed, 0)
					}
					if behind > 0 {
						return true, ""
					}
					east.produce(seqRecords("orders", 3, n, 30)...)
					n += 30
					waitCount(t, west, "east.orders", int64(n), 30*time.Second)
					return false, "every copy committed"
				})
			}
			if blackHole {
				proxy.Cut()
			} else {
				proxy.Refuse()
			}
			// Until the worker has noticed: its fetches fail.
			kdrtest.Eventually(t, 30*time.Second, func() (bool, string) {
				e := w.Status().Errors[KindSource]
				return e.Count > 0, fmt.Sprintf("source errors %+v", e)
			})
			checkStopsInTime(t, w, "its source going down")
		})
	}
}

// checkStopsInTime stops w and fails the test, with every goroutine's
// stack, unless Run returns within 12 s: kdr up kills a worker after
// up.WorkerStopGrace (15 s), and a worker waits for silent clusters at most
// stopGrace plus leaveTimeout (8 s).
func checkStopsInTime(t *testing.T, w *running, after string) {
	t.Helper()
	start := time.Now()
	w.cancel()
	select {
	case <-w.done:
		t.Logf("stopped in %v", time.Since(start).Round(time.Millisecond))
	case <-time.After(12 * time.Second):
		var stacks strings.Builder
		_ = pprof.Lookup("goroutine").WriteTo(&stacks, 1)
		t.Fatalf("the worker did not stop within 12 s of %s; goroutines:\n%s", after, stacks.String())
	}
}

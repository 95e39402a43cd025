package up

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kdr-io/kdr/broker"
	"github.com/kdr-io/kdr/status"
	"github.com/kdr-io/kdr/topology"
)

// Bounds of one health probe.
const (
	clusterProbeTimeout = 2 * time.Second
	workerProbeTimeout  = time.Second
)

// health checks, while kdr up waits, that every cluster answers Metadata
// with all its brokers and a controller (through the Kafka protocol) and
// that every mirror worker's /healthz says 200.
type health struct {
	r       *runner
	clients map[string]*kgo.Client
	// brokerClients has, for each local cluster, one client per broker
	// (broker i+1 at index i), to ask that broker itself.
	brokerClients map[string][]*kgo.Client
	http          *http.Client
	slow          time.Time // when to say that waiting takes long

	mu         sync.Mutex
	registered map[*child]int // the broker pid last seen registered
}

func newHealth(r *runner) *health {
	h := &health{r: r, clients: map[string]*kgo.Client{}, brokerClients: map[string][]*kgo.Client{},
		http: &http.Client{Timeout: workerProbeTimeout}, registered: map[*child]int{}}
	for _, c := range r.topo.Clusters {
		cl, err := status.NewClient(c, kgo.ClientID("kdr-up"), kgo.DialTimeout(clusterProbeTimeout))
		if err != nil {
			r.logger.Error("kafka client", "cluster", c.Name, "err", err)
			continue
		}
		h.clients[c.Name] = cl
		if c.Local == nil {
			continue
		}
		for _, addr := range c.BootstrapServers() {
			bc, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ClientID("kdr-up"), kgo.DialTimeout(clusterProbeTimeout))
			if err != nil {
				r.logger.Error("kafka client", "cluster", c.Name, "broker", addr, "err", err)
				break
			}
			h.brokerClients[c.Name] = append(h.brokerClients[c.Name], bc)
		}
	}
	return h
}

func (h *health) close() {
	for _, cl := range h.clients {
		cl.Close()
	}
	for _, bcs := range h.brokerClients {
		for _, cl := range bcs {
			cl.Close()
		}
	}
}

// wait polls until the clusters (and, with workers, the mirror workers)
// are healthy, showing progress. It returns false if ctx ended first.
func (h *health) wait(ctx context.Context, workers bool) bool {
	h.slow = time.Now().Add(2 * time.Minute)
	tick := time.NewTicker(h.r.opts.PollInterval)
	defer tick.Stop()
	for {
		rows, ok := h.probe(ctx, workers)
		if ctx.Err() != nil {
			return false
		}
		h.r.console.Update(rows)
		if ok {
			return true
		}
		if time.Now().After(h.slow) {
			h.r.logger.Warn("still not healthy; see the logs", "logs", h.r.layout.Logs())
			h.slow = time.Now().Add(2 * time.Minute)
		}
		select {
		case <-ctx.Done():
			return false
		case <-tick.C:
		}
	}
}

// probe checks everything once, in parallel, and returns one row per
// cluster and flow and whether all that is awaited is healthy.
func (h *health) probe(ctx context.Context, workers bool) ([]Row, bool) {
	topo := h.r.topo
	clusterRows := make([]Row, len(topo.Clusters))
	clusterOK := make([]bool, len(topo.Clusters))
	var wg sync.WaitGroup
	for i, c := range topo.Clusters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			clusterRows[i], clusterOK[i] = h.cluster(ctx, c)
		}()
	}
	r := h.r
	r.mu.Lock()
	flows := make([]FlowEndpoints, len(r.endpoints.Flows))
	for i, f := range r.endpoints.Flows {
		// The workers too: a worker's (re)start writes its pid there.
		f.Workers = slices.Clone(f.Workers)
		flows[i] = f
	}
	r.mu.Unlock()
	flowRows := make([]Row, len(flows))
	flowOK := make([]bool, len(flows))
	for i, f := range flows {
		wg.Add(1)
		go func() {
			defer wg.Done()
			flowRows[i], flowOK[i] = h.flow(ctx, f, workers)
		}()
	}
	wg.Wait()
	ok := true
	for _, c := range clusterOK {
		ok = ok && c
	}
	if workers {
		for _, f := range flowOK {
			ok = ok && f
		}
	}
	return append(clusterRows, flowRows...), ok
}

func (h *health) cluster(ctx context.Context, c topology.Cluster) (Row, bool) {
	cl := h.clients[c.Name]
	if cl == nil {
		return Row{c.Name, "no client"}, false
	}
	pctx, cancel := context.WithTimeout(ctx, clusterProbeTimeout)
	defer cancel()
	meta, err := status.FetchMetadata(pctx, cl)
	s := status.ClusterFromMetadata(c, meta, err)
	if c.Local == nil {
		if !s.Reachable {
			return Row{c.Name, "existing cluster, not reachable yet"}, false
		}
		return Row{c.Name, fmt.Sprintf("existing cluster, %d brokers  ok", len(s.Brokers))}, true
	}
	// A restarted broker serves Metadata from its copy of the last run's
	// state, where brokers and leaders look healthy, until it registers
	// again: registering fences it, and its partitions may go offline
	// until the controller unfences it. So a cluster is healthy once
	// every broker has registered in this run, as the controller then
	// sees it: the controller's copy has every committed registration.
	registered := h.brokersRegistered(c.Name)
	if s.Reachable && s.ControllerID >= 0 && registered == c.Local.Brokers {
		if bcs := h.brokerClients[c.Name]; int(s.ControllerID) >= 1 && int(s.ControllerID) <= len(bcs) {
			req := kmsg.NewPtrMetadataRequest()
			req.Topics = nil // all topics
			meta, err := req.RequestWith(pctx, bcs[s.ControllerID-1].SeedBrokers()[0])
			s = status.ClusterFromMetadata(c, meta, err)
		} else {
			s.Healthy = false // a controller kdr up does not know is not this cluster's
		}
	} else {
		s.Healthy = false
	}
	text := fmt.Sprintf("brokers %d/%d", s.BrokersUp(), s.BrokersExpected)
	switch {
	case !s.Reachable:
		text += "  starting"
	case registered < c.Local.Brokers:
		text += fmt.Sprintf("  registered %d/%d", registered, c.Local.Brokers)
	case s.ControllerID < 0:
		text += "  no controller yet"
	case s.OfflinePartitions > 0:
		text += fmt.Sprintf("  controller %d  offline partitions %d", s.ControllerID, s.OfflinePartitions)
	default:
		text += fmt.Sprintf("  controller %d", s.ControllerID)
	}
	if s.Healthy {
		text += "  ok"
	}
	return Row{c.Name, text + h.restarts(h.r.brokers, c.Name)}, s.Healthy
}

// brokersRegistered counts the cluster's brokers whose running process
// has registered with the cluster: the Kafka protocol has no broker epoch
// to tell a registration of this run from the last run's, so kdr up reads
// the broker's log, which it keeps.
func (h *health) brokersRegistered(cluster string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, b := range h.r.brokers {
		if b.group != cluster {
			continue
		}
		pid := b.pid()
		if pid != 0 && h.registered[b] != pid && b.logged(broker.RegisteredMessage) {
			h.registered[b] = pid
		}
		if pid != 0 && h.registered[b] == pid {
			n++
		}
	}
	return n
}

// restarts says how often the group's children were restarted, if at all.
func (h *health) restarts(children []*child, group string) string {
	n, log := 0, ""
	for _, c := range children {
		if c.group == group && c.restartCount() > 0 {
			n += c.restartCount()
			log = c.logPath
		}
	}
	if n == 0 {
		return ""
	}
	return fmt.Sprintf("  (%d restarts; see %s)", n, log)
}

func (h *health) flow(ctx context.Context, f FlowEndpoints, started bool) (Row, bool) {
	if !started {
		return Row{f.Name, fmt.Sprintf("workers 0/%d  waiting for the clusters", len(f.Workers))}, false
	}
	healthy := 0
	var reasons []string
	for _, w := range f.Workers {
		if err := h.workerHealthy(ctx, w.MetricsURL); err != nil {
			reasons = append(reasons, err.Error())
		} else {
			healthy++
		}
	}
	text := fmt.Sprintf("workers %d/%d", healthy, len(f.Workers))
	if healthy == len(f.Workers) {
		text += "  ok"
	} else if len(reasons) > 0 {
		text += "  " + reasons[0]
	}
	return Row{f.Name, text + h.restarts(h.r.workersNow(), f.Name)}, healthy == len(f.Workers)
}

// workerHealthy asks a worker's /healthz.
func (h *health) workerHealthy(ctx context.Context, metricsURL string) error {
	url := strings.TrimSuffix(metricsURL, "/metrics") + "/healthz"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := h.http.Do(req)
	if err != nil {
		return fmt.Errorf("starting")
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var b [200]byte
		n, _ := resp.Body.Read(b[:])
		return fmt.Errorf("not ready: %s", strings.TrimSpace(string(b[:n])))
	}
	return nil
}

// waitMirrored waits until an order this run's demo producer wrote to
// topic on cluster source (its id at least the first id, received from
// first) is on the target of every flow out of source (under the flow's
// remote name), showing progress. Records already there, from an earlier
// run, do not count. It returns false if ctx ended first.
func (h *health) waitMirrored(ctx context.Context, source, topic string, first <-chan int64) bool {
	type target struct {
		flow, remote string
		cl           *kgo.Client
		arrived      bool
	}
	var targets []*target
	for _, f := range h.r.specsNow() {
		if f.Flow.SourceAlias != source {
			continue
		}
		c := h.r.topo.ClusterByName(f.Flow.TargetAlias)
		remote := f.Flow.Policy().RemoteTopic(source, topic)
		// From the end: this run's orders are still being written, so
		// those written before the read starts are followed by more.
		cl, err := status.NewClient(*c, kgo.ClientID("kdr-up"), kgo.ConsumeTopics(remote),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtEnd()), kgo.MetadataMinAge(h.r.opts.PollInterval))
		if err != nil {
			h.r.logger.Error("kafka client", "cluster", c.Name, "err", err)
			return false
		}
		defer cl.Close()
		targets = append(targets, &target{flow: f.Name(), remote: remote, cl: cl})
	}
	var from int64
	select {
	case <-ctx.Done():
		return false
	case from = <-first:
	}
	for {
		var rows []Row
		ok := true
		for _, t := range targets {
			if !t.arrived {
				pctx, cancel := context.WithTimeout(ctx, h.r.opts.PollInterval)
				t.cl.PollFetches(pctx).EachRecord(func(r *kgo.Record) {
					var o demoOrder
					if json.Unmarshal(r.Value, &o) == nil && o.OrderID >= from {
						t.arrived = true
					}
				})
				cancel()
			}
			state := fmt.Sprintf("%s: waiting for this run's orders (ids from %d)", t.remote, from)
			if t.arrived {
				state = fmt.Sprintf("%s: this run's orders arrived", t.remote)
			}
			rows = append(rows, Row{Key: t.flow + " data", Text: state})
			ok = ok && t.arrived
		}
		if ctx.Err() != nil {
			return false
		}
		h.r.console.Update(rows)
		if ok {
			return true
		}
	}
}

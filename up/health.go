package up

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

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
	http    *http.Client
	slow    time.Time // when to say that waiting takes long
}

func newHealth(r *runner) *health {
	h := &health{r: r, clients: map[string]*kgo.Client{}, http: &http.Client{Timeout: workerProbeTimeout}}
	for _, c := range r.topo.Clusters {
		cl, err := status.NewClient(c, kgo.ClientID("kdr-up"), kgo.DialTimeout(clusterProbeTimeout))
		if err != nil {
			r.logger.Error("kafka client", "cluster", c.Name, "err", err)
			continue
		}
		h.clients[c.Name] = cl
	}
	return h
}

func (h *health) close() {
	for _, cl := range h.clients {
		cl.Close()
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
	copy(flows, r.endpoints.Flows)
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
	text := fmt.Sprintf("brokers %d/%d", s.BrokersUp(), s.BrokersExpected)
	switch {
	case !s.Reachable:
		text += "  starting"
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

// waitMirrored polls until topic, produced on cluster source, has records
// on the target of every flow out of source (under the flow's remote
// name), showing progress. It returns false if ctx ended first.
func (h *health) waitMirrored(ctx context.Context, source, topic string) bool {
	type target struct{ flow, cluster, remote string }
	var targets []target
	for _, f := range h.r.specsNow() {
		if f.Flow.SourceAlias == source {
			targets = append(targets, target{f.Name(), f.Flow.TargetAlias, f.Flow.Policy().RemoteTopic(source, topic)})
		}
	}
	tick := time.NewTicker(h.r.opts.PollInterval)
	defer tick.Stop()
	for {
		var rows []Row
		ok := true
		for _, t := range targets {
			n, err := h.records(ctx, t.cluster, t.remote)
			state := fmt.Sprintf("%s: %d records arrived", t.remote, n)
			switch {
			case err != nil:
				state = fmt.Sprintf("%s: waiting for the first records (%v)", t.remote, err)
			case n == 0:
				state = t.remote + ": waiting for the first records"
			}
			rows = append(rows, Row{Key: t.flow + " data", Text: state})
			ok = ok && err == nil && n > 0
		}
		if ctx.Err() != nil {
			return false
		}
		h.r.console.Update(rows)
		if ok {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-tick.C:
		}
	}
}

// records is the number of records topic holds on cluster (the sum of its
// partitions' end offsets).
func (h *health) records(ctx context.Context, cluster, topic string) (int64, error) {
	cl := h.clients[cluster]
	if cl == nil {
		return 0, fmt.Errorf("no client for cluster %s", cluster)
	}
	cctx, cancel := context.WithTimeout(ctx, clusterProbeTimeout)
	defer cancel()
	ends, err := kadm.NewClient(cl).ListEndOffsets(cctx, topic)
	if err != nil {
		return 0, err
	}
	var n int64
	var perr error
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			perr = o.Err
			return
		}
		n += o.Offset
	})
	return n, perr
}

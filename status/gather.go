package status

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kdr-io/kdr/internal/bounded"
	"github.com/kdr-io/kdr/topology"
)

// DefaultTimeout bounds the queries to one cluster, and a flow's.
const DefaultTimeout = 5 * time.Second

// Options tune Gather.
type Options struct {
	// Timeout bounds each cluster's queries and each flow's (default
	// DefaultTimeout): a dead cluster costs at most this, then reads as
	// unreachable.
	Timeout time.Duration
	// WorkerMetrics maps a flow's name ("east->west") to its workers'
	// /metrics URLs, for the replication latency (kdr up's endpoints.json
	// lists them). Flows without any get no latency.
	WorkerMetrics map[string][]string
	// ClientOpts are added to every Kafka client (TLS, SASL, a logger).
	ClientOpts []kgo.Opt
	// HTTPClient fetches worker metrics (default: one with Timeout).
	HTTPClient *http.Client
	// Active is the active cluster as the failover state records it; ""
	// means the topology's default (the first active-passive primary).
	Active string
	// Flows are the flows to report on: those that run now, which after a
	// failover is not the direction the topology names (kdr status passes
	// the running ones of failover.CurrentFlows, the flows kdr up runs).
	// Nil means t.Flows().
	Flows []topology.FlowSpec
}

func (o Options) timeout() time.Duration {
	if o.Timeout > 0 {
		return o.Timeout
	}
	return DefaultTimeout
}

// probed is one cluster's client and the Metadata it answered.
type probed struct {
	client *kgo.Client
	meta   *kmsg.MetadataResponse // nil if unreachable
}

// Gather reports on every cluster and flow of t. It takes at most about
// twice opts.Timeout (clusters, then flows, each in parallel), whatever
// state the clusters are in.
func Gather(ctx context.Context, t *topology.Topology, opts Options) *Report {
	r := &Report{Topology: t.Metadata.Name, ActiveCluster: activeCluster(t)}
	if opts.Active != "" {
		r.ActiveCluster = opts.Active
	}
	r.Clusters = make([]Cluster, len(t.Clusters))
	probes := make(map[string]*probed, len(t.Clusters))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i, c := range t.Clusters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Few retries, as the failover orchestrator's clients: with
			// several bootstrap servers kgo moves to the next after a
			// refused dial and by default keeps at it for 20 tries, so a
			// stopped cluster used up the whole timeout and read as "no
			// answer: context deadline exceeded". Three try every broker
			// of a three-broker cluster and end, within about 2 s, with
			// the dial error ("connect: connection refused").
			cl, err := NewClient(c, append([]kgo.Opt{kgo.DialTimeout(opts.timeout()), kgo.RequestRetries(3)}, opts.ClientOpts...)...)
			if err != nil {
				r.Clusters[i] = unreachable(c, err)
				return
			}
			cctx, cancel := context.WithTimeout(ctx, opts.timeout())
			defer cancel()
			meta, err := FetchMetadata(cctx, cl)
			r.Clusters[i] = ClusterFromMetadata(c, meta, err)
			mu.Lock()
			probes[c.Name] = &probed{client: cl, meta: meta}
			mu.Unlock()
		}()
	}
	wg.Wait()
	defer func() {
		// Closing waits for dials in flight, which a hanging cluster
		// holds for up to the dial timeout; nothing waits for that.
		for _, p := range probes {
			go p.client.Close()
		}
	}()

	specs := opts.Flows
	if specs == nil {
		specs = t.Flows()
	}
	r.Flows = make([]Flow, len(specs))
	for i, spec := range specs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fctx, cancel := context.WithTimeout(ctx, opts.timeout())
			defer cancel()
			f, err := bounded.Call(fctx, func() (Flow, error) { return gatherFlow(fctx, spec, probes[spec.Flow.SourceAlias], opts), nil })
			if err != nil {
				f = Flow{Name: spec.Name(), Source: spec.Flow.SourceAlias, Target: spec.Flow.TargetAlias,
					State: FlowUnknown, LagRecords: -1, Error: fmt.Sprintf("no answer within %s", opts.timeout())}
			}
			r.Flows[i] = f
		}()
	}
	wg.Wait()

	r.Healthy = true
	for _, c := range r.Clusters {
		r.Healthy = r.Healthy && c.Healthy
	}
	for _, f := range r.Flows {
		r.Healthy = r.Healthy && f.Healthy
	}
	return r
}

// NewClient is a Kafka client of cluster c (not yet connected), with the
// cluster's TLS and SASL settings, then opts.
func NewClient(c topology.Cluster, opts ...kgo.Opt) (*kgo.Client, error) {
	sec, err := c.ClientOpts()
	if err != nil {
		return nil, err
	}
	all := append([]kgo.Opt{kgo.SeedBrokers(c.BootstrapServers()...), kgo.ClientID("kdr-status")}, sec...)
	return kgo.NewClient(append(all, opts...)...)
}

// FetchMetadata asks the cluster for all topics, bypassing the client's
// metadata cache so that broker changes show at once. It returns when ctx
// ends even if the client is still dialing (kgo bounds a dial by its dial
// timeout, not by the request's context).
func FetchMetadata(ctx context.Context, cl *kgo.Client) (*kmsg.MetadataResponse, error) {
	return bounded.Call(ctx, func() (*kmsg.MetadataResponse, error) {
		req := kmsg.NewPtrMetadataRequest()
		req.Topics = nil // all topics
		return req.RequestWith(ctx, cl)
	})
}

// activeCluster is the cluster producers and consumers use before any
// failover: the first active-passive pattern's primary ("" if there is
// none). Options.Active overrides it with the failover state's.
func activeCluster(t *topology.Topology) string {
	for _, p := range t.Replication {
		if p.Type == topology.ActivePassive {
			return p.Primary
		}
	}
	return ""
}

package topology

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kdr-io/kdr/mirror"
)

// DefaultClusterTimeout bounds each request Plan and Apply make to a
// cluster, connecting included.
const DefaultClusterTimeout = 10 * time.Second

// PlanOptions configure Plan, ApplyPlan and Apply.
type PlanOptions struct {
	// Timeout bounds each request to a cluster, connecting included
	// (default DefaultClusterTimeout). A cluster that does not answer
	// within it fails the plan with a *ClusterError.
	Timeout time.Duration
	// ClientOpts are added to every cluster's client, after the options
	// of the cluster's Security (Cluster.ClientOpts): a logger, or
	// settings the file cannot express.
	ClientOpts []kgo.Opt
	// ClusterOpts are added, after ClientOpts, to the client of the
	// cluster they are keyed by (the topology's cluster name).
	ClusterOpts map[string][]kgo.Opt
	// Flows are the flows to plan, in the direction they run: after a
	// failover the active-passive pattern's flow runs reversed, and its
	// topics are the ones the workers create (the CLI passes the running
	// flows of failover.CurrentFlows, as kdr up and kdr status use). Nil
	// means t.Flows().
	Flows []FlowSpec
	// IncludeUnchanged adds an ActionNone change for every topic that is
	// already as the topology wants it.
	IncludeUnchanged bool
	// Progress, if set, is called by ApplyPlan after each change it
	// performs (err nil on success). Calls are sequential.
	Progress func(c Change, err error)
}

func (o PlanOptions) timeout() time.Duration {
	if o.Timeout <= 0 {
		return DefaultClusterTimeout
	}
	return o.Timeout
}

// ClusterError is a request to one cluster that failed as a whole:
// the cluster could not be reached, or refused the request.
type ClusterError struct {
	Cluster   string   // the topology's name for it
	Bootstrap []string // the servers dialled
	Op        string   // what was being done ("reading metadata")
	Err       error
}

func (e *ClusterError) Error() string {
	return fmt.Sprintf("cluster %q (bootstrap %s): %s: %v", e.Cluster, strings.Join(e.Bootstrap, ","), e.Op, e.Err)
}

func (e *ClusterError) Unwrap() error { return e.Err }

// conn is a client to one cluster of the topology.
type conn struct {
	name      string
	bootstrap []string
	timeout   time.Duration
	cl        *kgo.Client
	adm       *kadm.Client
	brokers   int // from the first metadata answer
	dial      *dialHook
}

// conns opens each cluster once, on first use.
type conns struct {
	t    *Topology
	opts PlanOptions
	m    map[string]*conn
}

func newConns(t *Topology, opts PlanOptions) *conns {
	return &conns{t: t, opts: opts, m: map[string]*conn{}}
}

func (cs *conns) close() {
	for _, c := range cs.m {
		c.cl.Close()
	}
}

// get returns the connection to the named cluster, connecting and reading
// its metadata the first time.
func (cs *conns) get(ctx context.Context, name string) (*conn, error) {
	if c, ok := cs.m[name]; ok {
		return c, nil
	}
	cluster := cs.t.ClusterByName(name)
	if cluster == nil {
		return nil, fmt.Errorf("topology: cluster %q is not defined in clusters", name)
	}
	c := &conn{name: name, bootstrap: cluster.BootstrapServers(), timeout: cs.opts.timeout(), dial: &dialHook{}}
	security, err := cluster.ClientOpts()
	if err != nil {
		return nil, err
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(c.bootstrap...),
		kgo.ClientID("kdr-topology"),
		kgo.DialTimeout(c.timeout),
		kgo.RequestTimeoutOverhead(c.timeout),
		kgo.WithHooks(c.dial),
	}
	opts = append(opts, security...)
	opts = append(opts, cs.opts.ClientOpts...)
	opts = append(opts, cs.opts.ClusterOpts[name]...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, &ClusterError{Cluster: name, Bootstrap: c.bootstrap, Op: "building the client", Err: err}
	}
	c.cl, c.adm = cl, kadm.NewClient(cl)
	c.adm.SetTimeoutMillis(int32(c.timeout.Milliseconds()))
	err = c.do(ctx, "reading metadata", func(ctx context.Context) (err error) {
		c.brokers, err = mirror.BrokerCount(ctx, c.adm)
		return err
	})
	if err != nil {
		cl.Close()
		return nil, err
	}
	cs.m[name] = c
	return c, nil
}

// do runs one request under the cluster's timeout; a failure is a
// *ClusterError that names the cluster and, if connecting failed, why.
func (c *conn) do(ctx context.Context, op string, fn func(ctx context.Context) error) error {
	rctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	err := fn(rctx)
	if err == nil {
		return nil
	}
	if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
		err = fmt.Errorf("no answer within %s", c.timeout)
		if dialErr := c.dial.last(); dialErr != nil {
			err = fmt.Errorf("%w (connecting: %v)", err, dialErr)
		}
	}
	return &ClusterError{Cluster: c.name, Bootstrap: c.bootstrap, Op: op, Err: err}
}

// dialHook remembers the last failed connection attempt, to explain a
// request that timed out.
type dialHook struct {
	mu  sync.Mutex
	err error
}

var _ kgo.HookBrokerConnect = (*dialHook)(nil)

func (h *dialHook) OnBrokerConnect(_ kgo.BrokerMetadata, _ time.Duration, _ net.Conn, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.err = err
}

func (h *dialHook) last() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.err
}

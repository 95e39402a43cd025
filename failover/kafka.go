package failover

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kdr-io/kdr/status"
	"github.com/kdr-io/kdr/topology"
)

// clientID is the client.id of the orchestrator's own clients. It does not
// start with "kdr-mirror-", so a fenced cluster refuses its produce
// requests like any client's; only the resync copier uses the mirror's
// exception (resyncClientID).
const clientID = "kdr-failover"

// probeTimeout bounds one reachability probe of a cluster.
const probeTimeout = 5 * time.Second

// The write-fence configs of a kdr cluster (see broker/fence.go), set on
// the cluster-wide broker resource "".
const (
	configFenced      = "kdr.fenced"
	configFenceEpoch  = "kdr.fence.epoch"
	configFenceReason = "kdr.fence.reason"
)

// clusters holds one Kafka client per cluster, made on first use.
type clusters struct {
	topo *topology.Topology

	mu  sync.Mutex
	cls map[string]*kgo.Client
}

func newClusters(t *topology.Topology) *clusters {
	return &clusters{topo: t, cls: map[string]*kgo.Client{}}
}

// client is the cluster's shared client.
func (c *clusters) client(name string) (*kgo.Client, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cl := c.cls[name]; cl != nil {
		return cl, nil
	}
	tc := c.topo.ClusterByName(name)
	if tc == nil {
		return nil, fmt.Errorf("failover: no cluster %s in the topology", name)
	}
	cl, err := status.NewClient(*tc, kgo.ClientID(clientID), kgo.DialTimeout(3*time.Second),
		kgo.RequestRetries(3), kgo.RetryTimeout(10*time.Second))
	if err != nil {
		return nil, fmt.Errorf("failover: client of cluster %s: %w", name, err)
	}
	c.cls[name] = cl
	return cl, nil
}

// newClient is a new client of the cluster with extra options, for
// consuming or producing; the caller closes it.
func (c *clusters) newClient(name string, opts ...kgo.Opt) (*kgo.Client, error) {
	tc := c.topo.ClusterByName(name)
	if tc == nil {
		return nil, fmt.Errorf("failover: no cluster %s in the topology", name)
	}
	all := append([]kgo.Opt{kgo.ClientID(clientID), kgo.DialTimeout(3 * time.Second)}, opts...)
	return status.NewClient(*tc, all...)
}

func (c *clusters) admin(name string) (*kadm.Client, error) {
	cl, err := c.client(name)
	if err != nil {
		return nil, err
	}
	return kadm.NewClient(cl), nil
}

func (c *clusters) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, cl := range c.cls {
		go cl.Close() // a dead cluster's dials hold Close for the dial timeout
	}
	c.cls = map[string]*kgo.Client{}
}

// probe asks the cluster for Metadata within probeTimeout and judges it as
// kdr status does.
func (c *clusters) probe(ctx context.Context, name string) status.Cluster {
	tc := c.topo.ClusterByName(name)
	cl, err := c.client(name)
	if err != nil || tc == nil {
		return status.Cluster{Name: name, Error: fmt.Sprint(err)}
	}
	pctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	meta, err := status.FetchMetadata(pctx, cl)
	return status.ClusterFromMetadata(*tc, meta, err)
}

// reachable reports whether the cluster answers Metadata, and if not why.
func (c *clusters) reachable(ctx context.Context, name string) error {
	s := c.probe(ctx, name)
	if !s.Reachable {
		return fmt.Errorf("cluster %s (%s) unreachable: %s", name, bootstrapString(c.topo, name), s.Error)
	}
	return nil
}

func bootstrapString(t *topology.Topology, name string) string {
	if c := t.ClusterByName(name); c != nil {
		s := c.BootstrapServers()
		if len(s) > 0 {
			return s[0] + joinMore(len(s))
		}
	}
	return "?"
}

func joinMore(n int) string {
	if n > 1 {
		return fmt.Sprintf(" and %d more", n-1)
	}
	return ""
}

// fence is a cluster's write fence as its brokers report it.
type fence struct {
	Supported bool // the cluster has kdr's fence configs
	Fenced    bool
	Epoch     int64
	Reason    string
}

// readFence reads the cluster-wide fence configs.
func readFence(ctx context.Context, adm *kadm.Client) (fence, error) {
	rcs, err := adm.DescribeBrokerConfigs(ctx) // the cluster-wide resource ""
	if err != nil {
		return fence{}, fmt.Errorf("reading the write fence: %w", err)
	}
	rc, err := rcs.On("", nil)
	if err == nil && rc.Err != nil {
		err = rc.Err
	}
	if err != nil {
		return fence{}, fmt.Errorf("reading the write fence: %w", err)
	}
	var f fence
	for _, c := range rc.Configs {
		v := c.MaybeValue()
		switch c.Key {
		case configFenced:
			f.Supported = true
			f.Fenced = v == "true"
		case configFenceEpoch:
			f.Epoch, _ = strconv.ParseInt(v, 10, 64)
		case configFenceReason:
			f.Reason = v
		}
	}
	return f, nil
}

// errFenceUnsupported says a cluster has no kdr write fence (not kdr).
var errFenceUnsupported = errors.New("the cluster has no kdr.fenced config (not a kdr cluster): fencing skipped, clients are kept off it by discovery only")

// setFence fences (or unfences) the cluster at epoch. A cluster already
// in the wanted state at epoch or above is left alone.
// errNewerFence: the cluster carries a fence epoch newer than the caller's.
var errNewerFence = errors.New("newer fence")

func setFence(ctx context.Context, adm *kadm.Client, fenced bool, epoch int64, reason string) error {
	cur, err := readFence(ctx, adm)
	if err != nil {
		return err
	}
	if !cur.Supported {
		return errFenceUnsupported
	}
	if cur.Fenced == fenced && cur.Epoch >= epoch {
		return nil
	}
	if cur.Epoch > epoch {
		return fmt.Errorf("%w: the cluster's fence has epoch %d, newer than this operation's %d: a newer failover changed it", errNewerFence, cur.Epoch, epoch)
	}
	alter := []kadm.AlterConfig{
		{Op: kadm.SetConfig, Name: configFenced, Value: kadm.StringPtr(strconv.FormatBool(fenced))},
		{Op: kadm.SetConfig, Name: configFenceEpoch, Value: kadm.StringPtr(strconv.FormatInt(epoch, 10))},
		{Op: kadm.SetConfig, Name: configFenceReason, Value: kadm.StringPtr(reason)},
	}
	resps, err := adm.AlterBrokerConfigs(ctx, alter)
	if err != nil {
		return fmt.Errorf("setting the write fence: %w", err)
	}
	r, err := resps.On("", nil)
	if err != nil {
		return fmt.Errorf("setting the write fence: no answer for the cluster-wide resource")
	}
	if r.Err != nil {
		if r.ErrMessage != "" {
			return fmt.Errorf("setting the write fence: %w: %s", r.Err, r.ErrMessage)
		}
		return fmt.Errorf("setting the write fence: %w", r.Err)
	}
	return nil
}

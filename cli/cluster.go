package cli

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
)

// The write-fence configs of a kdr cluster: kdr's only dynamic broker
// configs, set on the cluster-wide broker resource "" (see broker/fence.go).
const (
	configFenced      = "kdr.fenced"
	configFenceEpoch  = "kdr.fence.epoch"
	configFenceReason = "kdr.fence.reason"
)

// NewCmdCluster builds `kdr cluster` and its subcommands.
func NewCmdCluster(streams IO, g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cluster",
		Short: "Show a kdr cluster and fence or unfence its writes",
		Long: `Inspect a kdr cluster and set its write fence.

A fenced cluster refuses every produce from clients with POLICY_VIOLATION, so producers fail fast and
move to the active cluster; consumers still read and commit, and kdr's mirror (client ids starting
with "kdr-mirror-") and the MM2 internal topics can still write, for the reverse flow after a
failover. The fence is cluster-wide, survives restarts, and carries a fencing epoch: a change with an
epoch lower than the cluster's is refused, so an orchestrator of an older failover cannot undo a
newer one. The commands use the Kafka admin API (the kdr.fenced, kdr.fence.epoch and
kdr.fence.reason configs of the cluster-wide broker resource), so any Kafka tool can do the same.

The cluster is given with --brokers or KDR_BROKERS.`,
		Args: cobra.NoArgs,
	}
	addConnFlags(cmd)
	cmd.AddCommand(
		NewCmdClusterFence(streams, g, nil),
		NewCmdClusterUnfence(streams, g, nil),
		NewCmdClusterStatus(streams, g, nil),
	)
	return cmd
}

// ClusterFenceOptions are the parsed options of `kdr cluster fence` and
// `kdr cluster unfence`.
type ClusterFenceOptions struct {
	IO   IO
	Conn ConnOptions

	// Fenced is true for fence, false for unfence.
	Fenced bool
	// Epoch is the failover's fencing epoch; never below the cluster's.
	Epoch  int64
	Reason string
	// DryRun asks the broker to validate the change without applying it.
	DryRun bool
}

// NewCmdClusterFence builds `kdr cluster fence`. runF replaces the run step
// in tests.
func NewCmdClusterFence(streams IO, g *globalOptions, runF func(*ClusterFenceOptions) error) *cobra.Command {
	return newCmdClusterSetFence(streams, g, runF, true)
}

// NewCmdClusterUnfence builds `kdr cluster unfence`. runF replaces the run
// step in tests.
func NewCmdClusterUnfence(streams IO, g *globalOptions, runF func(*ClusterFenceOptions) error) *cobra.Command {
	return newCmdClusterSetFence(streams, g, runF, false)
}

func newCmdClusterSetFence(streams IO, g *globalOptions, runF func(*ClusterFenceOptions) error, fenced bool) *cobra.Command {
	opts := &ClusterFenceOptions{IO: streams, Fenced: fenced}
	cmd := &cobra.Command{
		Use:   "fence --epoch N --reason TEXT",
		Short: "Make the cluster refuse client produce requests",
		Long: `Fence the cluster's writes: every broker refuses client produce requests with POLICY_VIOLATION and
the message "cluster fenced by failover epoch N: REASON; produce to the active cluster", until the
cluster is unfenced with an epoch at least N. Fencing again with the same or a higher epoch updates
the reason.`,
		Example: `  kdr cluster fence --brokers east1:9092 --epoch 7 --reason "failover to west"
  kdr cluster fence --brokers east1:9092 --epoch 7 --reason "failover to west" --dry-run`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var err error
			if opts.Conn, err = resolveConn(cmd, streams, g); err != nil {
				return err
			}
			if opts.Epoch < 0 {
				return usageError{fmt.Errorf("--epoch %d: want a non-negative fencing epoch", opts.Epoch)}
			}
			if opts.Fenced && strings.TrimSpace(opts.Reason) == "" {
				return usageError{fmt.Errorf("--reason is required: refused producers see it")}
			}
			if runF != nil {
				return runF(opts)
			}
			return runClusterSetFence(cmd.Context(), opts)
		},
	}
	if !fenced {
		cmd.Use = "unfence --epoch N"
		cmd.Short = "Let the cluster accept produce requests again"
		cmd.Long = `Lift the cluster's write fence. The epoch must be at least the one the cluster was fenced with;
a lower one is refused, so an orchestrator of an older failover cannot unfence a cluster that a
newer failover fenced.`
		cmd.Example = `  kdr cluster unfence --brokers east1:9092 --epoch 7
  kdr cluster unfence --brokers east1:9092 --epoch 8 --reason "failed back to east"`
	}
	f := cmd.Flags()
	f.Int64Var(&opts.Epoch, "epoch", -1, "fencing epoch of the failover (required; not below the cluster's)")
	reasonHelp := "why the cluster is fenced; refused producers see it (required)"
	if !fenced {
		reasonHelp = "note kept with the unfenced state (optional)"
	}
	f.StringVar(&opts.Reason, "reason", "", reasonHelp)
	f.BoolVar(&opts.DryRun, "dry-run", false, "have the broker validate the change without applying it")
	_ = cmd.MarkFlagRequired("epoch")
	return cmd
}

// clusterFenceChanged is the result of `kdr cluster fence` and `unfence`.
type clusterFenceChanged struct {
	Fenced bool   `json:"fenced"`
	Epoch  int64  `json:"epoch"`
	Reason string `json:"reason"`
	DryRun bool   `json:"dry_run"`
}

func runClusterSetFence(ctx context.Context, opts *ClusterFenceOptions) error {
	return runAdmin(ctx, opts.Conn, opts.IO.Out, func(ctx context.Context, adm *kadm.Client) (clusterFenceChanged, error) {
		return setClusterFence(ctx, adm, opts)
	}, printClusterFenceChanged, nil)
}

func setClusterFence(ctx context.Context, adm *kadm.Client, opts *ClusterFenceOptions) (clusterFenceChanged, error) {
	what := "fencing the cluster"
	if !opts.Fenced {
		what = "unfencing the cluster"
	}
	if opts.DryRun {
		what = "validating " + what
	}
	alter := []kadm.AlterConfig{
		{Op: kadm.SetConfig, Name: configFenced, Value: kadm.StringPtr(strconv.FormatBool(opts.Fenced))},
		{Op: kadm.SetConfig, Name: configFenceEpoch, Value: kadm.StringPtr(strconv.FormatInt(opts.Epoch, 10))},
		{Op: kadm.SetConfig, Name: configFenceReason, Value: kadm.StringPtr(opts.Reason)},
	}
	do := adm.AlterBrokerConfigs
	if opts.DryRun {
		do = adm.ValidateAlterBrokerConfigs
	}
	resps, err := do(ctx, alter) // no broker ids: the cluster-wide resource ""
	if err != nil {
		return clusterFenceChanged{}, opts.Conn.requestErr(what, err)
	}
	r, err := resps.On("", nil)
	if err != nil {
		return clusterFenceChanged{}, fmt.Errorf("%s: the broker's answer does not mention the cluster-wide resource", what)
	}
	if r.Err != nil {
		return clusterFenceChanged{}, fmt.Errorf("%s: %w", what, kafkaErr(r.Err, r.ErrMessage))
	}
	return clusterFenceChanged{Fenced: opts.Fenced, Epoch: opts.Epoch, Reason: opts.Reason, DryRun: opts.DryRun}, nil
}

func printClusterFenceChanged(w io.Writer, r clusterFenceChanged) error {
	var what string
	if r.Fenced {
		what = fmt.Sprintf("fenced at epoch %d (%s): clients can no longer produce", r.Epoch, r.Reason)
	} else {
		what = fmt.Sprintf("unfenced at epoch %d: clients can produce again", r.Epoch)
	}
	if r.DryRun {
		_, err := fmt.Fprintf(w, "Dry run: the cluster accepts being %s (nothing was changed)\n", what)
		return err
	}
	_, err := fmt.Fprintf(w, "Cluster %s\n", what)
	return err
}

// ClusterStatusOptions are the parsed options of `kdr cluster status`.
type ClusterStatusOptions struct {
	IO   IO
	Conn ConnOptions
}

// NewCmdClusterStatus builds `kdr cluster status`. runF replaces the run
// step in tests.
func NewCmdClusterStatus(streams IO, g *globalOptions, runF func(*ClusterStatusOptions) error) *cobra.Command {
	opts := &ClusterStatusOptions{IO: streams}
	return &cobra.Command{
		Use:   "status",
		Short: "Show the cluster's brokers, controller and write fence",
		Example: `  kdr cluster status --brokers east1:9092
  kdr cluster status --brokers east1:9092 --output json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var err error
			if opts.Conn, err = resolveConn(cmd, streams, g); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return runClusterStatus(cmd.Context(), opts)
		},
	}
}

// clusterStatus is the result of `kdr cluster status`.
type clusterStatus struct {
	ClusterID  string          `json:"cluster_id"`
	Controller int32           `json:"controller"`
	Brokers    []clusterBroker `json:"brokers"`
	Fenced     bool            `json:"fenced"`
	Epoch      int64           `json:"fence_epoch"`
	Reason     string          `json:"fence_reason"`
}

type clusterBroker struct {
	NodeID int32  `json:"node_id"`
	Addr   string `json:"addr"`
	Rack   string `json:"rack"`
}

func runClusterStatus(ctx context.Context, opts *ClusterStatusOptions) error {
	return runAdmin(ctx, opts.Conn, opts.IO.Out, func(ctx context.Context, adm *kadm.Client) (clusterStatus, error) {
		return readClusterStatus(ctx, adm, opts.Conn)
	}, printClusterStatus, nil)
}

func readClusterStatus(ctx context.Context, adm *kadm.Client, conn ConnOptions) (clusterStatus, error) {
	meta, err := adm.BrokerMetadata(ctx)
	if err != nil {
		return clusterStatus{}, conn.requestErr("reading cluster metadata", err)
	}
	res := clusterStatus{ClusterID: meta.Cluster, Controller: meta.Controller, Brokers: []clusterBroker{}}
	for _, b := range meta.Brokers {
		cb := clusterBroker{NodeID: b.NodeID, Addr: net.JoinHostPort(b.Host, strconv.Itoa(int(b.Port)))}
		if b.Rack != nil {
			cb.Rack = *b.Rack
		}
		res.Brokers = append(res.Brokers, cb)
	}
	slices.SortFunc(res.Brokers, func(a, b clusterBroker) int { return cmp.Compare(a.NodeID, b.NodeID) })
	rcs, err := adm.DescribeBrokerConfigs(ctx) // the cluster-wide resource ""
	if err != nil {
		return clusterStatus{}, conn.requestErr("reading the write fence", err)
	}
	rc, err := rcs.On("", nil)
	if err == nil && rc.Err != nil {
		err = kafkaErr(rc.Err, rc.ErrMessage)
	}
	if err != nil {
		return clusterStatus{}, fmt.Errorf("reading the write fence: %w", err)
	}
	found := false
	for _, c := range rc.Configs {
		v := c.MaybeValue()
		switch c.Key {
		case configFenced:
			found = true
			res.Fenced = v == "true"
		case configFenceEpoch:
			if res.Epoch, err = strconv.ParseInt(v, 10, 64); err != nil {
				return clusterStatus{}, fmt.Errorf("reading the write fence: %s is %q, not a number", configFenceEpoch, v)
			}
		case configFenceReason:
			res.Reason = v
		}
	}
	if !found {
		return clusterStatus{}, fmt.Errorf("reading the write fence: the cluster has no %s config; write fencing needs kdr brokers", configFenced)
	}
	return res, nil
}

func printClusterStatus(w io.Writer, s clusterStatus) error {
	fence := fmt.Sprintf("not fenced (epoch %d)", s.Epoch)
	if s.Fenced {
		fence = fmt.Sprintf("FENCED by failover epoch %d: %s (clients cannot produce)", s.Epoch, s.Reason)
	}
	fmt.Fprintf(w, "Cluster:     %s\nController:  %d\nFence:       %s\n\n", orDash(s.ClusterID), s.Controller, fence)
	t := newTable(w, "BROKER", "ADDRESS", "RACK")
	for _, b := range s.Brokers {
		t.row(b.NodeID, b.Addr, orDash(b.Rack))
	}
	return t.flush()
}

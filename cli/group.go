package cli

import (
	"context"
	"errors"
	"io"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
)

// NewCmdGroup builds `kdr group` and its subcommands.
func NewCmdGroup(streams IO, g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "group",
		Short: "List and describe consumer groups, and reset their offsets",
		Long: `Inspect the consumer groups of any Kafka cluster (Apache Kafka, Redpanda, MSK, kdr) and move their
committed offsets.

The cluster is given with --brokers or KDR_BROKERS.`,
		Args: cobra.NoArgs,
	}
	addConnFlags(cmd)
	cmd.AddCommand(
		NewCmdGroupList(streams, g, nil),
		NewCmdGroupDescribe(streams, g, nil),
		NewCmdGroupResetOffsets(streams, g, nil),
	)
	return cmd
}

// GroupListOptions are the parsed options of `kdr group list`.
type GroupListOptions struct {
	IO   IO
	Conn ConnOptions
}

// NewCmdGroupList builds `kdr group list`. runF replaces the run step in
// tests.
func NewCmdGroupList(streams IO, g *globalOptions, runF func(*GroupListOptions) error) *cobra.Command {
	opts := &GroupListOptions{IO: streams}
	return &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List consumer groups with their state and member count",
		Example: "  kdr group list --brokers 127.0.0.1:9092\n  kdr group list --output json",
		Args:    exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			if opts.Conn, err = resolveConn(cmd, streams, g); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return runGroupList(cmd.Context(), opts)
		},
	}
}

// groupList is the result of `kdr group list`.
type groupList struct {
	Groups []groupSummary `json:"groups"`
}

type groupSummary struct {
	Group        string `json:"group"`
	State        string `json:"state"`
	ProtocolType string `json:"protocol_type"`
	Members      int    `json:"members"`
}

func runGroupList(ctx context.Context, opts *GroupListOptions) error {
	return runAdmin(ctx, opts.Conn, opts.IO.Out, func(ctx context.Context, adm *kadm.Client) (groupList, error) {
		return listGroups(ctx, adm, opts.Conn)
	}, printGroupList, nil)
}

func listGroups(ctx context.Context, adm *kadm.Client, conn ConnOptions) (groupList, error) {
	res := groupList{Groups: []groupSummary{}}
	listed, err := adm.ListGroups(ctx)
	if err != nil {
		return res, conn.requestErr("listing groups", err)
	}
	if len(listed) == 0 {
		return res, nil
	}
	described, err := adm.DescribeGroups(ctx, listed.Groups()...)
	var shardErr *kadm.ShardErrors
	if err != nil && !errors.As(err, &shardErr) {
		return res, conn.requestErr("describing groups", err)
	}
	for _, l := range listed.Sorted() {
		s := groupSummary{Group: l.Group, State: l.State, ProtocolType: l.ProtocolType}
		// A group the coordinator could not describe is still listed,
		// with what ListGroups said.
		if d, ok := described[l.Group]; ok && d.Err == nil {
			s.State, s.ProtocolType, s.Members = d.State, d.ProtocolType, len(d.Members)
		}
		res.Groups = append(res.Groups, s)
	}
	return res, nil
}

func printGroupList(w io.Writer, r groupList) error {
	t := newTable(w, "GROUP", "STATE", "PROTOCOL-TYPE", "MEMBERS")
	for _, g := range r.Groups {
		t.row(g.Group, orDash(g.State), orDash(g.ProtocolType), g.Members)
	}
	return t.flush()
}

package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
)

// GroupDescribeOptions are the parsed options of `kdr group describe`.
type GroupDescribeOptions struct {
	IO   IO
	Conn ConnOptions

	Groups []string
}

// NewCmdGroupDescribe builds `kdr group describe`. runF replaces the run
// step in tests.
func NewCmdGroupDescribe(streams IO, g *globalOptions, runF func(*GroupDescribeOptions) error) *cobra.Command {
	opts := &GroupDescribeOptions{IO: streams}
	return &cobra.Command{
		Use:     "describe GROUP...",
		Short:   "Show groups' members, committed offsets and lag",
		Example: "  kdr group describe orders-app\n  kdr group describe orders-app billing --output json",
		Long: `Show each group's state, protocol and members (with their assigned partitions), and per partition
the committed offset, the log end offset and the lag between them.`,
		Args: minArgs(1, "one or more group names"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var err error
			if opts.Conn, err = resolveConn(cmd, streams, g); err != nil {
				return err
			}
			opts.Groups = args
			if runF != nil {
				return runF(opts)
			}
			return runGroupDescribe(cmd.Context(), opts)
		},
	}
}

// groupDescriptions is the result of `kdr group describe`.
type groupDescriptions struct {
	Groups []groupDescription `json:"groups"`
}

type groupDescription struct {
	Group        string        `json:"group"`
	Coordinator  int32         `json:"coordinator"`
	State        string        `json:"state"`
	ProtocolType string        `json:"protocol_type"`
	Protocol     string        `json:"protocol"`
	Members      []groupMember `json:"members"`
	Offsets      []groupOffset `json:"offsets"`
	// TotalLag sums the lag of the partitions whose lag is known.
	TotalLag int64 `json:"total_lag"`
}

type groupMember struct {
	MemberID    string            `json:"member_id"`
	InstanceID  *string           `json:"instance_id"`
	ClientID    string            `json:"client_id"`
	Host        string            `json:"host"`
	Assignments []topicPartitions `json:"assignments"`
}

// topicPartitions is some partitions of one topic.
type topicPartitions struct {
	Topic      string  `json:"topic"`
	Partitions []int32 `json:"partitions"`
}

type groupOffset struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	// CommittedOffset is -1 when the group has not committed.
	CommittedOffset int64 `json:"committed_offset"`
	LogEndOffset    int64 `json:"log_end_offset"`
	// Lag is -1 when it cannot be computed (see Error).
	Lag      int64  `json:"lag"`
	MemberID string `json:"member_id,omitempty"`
	ClientID string `json:"client_id,omitempty"`
	Error    string `json:"error,omitempty"`
}

func runGroupDescribe(ctx context.Context, opts *GroupDescribeOptions) error {
	return runAdmin(ctx, opts.Conn, opts.IO.Out, func(ctx context.Context, adm *kadm.Client) (groupDescriptions, error) {
		return describeGroups(ctx, adm, opts)
	}, printGroupDescriptions, func(r groupDescriptions) bool { return len(r.Groups) > 0 })
}

// describeGroups describes the groups it can and returns an error naming
// those it could not.
func describeGroups(ctx context.Context, adm *kadm.Client, opts *GroupDescribeOptions) (groupDescriptions, error) {
	res := groupDescriptions{Groups: []groupDescription{}}
	lags, err := adm.Lag(ctx, opts.Groups...)
	if err != nil {
		return res, opts.Conn.requestErr("describing groups", err)
	}
	var errs []error
	for _, name := range opts.Groups {
		l, ok := lags[name]
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("group %q: not in the broker's answer", name))
		case l.Error() != nil:
			errs = append(errs, fmt.Errorf("group %q: %w", name, l.Error()))
		default:
			res.Groups = append(res.Groups, describeGroup(l))
		}
	}
	return res, errors.Join(errs...)
}

func describeGroup(l kadm.DescribedGroupLag) groupDescription {
	d := groupDescription{
		Group:        l.Group,
		Coordinator:  l.Coordinator.NodeID,
		State:        l.State,
		ProtocolType: l.ProtocolType,
		Protocol:     l.Protocol,
		Members:      []groupMember{},
		Offsets:      []groupOffset{},
	}
	for _, m := range l.Members {
		gm := groupMember{MemberID: m.MemberID, InstanceID: m.InstanceID, ClientID: m.ClientID, Host: m.ClientHost, Assignments: []topicPartitions{}}
		if a, ok := m.Assigned.AsConsumer(); ok {
			for _, t := range a.Topics {
				ps := append([]int32{}, t.Partitions...)
				sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
				gm.Assignments = append(gm.Assignments, topicPartitions{Topic: t.Topic, Partitions: ps})
			}
			sort.Slice(gm.Assignments, func(i, j int) bool { return gm.Assignments[i].Topic < gm.Assignments[j].Topic })
		}
		d.Members = append(d.Members, gm)
	}
	for _, pl := range l.Lag.Sorted() {
		o := groupOffset{
			Topic:           pl.Topic,
			Partition:       pl.Partition,
			CommittedOffset: pl.Commit.At,
			LogEndOffset:    pl.End.Offset,
			Lag:             pl.Lag,
		}
		if pl.End.Err != nil {
			o.LogEndOffset = -1
		}
		if pl.Member != nil {
			o.MemberID, o.ClientID = pl.Member.MemberID, pl.Member.ClientID
		}
		if pl.Err != nil {
			o.Error = pl.Err.Error()
		}
		if o.Lag > 0 {
			d.TotalLag += o.Lag
		}
		d.Offsets = append(d.Offsets, o)
	}
	return d
}

func printGroupDescriptions(w io.Writer, r groupDescriptions) error {
	for i, d := range r.Groups {
		if i > 0 {
			fmt.Fprintln(w)
		}
		if err := printGroupDescription(w, d); err != nil {
			return err
		}
	}
	return nil
}

func printGroupDescription(w io.Writer, d groupDescription) error {
	fmt.Fprintf(w, "Group: %s\nState: %s\nCoordinator: %d\nProtocol: %s/%s\nMembers: %d\n",
		d.Group, orDash(d.State), d.Coordinator, orDash(d.ProtocolType), orDash(d.Protocol), len(d.Members))
	if len(d.Members) > 0 {
		t := newTable(w, "MEMBER-ID", "INSTANCE-ID", "CLIENT-ID", "HOST", "ASSIGNED")
		for _, m := range d.Members {
			instance := ""
			if m.InstanceID != nil {
				instance = *m.InstanceID
			}
			var assigned []string
			for _, a := range m.Assignments {
				assigned = append(assigned, a.Topic+":"+int32List(a.Partitions))
			}
			t.row(m.MemberID, orDash(instance), orDash(m.ClientID), orDash(m.Host), orDash(strings.Join(assigned, " ")))
		}
		if err := t.flush(); err != nil {
			return err
		}
	}
	if len(d.Offsets) == 0 {
		_, err := fmt.Fprintln(w, "Offsets: none committed")
		return err
	}
	fmt.Fprintf(w, "Total lag: %d\n", d.TotalLag)
	header := []string{"TOPIC", "PARTITION", "COMMITTED-OFFSET", "LOG-END-OFFSET", "LAG", "CLIENT-ID"}
	withErrors := slices.ContainsFunc(d.Offsets, func(o groupOffset) bool { return o.Error != "" })
	if withErrors {
		header = append(header, "ERROR")
	}
	t := newTable(w, header...)
	for _, o := range d.Offsets {
		lag := "-"
		if o.Lag >= 0 && o.Error == "" {
			lag = fmt.Sprint(o.Lag)
		}
		cells := []any{o.Topic, o.Partition, offsetString(o.CommittedOffset), offsetString(o.LogEndOffset), lag, orDash(o.ClientID)}
		if withErrors {
			cells = append(cells, o.Error)
		}
		t.row(cells...)
	}
	return t.flush()
}

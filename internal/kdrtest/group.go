package kdrtest

import (
	"context"

	"github.com/twmb/franz-go/pkg/kadm"
)

// GroupAssignment describes group and returns its member count, how many
// members each of topic's partitions is assigned to, and the group's state.
func GroupAssignment(ctx context.Context, adm *kadm.Client, group, topic string) (members int, owners map[int32]int, state string, err error) {
	dg, err := adm.DescribeGroups(ctx, group)
	if err != nil {
		return 0, nil, "", err
	}
	g := dg[group]
	owners = map[int32]int{}
	for _, m := range g.Members {
		if ca, ok := m.Assigned.AsConsumer(); ok {
			for _, tp := range ca.Topics {
				if tp.Topic == topic {
					for _, p := range tp.Partitions {
						owners[p]++
					}
				}
			}
		}
	}
	return len(g.Members), owners, g.State, nil
}

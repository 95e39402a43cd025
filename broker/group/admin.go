package group

import (
	"context"
	"sort"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ListGroups lists the groups this coordinator owns, filtered by state
// (v4+) and type (v5+; every kdr group is "classic").
func (c *Coordinator) ListGroups(_ context.Context, req *kmsg.ListGroupsRequest) *kmsg.ListGroupsResponse {
	resp := req.ResponseKind().(*kmsg.ListGroupsResponse)
	states := map[string]bool{}
	for _, s := range req.StatesFilter {
		states[s] = true
	}
	for _, t := range req.TypesFilter {
		if t == "classic" {
			req.TypesFilter = nil
		}
	}
	if len(req.TypesFilter) > 0 {
		return resp // asked only for types kdr does not have
	}
	for _, g := range c.allGroups() {
		g.mu.Lock()
		out := kmsg.NewListGroupsResponseGroup()
		out.Group, out.ProtocolType, out.GroupState, out.GroupType = g.id, g.protocolType, string(g.state), "classic"
		keep := g.state != Dead && (len(states) == 0 || states[string(g.state)])
		g.mu.Unlock()
		if keep {
			resp.Groups = append(resp.Groups, out)
		}
	}
	sort.Slice(resp.Groups, func(i, j int) bool { return resp.Groups[i].Group < resp.Groups[j].Group })
	return resp
}

// DescribeGroups reports each group's state and members. An unknown group is
// reported as Dead, as Kafka does.
func (c *Coordinator) DescribeGroups(_ context.Context, req *kmsg.DescribeGroupsRequest) *kmsg.DescribeGroupsResponse {
	resp := req.ResponseKind().(*kmsg.DescribeGroupsResponse)
	for _, id := range req.Groups {
		out := kmsg.NewDescribeGroupsResponseGroup()
		out.Group, out.State, out.AuthorizedOperations = id, string(Dead), -2147483648
		g, code := c.lookup(id, false)
		if code != nil {
			out.ErrorCode = code.Code
		}
		if g != nil {
			g.mu.Lock()
			out.State, out.ProtocolType = string(g.state), g.protocolType
			if g.state == Stable || g.state == CompletingRebalance {
				out.Protocol = g.protocol
			}
			ids := make([]string, 0, len(g.members))
			for mid := range g.members {
				ids = append(ids, mid)
			}
			sort.Strings(ids)
			for _, mid := range ids {
				m := g.members[mid]
				om := kmsg.NewDescribeGroupsResponseGroupMember()
				om.MemberID, om.InstanceID, om.ClientID, om.ClientHost = m.id, m.instanceID, m.clientID, m.host
				if out.Protocol != "" {
					om.ProtocolMetadata = m.metadataFor(g.protocol)
				}
				if g.state == Stable {
					om.MemberAssignment = m.assignment
				}
				out.Members = append(out.Members, om)
			}
			g.mu.Unlock()
		}
		resp.Groups = append(resp.Groups, out)
	}
	return resp
}

// DeleteGroups deletes groups that have no members, with tombstones for
// their metadata and offsets.
func (c *Coordinator) DeleteGroups(ctx context.Context, req *kmsg.DeleteGroupsRequest) *kmsg.DeleteGroupsResponse {
	resp := req.ResponseKind().(*kmsg.DeleteGroupsResponse)
	for _, id := range req.Groups {
		out := kmsg.NewDeleteGroupsResponseGroup()
		out.Group = id
		if code := c.deleteGroup(ctx, id); code != nil {
			out.ErrorCode = code.Code
		}
		resp.Groups = append(resp.Groups, out)
	}
	return resp
}

func (c *Coordinator) deleteGroup(ctx context.Context, id string) *kerr.Error {
	g, code := c.lookup(id, false)
	if code != nil {
		return code
	}
	if g == nil {
		return kerr.GroupIDNotFound
	}
	g.mu.Lock()
	if g.state == Dead {
		g.mu.Unlock()
		return kerr.GroupIDNotFound
	}
	if len(g.members) > 0 || g.state != Empty {
		g.mu.Unlock()
		return kerr.NonEmptyGroup
	}
	records := []Record{groupRecord(g.id, nil)}
	for t, parts := range g.offsets {
		for p := range parts {
			records = append(records, offsetRecord(g.id, t, p, nil))
		}
	}
	if err := c.log.Append(ctx, g.partition, records); err != nil {
		g.mu.Unlock()
		return appendErr(err)
	}
	g.offsets = map[string]map[int32]offset{}
	g.shutdown(kerr.CoordinatorNotAvailable)
	g.mu.Unlock()
	c.forget(g)
	c.logger.Info("group deleted", "group", id)
	return nil
}

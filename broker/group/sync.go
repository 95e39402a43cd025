package group

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// checkMember validates the member, instance id and generation of a sync,
// heartbeat or commit.
func checkMember(g *group, memberID string, instanceID *string, generation int32) (*member, *kerr.Error) {
	if instanceID != nil {
		if current, ok := g.static[*instanceID]; ok && current != memberID {
			return nil, kerr.FencedInstanceID
		}
	}
	m, ok := g.members[memberID]
	if !ok {
		return nil, kerr.UnknownMemberID
	}
	if generation != g.generation {
		return nil, kerr.IllegalGeneration
	}
	return m, nil
}

// SyncGroup takes the leader's assignment and hands each member its share.
func (c *Coordinator) SyncGroup(ctx context.Context, req *kmsg.SyncGroupRequest) *kmsg.SyncGroupResponse {
	resp := req.ResponseKind().(*kmsg.SyncGroupResponse)
	g, code := c.lookup(req.Group, false)
	if code == nil && g == nil {
		code = kerr.UnknownMemberID
	}
	if code != nil {
		resp.ErrorCode = code.Code
		return resp
	}
	g.mu.Lock()
	m, code := checkMember(g, req.MemberID, req.InstanceID, req.Generation)
	if code == nil && ((req.ProtocolType != nil && *req.ProtocolType != g.protocolType) || (req.Protocol != nil && *req.Protocol != g.protocol)) {
		code = kerr.InconsistentGroupProtocol
	}
	if code != nil {
		g.mu.Unlock()
		resp.ErrorCode = code.Code
		return resp
	}
	pt, proto := g.protocolType, g.protocol
	resp.ProtocolType, resp.Protocol = &pt, &proto
	c.touch(g, m)
	switch g.state {
	case PreparingRebalance:
		g.mu.Unlock()
		resp.ErrorCode = kerr.RebalanceInProgress.Code
		return resp
	case Stable:
		resp.MemberAssignment = m.assignment
		g.mu.Unlock()
		return resp
	}
	// CompletingRebalance.
	ch := make(chan syncResult, 1)
	if m.sync != nil {
		m.sync <- syncResult{code: kerr.RebalanceInProgress.Code}
	}
	m.sync = ch
	if m.id == g.leader {
		assigned := map[string][]byte{}
		for _, a := range req.GroupAssignment {
			assigned[a.MemberID] = a.MemberAssignment
		}
		for _, gm := range g.members {
			gm.assignment = assigned[gm.id]
		}
		if err := c.persistGroup(ctx, g); err != nil {
			// Kafka answers the whole group with the storage error and
			// runs another rebalance.
			ke := appendErr(err)
			for _, gm := range g.members {
				if gm.sync != nil {
					gm.sync <- syncResult{code: ke.Code}
					gm.sync = nil
				}
				gm.assignment = nil
			}
			c.prepareRebalance(g)
		} else {
			g.setState(Stable, c.now())
			for _, gm := range g.members {
				if gm.sync != nil {
					gm.sync <- syncResult{assignment: gm.assignment}
					gm.sync = nil
				}
			}
		}
	}
	g.mu.Unlock()

	select {
	case r := <-ch:
		resp.ErrorCode, resp.MemberAssignment = r.code, r.assignment
	case <-ctx.Done():
		g.mu.Lock()
		if m.sync == ch {
			m.sync = nil
		}
		g.mu.Unlock()
		resp.ErrorCode = kerr.RebalanceInProgress.Code
	}
	return resp
}

// Heartbeat keeps a member alive and tells it when to rejoin.
func (c *Coordinator) Heartbeat(_ context.Context, req *kmsg.HeartbeatRequest) *kmsg.HeartbeatResponse {
	resp := req.ResponseKind().(*kmsg.HeartbeatResponse)
	g, code := c.lookup(req.Group, false)
	if code == nil && g == nil {
		code = kerr.UnknownMemberID
	}
	if code != nil {
		resp.ErrorCode = code.Code
		return resp
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.state == Empty || g.state == Dead {
		resp.ErrorCode = kerr.UnknownMemberID.Code
		return resp
	}
	m, code := checkMember(g, req.MemberID, req.InstanceID, req.Generation)
	if code != nil {
		// During a join phase a member of the previous generation must
		// hear "rebalance" (not "illegal generation") so it rejoins.
		if code == kerr.IllegalGeneration && g.state == PreparingRebalance {
			code = kerr.RebalanceInProgress
		}
		resp.ErrorCode = code.Code
		return resp
	}
	c.touch(g, m)
	if g.state == PreparingRebalance {
		resp.ErrorCode = kerr.RebalanceInProgress.Code
	}
	return resp
}

// LeaveGroup removes members: one by member id (v0-v2) or a batch by member
// id or group instance id (v3+).
func (c *Coordinator) LeaveGroup(_ context.Context, req *kmsg.LeaveGroupRequest) *kmsg.LeaveGroupResponse {
	resp := req.ResponseKind().(*kmsg.LeaveGroupResponse)
	leaving := req.Members
	if req.Version < 3 {
		leaving = []kmsg.LeaveGroupRequestMember{{MemberID: req.MemberID}}
	}
	g, code := c.lookup(req.Group, false)
	if code == nil && g == nil {
		code = kerr.UnknownMemberID
	}
	if code != nil {
		resp.ErrorCode = code.Code
		return resp
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, l := range leaving {
		out := kmsg.NewLeaveGroupResponseMember()
		out.MemberID, out.InstanceID = l.MemberID, l.InstanceID
		id := l.MemberID
		if l.InstanceID != nil {
			current, ok := g.static[*l.InstanceID]
			switch {
			case !ok:
				out.ErrorCode = kerr.UnknownMemberID.Code
			case id != "" && id != current:
				out.ErrorCode = kerr.FencedInstanceID.Code
			}
			id = current
		}
		if out.ErrorCode == 0 {
			if t, ok := g.pending[id]; ok {
				t.Stop()
				delete(g.pending, id)
				c.tryCompleteJoin(g)
			} else if m, ok := g.members[id]; ok {
				c.logger.Info("group member left", "group", g.id, "member", id)
				c.removeMember(g, m, kerr.UnknownMemberID)
			} else {
				out.ErrorCode = kerr.UnknownMemberID.Code
			}
		}
		resp.Members = append(resp.Members, out)
		if req.Version < 3 {
			resp.ErrorCode = out.ErrorCode
		}
	}
	return resp
}

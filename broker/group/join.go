package group

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// JoinGroup adds or refreshes a member and answers when the join phase
// ends, as Kafka's JoinGroup does.
func (c *Coordinator) JoinGroup(ctx context.Context, req *kmsg.JoinGroupRequest) *kmsg.JoinGroupResponse {
	fail := func(code *kerr.Error, memberID string) *kmsg.JoinGroupResponse {
		resp := req.ResponseKind().(*kmsg.JoinGroupResponse)
		resp.ErrorCode, resp.MemberID, resp.Generation = code.Code, memberID, -1
		return resp
	}
	session := time.Duration(req.SessionTimeoutMillis) * time.Millisecond
	rebalance := time.Duration(req.RebalanceTimeoutMillis) * time.Millisecond
	if req.Version == 0 {
		rebalance = session // v0 has no rebalance timeout
	}
	if session < c.cfg.MinSessionTimeout || session > c.cfg.MaxSessionTimeout {
		return fail(kerr.InvalidSessionTimeout, req.MemberID)
	}
	if req.ProtocolType == "" || len(req.Protocols) == 0 {
		return fail(kerr.InconsistentGroupProtocol, req.MemberID)
	}
	g, kerrCode := c.lookup(req.Group, true)
	if kerrCode != nil {
		return fail(kerrCode, req.MemberID)
	}
	client := clientFrom(ctx)

	g.mu.Lock()
	if g.state == Dead {
		g.mu.Unlock()
		return fail(kerr.CoordinatorNotAvailable, req.MemberID)
	}
	if !g.supportsProtocols(req.ProtocolType, req.Protocols) {
		g.mu.Unlock()
		return fail(kerr.InconsistentGroupProtocol, req.MemberID)
	}
	m, resp := c.joinMember(g, req, client, session, rebalance)
	if resp != nil {
		g.mu.Unlock()
		return resp
	}
	ch := make(chan *kmsg.JoinGroupResponse, 1)
	m.join = ch
	if g.state != PreparingRebalance {
		c.prepareRebalance(g)
	} else if !g.initialUntil.IsZero() {
		// Another member arrived during the delayed first join: wait
		// one more delay, up to the rebalance timeout.
		g.initialUntil = minTime(c.now().Add(c.cfg.InitialRebalanceDelay), g.stateSince.Add(m.rebalanceTimeout))
	}
	c.tryCompleteJoin(g)
	g.mu.Unlock()

	select {
	case resp := <-ch:
		resp.Version = req.Version
		return resp
	case <-ctx.Done():
		// The client went away; it stays a member until the join phase
		// ends without it.
		g.mu.Lock()
		if m.join == ch {
			m.join = nil
		}
		g.mu.Unlock()
		select {
		case resp := <-ch:
			return resp
		default:
			return fail(kerr.RebalanceInProgress, m.id)
		}
	}
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// joinMember finds or creates the joining member. It returns an immediate
// response when the join needs no join phase (an error, MEMBER_ID_REQUIRED,
// or a rejoin that changes nothing), or the member to wait for.
func (c *Coordinator) joinMember(g *group, req *kmsg.JoinGroupRequest, client Client, session, rebalance time.Duration) (*member, *kmsg.JoinGroupResponse) {
	resp := func(code *kerr.Error, memberID string) *kmsg.JoinGroupResponse {
		r := req.ResponseKind().(*kmsg.JoinGroupResponse)
		r.ErrorCode, r.MemberID, r.Generation = code.Code, memberID, -1
		return r
	}
	newMember := func(id string) *member {
		m := &member{id: id, instanceID: req.InstanceID, clientID: client.ID, host: client.Host,
			protocols: req.Protocols, sessionTimeout: session, rebalanceTimeout: rebalance}
		if len(g.members) == 0 {
			g.protocolType = req.ProtocolType
		}
		g.members[id] = m
		if req.InstanceID != nil {
			g.static[*req.InstanceID] = id
		}
		if g.leader == "" {
			g.leader = id
		}
		c.touch(g, m)
		return m
	}

	if req.MemberID == "" {
		if len(g.members)+len(g.pending) >= c.cfg.MaxGroupSize {
			return nil, resp(kerr.GroupMaxSizeReached, "")
		}
		id := newMemberID(client.ID)
		if req.InstanceID != nil {
			if oldID, ok := g.static[*req.InstanceID]; ok {
				return c.replaceStatic(g, g.members[oldID], id, req, client, session, rebalance)
			}
			return newMember(id), nil
		}
		if req.Version >= 4 {
			// KIP-394: the member must rejoin with this id, so a
			// client that retries does not leave ghosts behind.
			g.pending[id] = time.AfterFunc(session, func() {
				g.mu.Lock()
				delete(g.pending, id)
				c.tryCompleteJoin(g)
				g.mu.Unlock()
			})
			return nil, resp(kerr.MemberIDRequired, id)
		}
		return newMember(id), nil
	}

	if t, ok := g.pending[req.MemberID]; ok {
		t.Stop()
		delete(g.pending, req.MemberID)
		if len(g.members) >= c.cfg.MaxGroupSize {
			return nil, resp(kerr.GroupMaxSizeReached, req.MemberID)
		}
		return newMember(req.MemberID), nil
	}
	m, ok := g.members[req.MemberID]
	if req.InstanceID != nil {
		if current, known := g.static[*req.InstanceID]; known && current != req.MemberID {
			return nil, resp(kerr.FencedInstanceID, req.MemberID)
		}
	}
	if !ok {
		return nil, resp(kerr.UnknownMemberID, req.MemberID)
	}
	if m.join != nil {
		// A retry of a join still waiting: answer the old one so only
		// the newest request waits.
		old := kmsg.NewPtrJoinGroupResponse()
		old.ErrorCode, old.MemberID, old.Generation = kerr.RebalanceInProgress.Code, m.id, -1
		m.join <- old
		m.join = nil
	}
	unchanged := sameProtocols(m.protocols, req.Protocols)
	m.protocols, m.sessionTimeout, m.rebalanceTimeout = req.Protocols, session, rebalance
	c.touch(g, m)
	// A follower that rejoins with nothing changed (it lost the answer)
	// gets the current generation again without a rebalance.
	if unchanged && m.id != g.leader && (g.state == Stable || g.state == CompletingRebalance) {
		r := g.joinResponse(m.id)
		r.Version = req.Version
		return nil, r
	}
	return m, nil
}

// replaceStatic handles a static member restarting (KIP-345): it takes a new
// member id, the old one is fenced, and when nothing changed and the group
// is stable it keeps its assignment without a rebalance.
func (c *Coordinator) replaceStatic(g *group, old *member, newID string, req *kmsg.JoinGroupRequest, client Client, session, rebalance time.Duration) (*member, *kmsg.JoinGroupResponse) {
	fenced := func(ch chan *kmsg.JoinGroupResponse) {
		r := kmsg.NewPtrJoinGroupResponse()
		r.ErrorCode, r.MemberID, r.Generation = kerr.FencedInstanceID.Code, old.id, -1
		ch <- r
	}
	if old.join != nil {
		fenced(old.join)
	}
	if old.sync != nil {
		old.sync <- syncResult{code: kerr.FencedInstanceID.Code}
		old.sync = nil
	}
	if old.session != nil {
		old.session.Stop()
	}
	delete(g.members, old.id)
	m := &member{id: newID, instanceID: req.InstanceID, clientID: client.ID, host: client.Host, protocols: req.Protocols,
		sessionTimeout: session, rebalanceTimeout: rebalance, assignment: old.assignment}
	g.members[newID] = m
	g.static[*req.InstanceID] = newID
	wasLeader := g.leader == old.id
	if wasLeader {
		g.leader = newID
	}
	c.touch(g, m)
	c.logger.Info("static member rejoined with a new member id", "group", g.id, "instance_id", *req.InstanceID, "old_member", old.id, "member", newID)
	if g.state == Stable && sameProtocols(old.protocols, req.Protocols) {
		c.persistGroupLocked(g)
		r := g.joinResponse(newID)
		r.Version = req.Version
		if wasLeader {
			// A restarted static leader learns the members but must not
			// reassign (KIP-814's SkipAssignment; before v9 its SyncGroup
			// in the Stable group simply returns its own assignment).
			r.SkipAssignment = true
			for _, gm := range g.members {
				jm := kmsg.NewJoinGroupResponseMember()
				jm.MemberID, jm.InstanceID, jm.ProtocolMetadata = gm.id, gm.instanceID, gm.metadataFor(g.protocol)
				r.Members = append(r.Members, jm)
			}
		}
		return nil, r
	}
	m.join = nil
	return m, nil
}

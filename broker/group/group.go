package group

import (
	"errors"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// State is a classic group's state, named as Kafka names it.
type State string

const (
	Empty               State = "Empty"
	PreparingRebalance  State = "PreparingRebalance"
	CompletingRebalance State = "CompletingRebalance"
	Stable              State = "Stable"
	Dead                State = "Dead"
)

// member is one group member.
type member struct {
	id               string
	instanceID       *string
	clientID, host   string
	protocols        []kmsg.JoinGroupRequestProtocol
	sessionTimeout   time.Duration
	rebalanceTimeout time.Duration
	assignment       []byte

	// join is set while the member waits in JoinGroup for the join phase
	// to end; sync while it waits in SyncGroup for the leader.
	join chan *kmsg.JoinGroupResponse
	sync chan syncResult

	session *time.Timer
}

type syncResult struct {
	code       int16
	assignment []byte
}

// offset is one committed offset.
type offset struct {
	offset      int64
	leaderEpoch int32
	metadata    string
	committedAt time.Time
}

// group is one consumer (or other classic-protocol) group. All fields are
// guarded by mu.
type group struct {
	id        string
	partition int32

	mu           sync.Mutex
	state        State
	stateSince   time.Time
	protocolType string
	protocol     string
	generation   int32
	leader       string
	members      map[string]*member
	static       map[string]string      // group.instance.id → member id
	pending      map[string]*time.Timer // ids handed out with MEMBER_ID_REQUIRED
	offsets      map[string]map[int32]offset

	rebalance    *time.Timer
	initialUntil time.Time // end of the delayed first join (group.initial.rebalance.delay.ms)
}

func newGroup(id string, partition int32, now time.Time) *group {
	return &group{
		id: id, partition: partition, state: Empty, stateSince: now,
		members: map[string]*member{}, static: map[string]string{}, pending: map[string]*time.Timer{},
		offsets: map[string]map[int32]offset{},
	}
}

func (g *group) setState(s State, now time.Time) {
	g.state, g.stateSince = s, now
}

// supportsProtocols reports whether every member supports at least one
// common protocol with protocols; an empty group supports anything.
func (g *group) supportsProtocols(protocolType string, protocols []kmsg.JoinGroupRequestProtocol) bool {
	if len(g.members) == 0 {
		return protocolType != "" && len(protocols) > 0
	}
	if protocolType != g.protocolType {
		return false
	}
	for _, p := range protocols {
		all := true
		for _, m := range g.members {
			if !hasProtocol(m.protocols, p.Name) {
				all = false
				break
			}
		}
		if all {
			return true
		}
	}
	return false
}

func hasProtocol(ps []kmsg.JoinGroupRequestProtocol, name string) bool {
	for _, p := range ps {
		if p.Name == name {
			return true
		}
	}
	return false
}

// selectProtocol picks the protocol to use as Kafka does: among protocols
// every member supports, each member votes for its most preferred one, and
// the most votes wins (ties go to the first candidate of the leader).
func (g *group) selectProtocol() string {
	var candidates []string
	leader := g.members[g.leader]
	for _, p := range leader.protocols {
		all := true
		for _, m := range g.members {
			if !hasProtocol(m.protocols, p.Name) {
				all = false
				break
			}
		}
		if all {
			candidates = append(candidates, p.Name)
		}
	}
	votes := map[string]int{}
	for _, m := range g.members {
		for _, p := range m.protocols {
			if contains(candidates, p.Name) {
				votes[p.Name]++
				break
			}
		}
	}
	best := ""
	for _, c := range candidates {
		if best == "" || votes[c] > votes[best] {
			best = c
		}
	}
	return best
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func (m *member) metadataFor(protocol string) []byte {
	for _, p := range m.protocols {
		if p.Name == protocol {
			return p.Metadata
		}
	}
	return nil
}

// sameProtocols reports whether a rejoin changes nothing the leader would
// assign on.
func sameProtocols(a, b []kmsg.JoinGroupRequestProtocol) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Name != b[i].Name || string(a[i].Metadata) != string(b[i].Metadata) {
			return false
		}
	}
	return true
}

// touch restarts a member's session timer: it is removed if the timer runs
// out before its next heartbeat, join or sync.
func (c *Coordinator) touch(g *group, m *member) {
	if m.session != nil {
		m.session.Stop()
	}
	id := m.id
	m.session = time.AfterFunc(m.sessionTimeout, func() { c.expire(g, id) })
}

func (c *Coordinator) expire(g *group, memberID string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	m, ok := g.members[memberID]
	if !ok || g.state == Dead {
		return
	}
	if m.join != nil {
		return // waiting in a join phase: the rebalance timeout decides
	}
	c.logger.Info("group member session expired", "group", g.id, "member", memberID, "session_timeout", m.sessionTimeout)
	c.removeMember(g, m, kerr.UnknownMemberID)
}

// removeMember drops m and moves the group on: a rebalance for the others,
// or Empty when nobody is left.
func (c *Coordinator) removeMember(g *group, m *member, reason *kerr.Error) {
	if m.session != nil {
		m.session.Stop()
	}
	if m.join != nil {
		resp := kmsg.NewPtrJoinGroupResponse()
		resp.ErrorCode, resp.MemberID, resp.Generation = reason.Code, m.id, -1
		m.join <- resp
		m.join = nil
	}
	if m.sync != nil {
		m.sync <- syncResult{code: reason.Code}
		m.sync = nil
	}
	delete(g.members, m.id)
	if m.instanceID != nil && g.static[*m.instanceID] == m.id {
		delete(g.static, *m.instanceID)
	}
	switch g.state {
	case Stable, CompletingRebalance:
		c.prepareRebalance(g)
	case PreparingRebalance:
		c.tryCompleteJoin(g)
	}
}

// prepareRebalance starts a join phase: members are told (through
// heartbeats and sync answers) to rejoin within the rebalance timeout.
func (c *Coordinator) prepareRebalance(g *group) {
	if g.state == PreparingRebalance {
		return
	}
	for _, m := range g.members {
		if m.sync != nil {
			m.sync <- syncResult{code: kerr.RebalanceInProgress.Code}
			m.sync = nil
		}
	}
	wasEmpty := g.state == Empty
	g.setState(PreparingRebalance, c.now())
	timeout := time.Duration(0)
	for _, m := range g.members {
		timeout = max(timeout, m.rebalanceTimeout)
	}
	if wasEmpty && c.cfg.InitialRebalanceDelay > 0 {
		// Delayed first join: wait for more members so a group
		// starting up does not rebalance once per member.
		g.initialUntil = c.now().Add(c.cfg.InitialRebalanceDelay)
		timeout = min(c.cfg.InitialRebalanceDelay, max(timeout, time.Millisecond))
	}
	c.armRebalance(g, timeout)
}

func (c *Coordinator) armRebalance(g *group, d time.Duration) {
	if g.rebalance != nil {
		g.rebalance.Stop()
	}
	gen := g.generation
	g.rebalance = time.AfterFunc(d, func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		if g.state != PreparingRebalance || g.generation != gen {
			return
		}
		if !g.initialUntil.IsZero() && c.now().Before(g.initialUntil) {
			c.armRebalance(g, g.initialUntil.Sub(c.now()))
			return
		}
		c.completeJoin(g)
	})
}

// tryCompleteJoin ends the join phase early once every member has rejoined
// (and the initial delay, if any, is over).
func (c *Coordinator) tryCompleteJoin(g *group) {
	if g.state != PreparingRebalance || len(g.pending) > 0 {
		return
	}
	if !g.initialUntil.IsZero() && c.now().Before(g.initialUntil) {
		return
	}
	for _, m := range g.members {
		if m.join == nil {
			return
		}
	}
	c.completeJoin(g)
}

// completeJoin ends the join phase: members that did not rejoin are dropped,
// the generation advances, a protocol is chosen and every waiting JoinGroup
// is answered (the leader with the member list).
func (c *Coordinator) completeJoin(g *group) {
	if g.rebalance != nil {
		g.rebalance.Stop()
		g.rebalance = nil
	}
	g.initialUntil = time.Time{}
	for _, m := range g.members {
		if m.join == nil {
			c.logger.Info("group member did not rejoin in time", "group", g.id, "member", m.id)
			if m.session != nil {
				m.session.Stop()
			}
			delete(g.members, m.id)
			if m.instanceID != nil && g.static[*m.instanceID] == m.id {
				delete(g.static, *m.instanceID)
			}
		}
	}
	g.generation++
	c.metrics.rebalances.Inc()
	if len(g.members) == 0 {
		g.setState(Empty, c.now())
		g.protocol, g.leader = "", ""
		c.persistGroupLocked(g)
		c.logger.Info("group is empty", "group", g.id, "generation", g.generation)
		return
	}
	if _, ok := g.members[g.leader]; !ok {
		g.leader = ""
		for id := range g.members {
			if g.leader == "" || id < g.leader {
				g.leader = id
			}
		}
	}
	g.protocol = g.selectProtocol()
	g.setState(CompletingRebalance, c.now())
	var all []kmsg.JoinGroupResponseMember
	for _, m := range g.members {
		jm := kmsg.NewJoinGroupResponseMember()
		jm.MemberID, jm.InstanceID, jm.ProtocolMetadata = m.id, m.instanceID, m.metadataFor(g.protocol)
		all = append(all, jm)
	}
	for _, m := range g.members {
		resp := g.joinResponse(m.id)
		if m.id == g.leader {
			resp.Members = all
		}
		m.join <- resp
		m.join = nil
		c.touch(g, m)
	}
	c.logger.Info("group rebalanced", "group", g.id, "generation", g.generation, "protocol", g.protocol,
		"leader", g.leader, "members", len(g.members))
}

func (g *group) joinResponse(memberID string) *kmsg.JoinGroupResponse {
	resp := kmsg.NewPtrJoinGroupResponse()
	pt, proto := g.protocolType, g.protocol
	resp.Generation, resp.ProtocolType, resp.Protocol = g.generation, &pt, &proto
	resp.LeaderID, resp.MemberID = g.leader, memberID
	return resp
}

// shutdown answers every blocked request with code and stops timers; the
// group is dropped from memory afterwards.
func (g *group) shutdown(code *kerr.Error) {
	if g.rebalance != nil {
		g.rebalance.Stop()
	}
	for _, t := range g.pending {
		t.Stop()
	}
	for _, m := range g.members {
		if m.session != nil {
			m.session.Stop()
		}
		if m.join != nil {
			resp := kmsg.NewPtrJoinGroupResponse()
			resp.ErrorCode, resp.Generation = code.Code, -1
			m.join <- resp
			m.join = nil
		}
		if m.sync != nil {
			m.sync <- syncResult{code: code.Code}
			m.sync = nil
		}
	}
	g.setState(Dead, time.Now())
}

// resumeAfterLoad restarts a group read back from the log: members come back
// with their assignments and must heartbeat within their session timeout.
func (g *group) resumeAfterLoad(c *Coordinator) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.members) == 0 {
		g.setState(Empty, c.now())
		return
	}
	g.setState(Stable, c.now())
	for _, m := range g.members {
		c.touch(g, m)
	}
}

func asKerr(err error) (*kerr.Error, bool) {
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke, true
	}
	return nil, false
}

package raftstore

import (
	"errors"
	"sync/atomic"

	"github.com/hashicorp/raft"
)

// errUnknownPeer: no address is known for a server id. Raft then dials the
// address it holds for the server and logs a warning.
var errUnknownPeer = errors.New("raftstore: no address known for the server")

// peers picks the address this node dials to reach another node: its
// Config.PeerAddresses override when it has one, else the address the
// caller learned (from the raft configuration, the leader's heartbeats,
// Voters or Seeds). Every outbound connection goes through it: raft's
// transport as its ServerAddressProvider, kdr RPC through dialAddr and
// seedAddr. Safe for concurrent use; read-only after Open, except r.
type peers struct {
	self      raft.ServerID
	selfAddr  raft.ServerAddress
	overrides map[int32]string
	voters    map[int32]string // Config.Voters, until raft has a configuration
	seeds     map[string]int32 // a voter's address in Voters → its id
	r         atomic.Pointer[raft.Raft]
}

var _ raft.ServerAddressProvider = (*peers)(nil)

func newPeers(cfg Config, selfAddr string) *peers {
	p := &peers{
		self: serverID(cfg.NodeID), selfAddr: raft.ServerAddress(selfAddr),
		overrides: map[int32]string{}, voters: map[int32]string{}, seeds: map[string]int32{},
	}
	for id, addr := range cfg.PeerAddresses {
		if id != cfg.NodeID {
			p.overrides[id] = addr
		}
	}
	for _, v := range cfg.Voters {
		p.voters[v.ID] = v.Addr
		p.seeds[v.Addr] = v.ID
	}
	return p
}

// any reports whether there is an override at all; without one raft's
// transport is left exactly as it is by default.
func (p *peers) any() bool { return len(p.overrides) > 0 }

// dialAddr is where to dial node id, whose address as learned is known.
func (p *peers) dialAddr(id int32, known string) string {
	if o, ok := p.overrides[id]; ok {
		return o
	}
	return known
}

// seedAddr is where to dial a seed: a seed that is a voter's address in
// Voters is reached through that voter's override.
func (p *peers) seedAddr(seed string) string {
	if id, ok := p.seeds[seed]; ok {
		return p.dialAddr(id, seed)
	}
	return seed
}

// ServerAddr is raft's ServerAddressProvider: the transport asks it for
// every connection, and for the address it puts in its own messages (this
// node as leader or candidate), which must stay the advertised one.
func (p *peers) ServerAddr(id raft.ServerID) (raft.ServerAddress, error) {
	if id == p.self {
		return p.selfAddr, nil
	}
	n, err := parseServerID(id)
	if err != nil {
		return "", err
	}
	if o, ok := p.overrides[n]; ok {
		return raft.ServerAddress(o), nil
	}
	if r := p.r.Load(); r != nil {
		// GetConfiguration reads raft's latest configuration without
		// going through its main loop, so it is safe from the transport.
		for _, srv := range r.GetConfiguration().Configuration().Servers {
			if srv.ID == id {
				return srv.Address, nil
			}
		}
	}
	if a, ok := p.voters[n]; ok {
		return raft.ServerAddress(a), nil
	}
	return "", errUnknownPeer
}

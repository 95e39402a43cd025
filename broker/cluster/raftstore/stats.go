package raftstore

import (
	"slices"
	"strconv"

	"github.com/hashicorp/raft"
)

// Stats is a point-in-time view of one node, for tests and admin output.
type Stats struct {
	NodeID    int32
	RaftState string // Follower, Candidate, Leader or Shutdown
	// LeaderID is the leader this node knows of, -1 for none.
	LeaderID          int32
	Term              uint64
	LastIndex         uint64
	CommitIndex       uint64
	AppliedIndex      uint64 // raft index of the last command applied here
	LastSnapshotIndex uint64
	// Voters and NonVoters are the raft configuration's members, sorted.
	Voters    []int32
	NonVoters []int32
	// Bootstrapped is true when this Open bootstrapped a new cluster.
	Bootstrapped       bool
	ForwardedProposals uint64
	LeaderChanges      uint64
	UndecodableEntries uint64
}

// Stats returns this node's view of raft.
func (s *Store) Stats() Stats {
	st := Stats{
		NodeID:             s.cfg.NodeID,
		RaftState:          s.r.State().String(),
		LeaderID:           -1,
		Term:               s.r.CurrentTerm(),
		LastIndex:          s.r.LastIndex(),
		CommitIndex:        s.r.CommitIndex(),
		AppliedIndex:       s.fsm.appliedIndex(),
		Bootstrapped:       s.bootstrapped,
		ForwardedProposals: s.forwarded.Load(),
		LeaderChanges:      s.leaderChanges.Load(),
		UndecodableEntries: s.fsm.undecodable.Load(),
	}
	if id, _, ok := s.Leader(); ok {
		st.LeaderID = id
	}
	st.LastSnapshotIndex, _ = strconv.ParseUint(s.r.Stats()["last_snapshot_index"], 10, 64)
	if f := s.r.GetConfiguration(); f.Error() == nil {
		for _, srv := range f.Configuration().Servers {
			n, err := strconv.ParseInt(string(srv.ID), 10, 32)
			if err != nil {
				continue
			}
			if srv.Suffrage == raft.Voter {
				st.Voters = append(st.Voters, int32(n))
			} else {
				st.NonVoters = append(st.NonVoters, int32(n))
			}
		}
	}
	slices.Sort(st.Voters)
	slices.Sort(st.NonVoters)
	return st
}

package raftstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"
)

// joinRetryDelay is the pause between rounds over the seeds.
const joinRetryDelay = 200 * time.Millisecond

// joinRequest asks the leader to add (or re-address) a server.
type joinRequest struct {
	ID    int32  `json:"id"`
	Addr  string `json:"addr"`
	Voter bool   `json:"voter,omitempty"`
}

type removeRequest struct {
	ID int32 `json:"id"`
}

// join asks the seeds, in turn, to have the leader add this node as a
// non-voter, until one accepts or ctx ends.
func (s *Store) join(ctx context.Context) error {
	body, err := json.Marshal(joinRequest{ID: s.cfg.NodeID, Addr: s.addr})
	if err != nil {
		return err
	}
	var lastErr error
	for round := 1; ; round++ {
		for _, seed := range s.cfg.Seeds {
			cctx, cancel := context.WithTimeout(ctx, s.cfg.RPCTimeout)
			_, err := s.pool.call(cctx, s.peers.seedAddr(seed), kindJoin, body)
			cancel()
			if err == nil {
				s.logger.Info("raftstore: joined the cluster as a non-voter", "seed", seed)
				return nil
			}
			lastErr = err
		}
		if round == 1 || round%10 == 0 {
			s.logger.Warn("raftstore: join not accepted yet; retrying (a seed closing the connection at once may be a broker of another cluster: check --cluster-id)", "seeds", s.cfg.Seeds, "round", round, "err", lastErr)
		}
		select {
		case <-time.After(joinRetryDelay):
		case <-s.closing:
			return ErrClosed
		case <-ctx.Done():
			return fmt.Errorf("raftstore: joining through Seeds %v: %w (last error: %v)", s.cfg.Seeds, ctx.Err(), lastErr)
		}
	}
}

// handleJoin runs on the leader: it adds the server unless the
// configuration already has it at that address (joins are idempotent).
func (s *Store) handleJoin(ctx context.Context, body []byte) ([]byte, error) {
	var req joinRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, fmt.Errorf("raftstore: decoding join request: %w", err)
	}
	if req.ID < 0 {
		return nil, fmt.Errorf("raftstore: join request for negative node id %d", req.ID)
	}
	if err := checkDialable(req.Addr); err != nil {
		return nil, fmt.Errorf("raftstore: join request for node %d: address %q: %v", req.ID, req.Addr, err)
	}
	cf := s.r.GetConfiguration()
	if err := cf.Error(); err != nil {
		return nil, raftErr(err)
	}
	id, addr := serverID(req.ID), raft.ServerAddress(req.Addr)
	for _, srv := range cf.Configuration().Servers {
		if srv.ID == id && srv.Address == addr && (srv.Suffrage == raft.Voter || !req.Voter) {
			return nil, nil
		}
	}
	var f raft.IndexFuture
	if req.Voter {
		f = s.r.AddVoter(id, addr, 0, timeoutFor(ctx, s.cfg.RPCTimeout))
	} else {
		f = s.r.AddNonvoter(id, addr, 0, timeoutFor(ctx, s.cfg.RPCTimeout))
	}
	if err := f.Error(); err != nil {
		return nil, raftErr(err)
	}
	s.logger.Info("raftstore: added server", "id", req.ID, "addr", req.Addr, "voter", req.Voter)
	return nil, nil
}

// handleRemove runs on the leader.
func (s *Store) handleRemove(ctx context.Context, body []byte) ([]byte, error) {
	var req removeRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, fmt.Errorf("raftstore: decoding remove request: %w", err)
	}
	if err := s.r.RemoveServer(serverID(req.ID), 0, timeoutFor(ctx, s.cfg.RPCTimeout)).Error(); err != nil {
		return nil, raftErr(err)
	}
	s.logger.Info("raftstore: removed server", "id", req.ID)
	return nil, nil
}

// AddVoter makes node id at addr a voter (adding it, or promoting a
// non-voter), through the leader.
func (s *Store) AddVoter(ctx context.Context, id int32, addr string) error {
	body, err := json.Marshal(joinRequest{ID: id, Addr: addr, Voter: true})
	if err != nil {
		return err
	}
	_, err = s.RequestLeader(ctx, kindJoin, body)
	return err
}

// RemoveServer removes node id from the raft configuration, through the
// leader. A removed node shuts its raft down.
func (s *Store) RemoveServer(ctx context.Context, id int32) error {
	body, err := json.Marshal(removeRequest{ID: id})
	if err != nil {
		return err
	}
	_, err = s.RequestLeader(ctx, kindRemove, body)
	return err
}

// raftErr maps raft's leadership errors to ErrNotLeader so callers retry.
func raftErr(err error) error {
	if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) {
		return fmt.Errorf("%w: %v", ErrNotLeader, err)
	}
	return err
}

// timeoutFor is ctx's remaining time, or def without a deadline.
func timeoutFor(ctx context.Context, def time.Duration) time.Duration {
	if dl, ok := ctx.Deadline(); ok {
		return max(time.Until(dl), time.Millisecond)
	}
	return def
}

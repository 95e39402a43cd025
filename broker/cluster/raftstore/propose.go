package raftstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"

	"github.com/kdr-io/kdr/broker/cluster"
)

// proposeResponse is the leader's answer to a forwarded proposal. The
// follower takes the command's result and error from its own application of
// Index, so results are never re-encoded; the leader's error is a fallback
// for when that application was not seen (a snapshot covered the entry).
type proposeResponse struct {
	Index   uint64 `json:"index"`
	Code    int16  `json:"code,omitempty"`
	Message string `json:"message,omitempty"`
	Failed  bool   `json:"failed,omitempty"`
}

// Propose commits cmd through raft and returns its result once it is applied
// on this node. On the leader it is appended directly; a follower forwards it
// to the leader and then waits for its own FSM to apply the same entry, so
// State() reflects the change when Propose returns and the result is the
// same Go value the leader computed. Kafka-level failures are *cluster.Error.
// Without a leader before ctx ends the error wraps ErrNoLeader.
func (s *Store) Propose(ctx context.Context, cmd cluster.Command) (any, error) {
	return s.propose(ctx, cmd, true)
}

// ProposeCommitted is Propose for a caller that needs the command committed
// but not applied on this node: a follower returns on the leader's answer,
// with the outcome the leader saw. A broker's controlled shutdown uses it.
// When the last brokers stop together, the leader may commit a follower's
// command and stop before telling the follower, which then never applies
// it and would wait out the caller's deadline (5 s more to stop kdr up).
func (s *Store) ProposeCommitted(ctx context.Context, cmd cluster.Command) error {
	_, err := s.propose(ctx, cmd, false)
	return err
}

func (s *Store) propose(ctx context.Context, cmd cluster.Command, applyHere bool) (any, error) {
	start := time.Now()
	defer func() { s.metrics.commitSeconds.Observe(time.Since(start).Seconds()) }()
	data, err := cluster.Encode(cmd)
	if err != nil {
		return nil, err
	}
	select {
	case <-s.closing:
		return nil, ErrClosed
	default:
	}
	if s.IsLeader() {
		_, r, err := s.applyAsLeader(ctx, data)
		if !errors.Is(err, ErrNotLeader) {
			if err != nil {
				return nil, err
			}
			return r.result, r.err
		}
	}
	return s.forward(ctx, data, applyHere)
}

// applyAsLeader appends data and waits for it to be applied here. The error
// wraps ErrNotLeader when this node is not the leader, in which case nothing
// was appended.
func (s *Store) applyAsLeader(ctx context.Context, data []byte) (uint64, applyResult, error) {
	if err := ctx.Err(); err != nil {
		return 0, applyResult{}, err
	}
	f := s.r.Apply(data, timeoutFor(ctx, s.cfg.RPCTimeout))
	if err := s.await(ctx, f); err != nil {
		return 0, applyResult{}, fmt.Errorf("%w: appended, then stopped waiting for the commit: %w", ErrOutcomeUnknown, err)
	}
	switch err := f.Error(); {
	case err == nil:
	case errors.Is(err, raft.ErrNotLeader):
		return 0, applyResult{}, ErrNotLeader
	case errors.Is(err, raft.ErrLeadershipLost):
		return 0, applyResult{}, fmt.Errorf("%w: %w", ErrOutcomeUnknown, err)
	case errors.Is(err, raft.ErrRaftShutdown):
		return 0, applyResult{}, ErrClosed
	default:
		return 0, applyResult{}, fmt.Errorf("raftstore: committing the command: %w", err)
	}
	r, ok := f.Response().(applyResult)
	if !ok {
		return 0, applyResult{}, fmt.Errorf("raftstore: unexpected FSM response %T", f.Response())
	}
	return f.Index(), r, nil
}

// forward sends the proposal to the leader, then, if applyHere, waits until
// this node has applied the entry and returns its own result for it;
// otherwise it returns the leader's outcome.
func (s *Store) forward(ctx context.Context, data []byte, applyHere bool) (any, error) {
	s.forwarded.Add(1)
	untrack := s.fsm.track()
	defer untrack()
	body, err := s.RequestLeader(ctx, kindPropose, data)
	if err != nil {
		return nil, err
	}
	var resp proposeResponse
	if err := json.Unmarshal(body, &resp); err != nil {
		return nil, fmt.Errorf("raftstore: decoding the leader's answer: %w", err)
	}
	if !applyHere {
		return nil, resp.outcome()
	}
	if err := s.fsm.waitApplied(ctx, s.closing, resp.Index); err != nil {
		return nil, err
	}
	if r, ok := s.fsm.take(resp.Index); ok {
		return r.result, r.err
	}
	// A snapshot installed here covered the entry, so this node never saw
	// the command's own result.
	if err := resp.outcome(); err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("%w (log index %d)", ErrResultUnavailable, resp.Index)
}

// outcome is the error the leader's FSM returned for the command, if any.
func (r proposeResponse) outcome() error {
	switch {
	case r.Failed && r.Code != 0:
		return kafkaError(r.Code, r.Message)
	case r.Failed:
		return errors.New(r.Message)
	}
	return nil
}

// handlePropose runs on the leader for a forwarded proposal.
func (s *Store) handlePropose(ctx context.Context, body []byte) ([]byte, error) {
	if _, err := cluster.Decode(body); err != nil {
		return nil, err
	}
	idx, r, err := s.applyAsLeader(ctx, body)
	if err != nil {
		return nil, err
	}
	resp := proposeResponse{Index: idx}
	if r.err != nil {
		we := toWireError(r.err)
		resp.Failed, resp.Code, resp.Message = true, we.Code, we.Message
	}
	return json.Marshal(resp)
}

// await waits for f without blocking past ctx or Close; raft's futures
// themselves only time out enqueueing.
func (s *Store) await(ctx context.Context, f raft.Future) error {
	done := make(chan struct{})
	go func() {
		_ = f.Error()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-s.closing:
		return ErrClosed
	}
}

// barrierResponse is the leader's answer to "kdr.barrier".
type barrierResponse struct {
	Index uint64 `json:"index"`
}

// Sync waits until this node has applied every command the leader had
// committed when Sync was called, so State() afterwards shows every change
// acknowledged before it — for a restarted broker, or a read that must see
// another node's write. Without a leader the error wraps ErrNoLeader.
func (s *Store) Sync(ctx context.Context) error {
	body, err := s.RequestLeader(ctx, kindBarrier, nil)
	if err != nil {
		return err
	}
	var resp barrierResponse
	if err := json.Unmarshal(body, &resp); err != nil {
		return fmt.Errorf("raftstore: decoding the leader's barrier answer: %w", err)
	}
	return s.fsm.waitApplied(ctx, s.closing, resp.Index)
}

// handleBarrier runs on the leader: once every earlier entry is applied
// here, it answers with the index of the last command applied.
func (s *Store) handleBarrier(ctx context.Context, _ []byte) ([]byte, error) {
	f := s.r.Barrier(timeoutFor(ctx, s.cfg.RPCTimeout))
	if err := s.await(ctx, f); err != nil {
		return nil, err
	}
	if err := f.Error(); err != nil {
		return nil, raftErr(err)
	}
	return json.Marshal(barrierResponse{Index: s.fsm.appliedIndex()})
}

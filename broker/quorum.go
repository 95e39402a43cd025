package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/kdr-io/kdr/broker/cluster"
	"github.com/kdr-io/kdr/broker/cluster/local"
	"github.com/kdr-io/kdr/broker/cluster/raftstore"
)

// heartbeatKind is the controller request every broker sends to the
// metadata leader to keep its session alive.
const heartbeatKind = "broker.heartbeat"

type heartbeatRequest struct {
	NodeID int32 `json:"node_id"`
	Epoch  int64 `json:"epoch"`
}

type heartbeatResponse struct {
	Fenced bool `json:"fenced"`
}

// openMetadata opens the metadata store: a local file for a single broker,
// the raft quorum for a replicated cluster.
func (b *Broker) openMetadata() error {
	dir := filepath.Join(b.cfg.DataDir, "__cluster_metadata")
	cc := b.cfg.Cluster
	if !cc.Replicated() {
		s, err := local.Open(dir, b.cfg.ClusterID)
		if err != nil {
			return err
		}
		b.meta = s
		return nil
	}
	voters := make([]raftstore.Voter, len(cc.Quorum))
	for i, v := range cc.Quorum {
		voters[i] = raftstore.Voter{ID: v.ID, Addr: v.Addr}
	}
	// A joining broker waits here until a member accepted it; a voter
	// does not wait for a quorum (see register).
	ctx, cancel := context.WithTimeout(b.ctx, 2*time.Minute)
	defer cancel()
	s, err := raftstore.Open(ctx, raftstore.Config{
		NodeID: b.cfg.NodeID, RaftAddr: cc.RaftListen, Dir: filepath.Join(dir, "raft"), ClusterID: b.cfg.ClusterID,
		Voters: voters, Seeds: cc.Join, PeerAddresses: cc.PeerRaftAddresses,
		Logger: b.log.With("component", "raft"), Registerer: b.reg,
	})
	if err != nil {
		return fmt.Errorf("metadata quorum: %w", err)
	}
	b.meta, b.raft = s, s
	ctrl, err := cluster.NewController(s, cluster.ControllerConfig{
		SessionTimeout: cc.SessionTimeout,
		// Check sessions often: a dead broker's partitions move at most a
		// tenth of the session timeout after it expires.
		TickInterval: min(max(cc.SessionTimeout/10, 50*time.Millisecond), time.Second),
		// Brokers retry heartbeats on the new leader at once: three
		// intervals (plus the raft election) are ample to hear from every
		// live one, and a dead old controller's partitions move sooner.
		ActivationGrace:              min(3*cc.HeartbeatInterval+time.Second, cc.SessionTimeout),
		PreferredLeaderCheckInterval: preferredInterval(cc.LeaderImbalanceCheckInterval),
		DefaultMinInsyncReplicas:     int(b.cfg.MinInsyncReplicas),
		Logger:                       b.log.With("component", "controller"),
		Registerer:                   b.reg,
	})
	if err != nil {
		return err
	}
	s.OnLeadership(func(isLeader bool) {
		ctrl.SetActive(isLeader)
		b.log.Info("metadata leadership changed", "controller", isLeader)
	})
	if s.IsLeader() {
		ctrl.SetActive(true)
	}
	s.SetHandler(heartbeatKind, func(ctx context.Context, body []byte) ([]byte, error) {
		var req heartbeatRequest
		if err := json.Unmarshal(body, &req); err != nil {
			return nil, fmt.Errorf("bad heartbeat: %w", err)
		}
		fenced, err := ctrl.Heartbeat(ctx, req.NodeID, req.Epoch)
		if err != nil {
			return nil, err
		}
		return json.Marshal(heartbeatResponse{Fenced: fenced})
	})
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		ctrl.Run(b.ctx)
	}()
	return nil
}

func preferredInterval(d time.Duration) time.Duration {
	if d == 0 {
		return -1 // the controller's "disabled"
	}
	return d
}

// register records this broker (address, rack) in the cluster metadata and
// returns its broker epoch. In a replicated cluster it retries until the
// quorum has a leader, logging progress, so brokers may start in any order.
func (b *Broker) register() (int64, error) {
	var rack *string
	if b.cfg.Rack != "" {
		rack = &b.cfg.Rack
	}
	cmd := &cluster.RegisterBroker{Broker: cluster.Broker{NodeID: b.cfg.NodeID, Host: b.host, Port: b.port, Rack: rack}}
	start := time.Now()
	for attempt := 0; ; attempt++ {
		ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
		res, err := b.meta.Propose(ctx, cmd)
		cancel()
		if err == nil {
			br, _ := res.(cluster.Broker)
			return br.Epoch, nil
		}
		if b.raft == nil || b.ctx.Err() != nil {
			return 0, fmt.Errorf("registering broker: %w", err)
		}
		if attempt%5 == 0 {
			b.log.Info("waiting for the metadata quorum to register", "waited", time.Since(start).Round(time.Second), "err", err)
		}
		select {
		case <-b.ctx.Done():
			return 0, b.ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// heartbeat keeps this broker's session with the controller alive until
// ctx ends; a fenced broker is unfenced by the controller on its next
// heartbeat. A broker whose registration the controller no longer knows
// registers again.
func (b *Broker) heartbeat(ctx context.Context, epoch int64) {
	defer b.wg.Done()
	t := time.NewTicker(b.cfg.Cluster.HeartbeatInterval)
	defer t.Stop()
	lastFenced := false
	for {
		body, _ := json.Marshal(heartbeatRequest{NodeID: b.cfg.NodeID, Epoch: epoch})
		rctx, cancel := context.WithTimeout(ctx, b.cfg.Cluster.HeartbeatInterval*2)
		raw, err := b.raft.RequestLeader(rctx, heartbeatKind, body)
		cancel()
		var resp heartbeatResponse
		if err == nil {
			err = json.Unmarshal(raw, &resp)
		}
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			b.log.Debug("heartbeat failed", "err", err)
			if errors.Is(err, kerr.StaleBrokerEpoch) {
				if e, rerr := b.register(); rerr == nil {
					epoch = e
					b.epoch.Store(e)
				}
			}
		case resp.Fenced != lastFenced:
			lastFenced = resp.Fenced
			b.log.Info("broker fencing changed", "fenced", resp.Fenced)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// controlledShutdown moves this broker's leaderships to other ISR members
// before it stops, as Kafka's controlled shutdown does: heartbeats stop and
// the broker fences itself, so clients are redirected at once instead of
// after the session timeout.
func (b *Broker) controlledShutdown() {
	epoch := b.epoch.Load()
	if b.raft == nil || epoch == 0 {
		return
	}
	b.stopHeartbeat()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	lctx, giveUp := context.WithCancelCause(ctx)
	defer giveUp(nil)
	go giveUpWhenLeaderless(lctx, giveUp, func() bool { _, _, ok := b.raft.Leader(); return ok }, leaderlessPatience)
	start := time.Now()
	// Committed is enough: a stopping broker has no use for its own copy
	// of the metadata, and may never get it when the leader stops too.
	if err := b.raft.ProposeCommitted(lctx, &cluster.FenceBroker{NodeID: b.cfg.NodeID, Epoch: epoch}); err != nil {
		if cause := context.Cause(lctx); errors.Is(cause, errLeaderless) {
			err = cause
		}
		b.log.Warn("controlled shutdown: could not hand over leaderships; the controller will fence this broker after the session timeout", "err", err)
		return
	}
	b.log.Info("controlled shutdown: leaderships handed over", "took", time.Since(start).Round(time.Millisecond))
}

// leaderlessPatience is how long a controlled shutdown waits without any
// metadata leader before it gives up. An election after a leader's loss
// takes about one election timeout (500 ms); when the last majority of a
// cluster stops together (kdr up stopping a topology), no leader can be
// elected again, and a broker whose handover was sent to a leader that
// stopped first would otherwise wait out the whole 5 s deadline.
const leaderlessPatience = time.Second

// errLeaderless is why a controlled shutdown gave up early.
var errLeaderless = fmt.Errorf("no metadata leader for %v: too few brokers left for a quorum to hand leaderships over", leaderlessPatience)

// giveUpWhenLeaderless cancels ctx with errLeaderless once hasLeader has
// reported no leader at more than leaderlessChecks checks in a row, taken
// patience/leaderlessChecks apart (a ticker never ticks early, so that
// spans more than patience); it returns when ctx ends.
func giveUpWhenLeaderless(ctx context.Context, cancel context.CancelCauseFunc, hasLeader func() bool, patience time.Duration) {
	t := time.NewTicker(patience / leaderlessChecks)
	defer t.Stop()
	without := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if hasLeader() {
				without = 0
			} else if without++; without > leaderlessChecks {
				cancel(errLeaderless)
				return
			}
		}
	}
}

// leaderlessChecks is how many times giveUpWhenLeaderless looks for a
// leader within its patience.
const leaderlessChecks = 10

// controllerID is the node acting as controller (the metadata leader), as
// Metadata and DescribeCluster report it; -1 while there is none.
func (b *Broker) controllerID() int32 {
	if b.raft == nil {
		return b.cfg.NodeID
	}
	if id, _, ok := b.raft.Leader(); ok {
		return id
	}
	return -1
}

// liveBrokers counts registered brokers that are not fenced.
func liveBrokers(st *cluster.State) int {
	n := 0
	for _, br := range st.Brokers {
		if !br.Fenced {
			n++
		}
	}
	return n
}

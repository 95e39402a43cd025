package raftstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	wal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/metadb"

	"github.com/kdr-io/kdr/broker/cluster"
)

// Errors. Kafka-level command failures are *cluster.Error instead.
var (
	// ErrNoLeader: no leader could be reached before the context ended.
	ErrNoLeader = errors.New("raftstore: no raft leader")
	// ErrNotLeader: the node asked is not the leader (any more).
	ErrNotLeader = errors.New("raftstore: this node is not the raft leader")
	// ErrClosed: the store was closed.
	ErrClosed = errors.New("raftstore: store is closed")
	// ErrUnknownCommand: a log entry holds a command this version cannot
	// decode; it is skipped and counted.
	ErrUnknownCommand = errors.New("raftstore: log entry holds a command this node cannot decode")
	// ErrOutcomeUnknown: the command may or may not have been applied —
	// leadership was lost while it committed, the context ended after it was
	// appended, or the connection to the leader failed mid-request. Sync and
	// read State() to find out.
	ErrOutcomeUnknown = errors.New("raftstore: the command may or may not have been applied")
	// ErrResultUnavailable: a forwarded command succeeded and is applied on
	// this node, but through an installed snapshot, so its result value is
	// not known here. Rare: the node was more than TrailingLogs behind.
	ErrResultUnavailable = errors.New("raftstore: command applied, but its result was not seen on this node (covered by a snapshot)")
)

// Paths under Config.Dir.
const (
	walDir          = "wal"   // raft-wal segments and its meta db: the log and raft's term/vote
	snapshotsRetain = 2       // snapshots kept in Dir/snapshots (FileSnapshotStore names the folder)
	walSegmentSize  = 8 << 20 // metadata entries are small; raft-wal preallocates each segment
	transportPool   = 3       // raft transport connections pooled per peer
)

// Store is a cluster.Store replicated with raft. See the package doc.
type Store struct {
	cfg          Config
	logger       *slog.Logger
	addr         string
	fsm          *fsm
	wal          *raftLog
	r            *raft.Raft
	mux          *mux
	pool         *pool
	peers        *peers
	metrics      *metrics
	bootstrapped bool

	ctx       context.Context // ends at Close; parent of RPC handler contexts
	cancel    context.CancelFunc
	closing   chan struct{}
	closeOnce sync.Once
	closeErr  error
	wg        sync.WaitGroup
	notifyCh  chan bool
	obsCh     chan raft.Observation
	observer  *raft.Observer

	handlersMu sync.RWMutex
	handlers   map[string]Handler

	leaderMu   sync.Mutex
	leaderCh   chan struct{} // closed and replaced when the known leader changes
	leaderFns  []func(isLeader bool)
	lastLeader raft.ServerID

	forwarded     atomic.Uint64
	leaderChanges atomic.Uint64
}

var _ cluster.Store = (*Store)(nil)

// Open starts this node's raft. A voter with an empty Dir bootstraps the
// cluster from Voters; a node outside Voters with an empty Dir asks a seed
// to add it and Open waits, until ctx ends, for that to be accepted. A node
// with existing state just restarts. Open does not wait for a leader; see
// WaitLeader.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	logger := cfg.Logger.With("node", cfg.NodeID)
	hlog := newHCLogger(logger, "raft")

	ln := cfg.Listener
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", cfg.RaftAddr); err != nil {
			return nil, fmt.Errorf("raftstore: RaftAddr %q: %w", cfg.RaftAddr, err)
		}
	}
	addr := cfg.AdvertisedAddr
	if addr == "" {
		addr = ln.Addr().String()
		if err := checkDialable(addr); err != nil {
			_ = ln.Close()
			return nil, fmt.Errorf("raftstore: AdvertisedAddr is required when the listener is bound to %s: %v", addr, err)
		}
	}
	if v, ok := cfg.selfVoter(); ok && v.Addr != addr {
		_ = ln.Close()
		return nil, fmt.Errorf("raftstore: Voters lists node %d at %q but it advertises %q", cfg.NodeID, v.Addr, addr)
	}

	if err := os.MkdirAll(filepath.Join(cfg.Dir, walDir), 0o755); err != nil {
		_ = ln.Close()
		return nil, fmt.Errorf("raftstore: Dir: %w", err)
	}
	w, err := openLog(filepath.Join(cfg.Dir, walDir), newHCLogger(logger, "raft-wal"))
	if err == nil {
		// raft panics on a log entry it cannot read: say which directory
		// and what to do instead.
		if err = w.readable(); err != nil {
			_ = w.Close()
		}
	}
	if err != nil {
		_ = ln.Close()
		return nil, fmt.Errorf("raftstore: opening raft log in %s: %w", cfg.Dir, err)
	}
	var hasState bool
	snaps, err := raft.NewFileSnapshotStoreWithLogger(cfg.Dir, snapshotsRetain, hlog)
	if err == nil {
		hasState, err = raft.HasExistingState(w.WAL, w.WAL, snaps)
	}
	if err != nil {
		_ = w.Close()
		_ = ln.Close()
		return nil, fmt.Errorf("raftstore: opening snapshots in %s: %w", cfg.Dir, err)
	}

	s := &Store{
		cfg: cfg, logger: logger, addr: addr, wal: w,
		fsm:      newFSM(cfg.ClusterID, logger),
		mux:      newMux(ln, advertisedAddr(addr), cfg.ClusterID, logger),
		pool:     newPool(cfg.RPCTimeout, cfg.ClusterID),
		peers:    newPeers(cfg, addr),
		closing:  make(chan struct{}),
		notifyCh: make(chan bool, 8),
		obsCh:    make(chan raft.Observation, 16),
		handlers: map[string]Handler{},
		leaderCh: make(chan struct{}),
	}
	s.metrics = newMetrics(s)
	s.ctx, s.cancel = context.WithCancel(context.Background())

	tc := &raft.NetworkTransportConfig{
		Stream: raftLayer{s.mux}, MaxPool: transportPool, Timeout: cfg.RPCTimeout, Logger: hlog,
	}
	if s.peers.any() {
		// Raft then dials every server by id through PeerAddresses.
		tc.ServerAddressProvider = s.peers
	}
	trans := raft.NewNetworkTransportWithConfig(tc)
	rc := raft.DefaultConfig()
	rc.LocalID = serverID(cfg.NodeID)
	rc.HeartbeatTimeout = cfg.HeartbeatTimeout
	rc.ElectionTimeout = cfg.ElectionTimeout
	rc.LeaderLeaseTimeout = cfg.LeaderLeaseTimeout
	rc.CommitTimeout = cfg.CommitTimeout
	rc.SnapshotThreshold = cfg.SnapshotThreshold
	rc.SnapshotInterval = cfg.SnapshotInterval
	rc.TrailingLogs = cfg.TrailingLogs
	rc.NotifyCh = s.notifyCh
	rc.Logger = hlog
	if s.r, err = raft.NewRaft(rc, s.fsm, w.WAL, w.WAL, snaps, trans); err != nil {
		s.cancel()
		_ = trans.Close()
		s.mux.close()
		_ = w.Close()
		return nil, fmt.Errorf("raftstore: starting raft: %w", err)
	}
	s.peers.r.Store(s.r)
	s.mux.start(s.serveRPC)
	s.observer = raft.NewObserver(s.obsCh, false, func(o *raft.Observation) bool {
		_, ok := o.Data.(raft.LeaderObservation)
		return ok
	})
	s.r.RegisterObserver(s.observer)
	s.wg.Add(1)
	go s.watchLeadership()

	if cfg.Registerer != nil {
		if err := cfg.Registerer.Register(s.metrics); err != nil {
			_ = s.Close()
			return nil, fmt.Errorf("raftstore: registering metrics: %w", err)
		}
	}
	if !hasState {
		if err := s.start(ctx); err != nil {
			_ = s.Close()
			return nil, err
		}
	}
	logger.Info("raftstore: started", "addr", addr, "dir", cfg.Dir, "restarted", hasState, "bootstrapped", s.bootstrapped)
	return s, nil
}

// start bootstraps a new cluster or joins an existing one.
func (s *Store) start(ctx context.Context) error {
	voters := s.cfg.Voters
	_, isVoter := s.cfg.selfVoter()
	if len(voters) == 0 && len(s.cfg.Seeds) == 0 {
		voters, isVoter = []Voter{{ID: s.cfg.NodeID, Addr: s.addr}}, true
	}
	if isVoter {
		var conf raft.Configuration
		for _, v := range voters {
			conf.Servers = append(conf.Servers, raft.Server{Suffrage: raft.Voter, ID: serverID(v.ID), Address: raft.ServerAddress(v.Addr)})
		}
		if err := s.r.BootstrapCluster(conf).Error(); err != nil {
			return fmt.Errorf("raftstore: bootstrapping the cluster: %w", err)
		}
		s.bootstrapped = true
		return nil
	}
	return s.join(ctx)
}

// watchLeadership follows this node's leadership (raft's NotifyCh, never
// dropped) and the cluster's leader (observations, used to wake waiters).
func (s *Store) watchLeadership() {
	defer s.wg.Done()
	for {
		select {
		case isLeader := <-s.notifyCh:
			s.logger.Info("raftstore: leadership changed", "leader", isLeader)
			s.leaderMu.Lock()
			fns := slices.Clone(s.leaderFns)
			s.leaderMu.Unlock()
			for _, fn := range fns {
				fn(isLeader)
			}
			s.wakeLeaderWaiters("")
		case o := <-s.obsCh:
			if lo, ok := o.Data.(raft.LeaderObservation); ok {
				s.wakeLeaderWaiters(lo.LeaderID)
			}
		case <-s.closing:
			return
		}
	}
}

// wakeLeaderWaiters wakes RequestLeader loops; a new non-empty leader id
// counts as a leader change.
func (s *Store) wakeLeaderWaiters(id raft.ServerID) {
	s.leaderMu.Lock()
	defer s.leaderMu.Unlock()
	if id != "" && id != s.lastLeader {
		s.lastLeader = id
		s.leaderChanges.Add(1)
	}
	close(s.leaderCh)
	s.leaderCh = make(chan struct{})
}

// leaderChanged returns a channel closed at the next leadership event.
func (s *Store) leaderChanged() <-chan struct{} {
	s.leaderMu.Lock()
	defer s.leaderMu.Unlock()
	return s.leaderCh
}

// OnLeadership calls fn with true when this node becomes leader and false
// when it stops being leader, in order, on one goroutine; fn must not block
// for long. Changes before the call are not replayed: check IsLeader.
func (s *Store) OnLeadership(fn func(isLeader bool)) {
	s.leaderMu.Lock()
	s.leaderFns = append(s.leaderFns, fn)
	s.leaderMu.Unlock()
}

// State returns the metadata as applied on this node.
func (s *Store) State() *cluster.State { return s.fsm.state.State() }

// Subscribe registers l for every command applied on this node.
func (s *Store) Subscribe(l cluster.Listener) { s.fsm.state.Subscribe(l) }

// Addr returns the advertised raft address.
func (s *Store) Addr() string { return s.addr }

// IsLeader reports whether this node is the raft leader.
func (s *Store) IsLeader() bool { return s.r.State() == raft.Leader }

// Leader returns the leader this node knows of.
func (s *Store) Leader() (id int32, addr string, ok bool) {
	a, sid := s.r.LeaderWithID()
	if a == "" || sid == "" {
		return -1, "", false
	}
	n, err := parseServerID(sid)
	if err != nil {
		return -1, "", false
	}
	return n, string(a), true
}

// WaitLeader blocks until this node knows a leader or ctx ends.
func (s *Store) WaitLeader(ctx context.Context) error {
	for {
		changed := s.leaderChanged()
		if _, _, ok := s.Leader(); ok {
			return nil
		}
		select {
		case <-changed:
		case <-time.After(leaderRetryDelay):
		case <-s.closing:
			return ErrClosed
		case <-ctx.Done():
			return fmt.Errorf("%w: %w", ErrNoLeader, ctx.Err())
		}
	}
}

// Close stops raft, the listener and every connection. Idempotent; commands
// this node has acknowledged are already in its log.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.closing)
		s.cancel()
		s.r.DeregisterObserver(s.observer)
		if err := s.r.Shutdown().Error(); err != nil {
			s.closeErr = fmt.Errorf("raftstore: shutting raft down: %w", err)
		}
		s.mux.close()
		s.pool.close()
		s.wg.Wait()
		if err := s.wal.Close(); err != nil && s.closeErr == nil {
			s.closeErr = fmt.Errorf("raftstore: closing the raft log: %w", err)
		}
		if s.cfg.Registerer != nil {
			s.cfg.Registerer.Unregister(s.metrics)
		}
		s.logger.Info("raftstore: closed")
	})
	return s.closeErr
}

// raftLog is raft-wal's log and stable store. WAL.Close leaves its bolt meta
// db open (and flock'ed, so a reopen in the same process would block), so
// the store owns the meta db and closes it after the WAL.
type raftLog struct {
	*wal.WAL
	meta *metadb.BoltMetaDB
}

func openLog(dir string, logger *hclogger) (*raftLog, error) {
	meta := &metadb.BoltMetaDB{}
	w, err := wal.Open(dir, wal.WithLogger(logger), wal.WithMetaStore(meta), wal.WithSegmentSize(walSegmentSize))
	if err != nil {
		_ = meta.Close()
		return nil, err
	}
	return &raftLog{WAL: w, meta: meta}, nil
}

// readable reads the log's first and last entries. A log written by
// raft-wal v0.4.0 after a tail truncation has a segment it cannot read
// (hashicorp/raft-wal#31); the cluster's other voters still hold the log.
func (l *raftLog) readable() error {
	first, err := l.FirstIndex()
	if err != nil {
		return err
	}
	last, err := l.LastIndex()
	if err != nil || first == 0 {
		return err
	}
	var e raft.Log
	for _, i := range []uint64{first, last} {
		if err := l.GetLog(i, &e); err != nil {
			return fmt.Errorf("entry %d is unreadable (%w); this node's metadata log is damaged: "+
				"stop the broker, move its %s directory away and start it again to copy the log from the other voters", i, err, walDir)
		}
	}
	return nil
}

func (l *raftLog) Close() error {
	return errors.Join(l.WAL.Close(), l.meta.Close())
}

func serverID(id int32) raft.ServerID { return raft.ServerID(strconv.Itoa(int(id))) }

func parseServerID(id raft.ServerID) (int32, error) {
	n, err := strconv.ParseInt(string(id), 10, 32)
	if err != nil {
		return -1, fmt.Errorf("raftstore: server id %q is not a node id: %w", id, err)
	}
	return int32(n), nil
}

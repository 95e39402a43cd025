package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kdr-io/kdr/broker/cluster"
	"github.com/kdr-io/kdr/broker/cluster/raftstore"
	"github.com/kdr-io/kdr/broker/group"
	"github.com/kdr-io/kdr/broker/replica"
	"github.com/kdr-io/kdr/broker/storage"
	"github.com/kdr-io/kdr/broker/wire"
	"github.com/kdr-io/kdr/internal/obs"
)

// Options are a broker's injected dependencies.
type Options struct {
	Logger *slog.Logger
	// Registry receives the broker's metrics and is served on /metrics.
	// nil: a fresh registry with Go and process collectors.
	Registry *prometheus.Registry
}

// concurrentFlushes bounds the rolled-segment flushes a broker runs at once,
// as Kafka's background.threads bounds its background work: partitions that
// roll together queue for a slot rather than each holding a thread in fsync.
const concurrentFlushes = 8

// RegisteredMessage is what a replicated broker logs once its registration
// is committed and its metadata caught up: kdr up reads it in each broker's
// log, as the protocol cannot tell a broker's registration by this process
// from one by the process before it.
const RegisteredMessage = "registered with the cluster"

// Broker is one running kdr broker.
type Broker struct {
	cfg     Config
	log     *slog.Logger
	reg     *prometheus.Registry
	metrics *metrics

	meta    cluster.Store
	wb      *storage.Writeback // shared by the logs; nil when log.writeback.bytes is 0
	flushes storage.FlushLimit // shared by the logs: rolled-segment flushes at once
	raft    *raftstore.Store   // nil for a single broker
	fetcher *replica.Fetcher
	// epoch is the broker epoch of this broker's registration (0 until
	// registered); stopHeartbeat ends its heartbeats.
	epoch         atomic.Int64
	stopHeartbeat context.CancelFunc
	// caughtUp is set once registration is applied locally: the metadata
	// state is then the cluster's, not one raft is still replaying.
	// serving is closed once the broker is also unfenced at its new
	// epoch: a replicated broker accepts client connections only from that
	// moment (startServing, serveIfCurrent).
	caughtUp  atomic.Bool
	serving   chan struct{}
	serveOnce sync.Once
	coord     *group.Coordinator
	apis      *wire.Registry
	srv       *wire.Server
	ln        net.Listener
	http      *obs.HTTPServer

	host string // advertised
	port int32

	// mu guards partitions. It is held to read or swap entries, never
	// across disk work: every produce and fetch takes it.
	mu         sync.RWMutex
	partitions map[tp]*partition
	// reconcileMu serialises what creates, opens and removes partition
	// directories (reconcile, cleanStrayDirs, Close), which do their disk
	// work outside mu.
	reconcileMu sync.Mutex

	pids producerIDs
	// fence is the write fence this broker enforces (fence.go).
	fence fenceState
	// fetchMarker marks where streamed record batches go in an encoded
	// Fetch response (see fetchStream).
	fetchMarker [12]byte

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	closeOnce sync.Once
	closeErr  error
}

// tp names one topic partition.
type tp struct {
	topic     string
	partition int32
}

// Start opens the broker's data, binds its listeners and starts serving. It
// returns once clients can connect.
func Start(cfg Config, opts Options) (_ *Broker, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Registry == nil {
		opts.Registry = obs.NewRegistry()
	}
	ctx, cancel := context.WithCancel(context.Background())
	b := &Broker{
		cfg:         cfg,
		log:         opts.Logger.With("node", cfg.NodeID),
		reg:         opts.Registry,
		partitions:  map[tp]*partition{},
		fetchMarker: newFetchMarker(),
		ctx:         ctx,
		cancel:      cancel,
		serving:     make(chan struct{}),
	}
	defer func() {
		if err != nil {
			b.Close()
		}
	}()
	b.wb = storage.NewWriteback(cfg.LogWritebackBytes, cfg.LogDropBehindBytes, b.log.With("component", "writeback"))
	b.flushes = storage.NewFlushLimit(concurrentFlushes)
	b.metrics = newMetrics(b)
	if err := b.reg.Register(b.metrics); err != nil {
		return nil, fmt.Errorf("registering metrics: %w", err)
	}

	if b.ln, err = net.Listen("tcp", cfg.Listen); err != nil {
		return nil, fmt.Errorf("kafka listener %s: %w (is another broker using the port?)", cfg.Listen, err)
	}
	if err := b.resolveAdvertised(); err != nil {
		return nil, err
	}

	if err := b.openMetadata(); err != nil {
		return nil, err
	}
	if st := b.meta.State(); st.ClusterID != cfg.ClusterID {
		return nil, fmt.Errorf("data dir %s belongs to cluster %q, not %q: point --data-dir elsewhere or use --cluster-id %s", cfg.DataDir, st.ClusterID, cfg.ClusterID, st.ClusterID)
	}
	b.coord, err = group.New(cfg.Group, &offsetsLog{b: b}, group.Options{
		Logger:          b.log.With("component", "group"),
		Registerer:      b.reg,
		PartitionExists: b.partitionExists,
	})
	if err != nil {
		return nil, err
	}
	b.fetcher = replica.NewFetcher(replica.FetcherConfig{
		NodeID: cfg.NodeID, MaxWait: cfg.ReplicaFetchWaitMax, Logger: b.log.With("component", "replica-fetcher"),
	})
	if err := b.loadFence(); err != nil {
		return nil, err
	}
	b.meta.Subscribe(b.onMetadata)
	b.syncFence()
	if f := b.currentFence(); f.Fenced {
		b.log.Warn("cluster is fenced: refusing client produce requests", "fence_epoch", f.Epoch, "reason", f.Reason)
	}
	if b.raft == nil {
		if _, err := b.register(); err != nil {
			return nil, err
		}
		b.serveOnce.Do(func() { close(b.serving) })
	} else {
		// A replicated broker registers in the background, so that Start
		// returns and brokers can start in any order. It serves clients
		// only once registered (startServing).
		var hbCtx context.Context
		hbCtx, b.stopHeartbeat = context.WithCancel(b.ctx)
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			epoch, err := b.register()
			if err != nil {
				return // shutting down
			}
			b.log.Info(RegisteredMessage, "broker_epoch", epoch)
			b.epoch.Store(epoch)
			b.cleanStrayDirs()
			b.serveIfCurrent(b.meta.State())
			b.wg.Add(1)
			go b.heartbeat(hbCtx, epoch)
		}()
	}
	// The first state was loaded before we subscribed: bring the local
	// partitions in line with it now.
	if err := b.reconcile(nil, b.meta.State()); err != nil {
		return nil, err
	}

	if b.apis, err = b.registry(); err != nil {
		return nil, err
	}
	if b.srv, err = wire.NewServer(cfg.Socket, b.apis, b.log.With("component", "wire"), wire.NewMetrics(b.reg)); err != nil {
		return nil, err
	}
	b.wg.Add(1)
	go b.startServing()
	if cfg.MetricsListen != "" {
		if b.http, err = obs.ServeHTTP(cfg.MetricsListen, b.reg, b.health, b.log); err != nil {
			return nil, err
		}
	}
	b.wg.Add(1)
	go b.maintain()
	b.log.Info("broker started", "listen", b.ln.Addr().String(), "advertised", b.Addr(), "data_dir", cfg.DataDir,
		"partitions", b.partitionCount(), "cluster_id", cfg.ClusterID)
	return b, nil
}

// startServing accepts client connections once the broker has caught up
// with the cluster's metadata and is unfenced (b.serving), as a Kafka broker
// enables request processing only then. Until a restarted replicated broker
// has replayed its metadata log and registered, its state is an old one: it
// would answer Metadata with some of the cluster's topics (a mirror or an
// admin tool would take the others as deleted) and claim leaderships it
// lost, at old leader epochs. Clients that connect meanwhile wait in the
// listen queue, usually well under a second, for as long as the quorum is
// away.
func (b *Broker) startServing() {
	defer b.wg.Done()
	select {
	case <-b.serving:
	default:
		b.log.Info("waiting to catch up with the cluster metadata (registration) before serving clients")
		select {
		case <-b.serving:
			b.log.Info("caught up with the cluster metadata: serving clients")
		case <-b.ctx.Done():
			b.ln.Close()
			return
		}
	}
	if err := b.srv.Serve(b.ln); err != nil {
		b.log.Error("kafka listener stopped", "err", err)
	}
}

// serveIfCurrent opens the broker to clients (b.serving) once st, its local
// metadata state, is the cluster's (caughtUp) and shows this broker
// registered at its epoch and unfenced: a broker that hosts replicas
// registers fenced, and its first heartbeat unfences it.
func (b *Broker) serveIfCurrent(st *cluster.State) {
	if !b.caughtUp.Load() {
		return
	}
	if br, ok := st.Brokers[b.cfg.NodeID]; ok && br.Epoch == b.epoch.Load() && !br.Fenced {
		b.serveOnce.Do(func() { close(b.serving) })
	}
}

func (b *Broker) resolveAdvertised() error {
	adv := b.cfg.AdvertisedListen
	if adv == "" {
		adv = b.ln.Addr().String()
	}
	host, port, err := net.SplitHostPort(adv)
	if err != nil {
		return fmt.Errorf("advertised listen %q: %w", adv, err)
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		return fmt.Errorf("listen address %s binds all interfaces: set --advertised-listen to the host:port clients should use", adv)
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return fmt.Errorf("advertised listen %q: bad port", adv)
	}
	b.host, b.port = host, int32(p)
	return nil
}

// Addr is the host:port clients are told to use.
func (b *Broker) Addr() string { return net.JoinHostPort(b.host, strconv.Itoa(int(b.port))) }

// ListenAddr is the address the Kafka listener is bound to (differs from
// Addr when an advertised address is set).
func (b *Broker) ListenAddr() string { return b.ln.Addr().String() }

// MetricsAddr is the bound /metrics address, or "" when disabled.
func (b *Broker) MetricsAddr() string {
	if b.http == nil {
		return ""
	}
	return b.http.Addr().String()
}

// NodeID is this broker's node.id.
func (b *Broker) NodeID() int32 { return b.cfg.NodeID }

func (b *Broker) health() error {
	if b.ctx.Err() != nil {
		return errors.New("broker is shutting down")
	}
	return nil
}

// maintain runs the periodic log and group housekeeping.
func (b *Broker) maintain() {
	defer b.wg.Done()
	logTick := time.NewTicker(b.cfg.LogMaintenanceInterval)
	defer logTick.Stop()
	groupTick := time.NewTicker(10 * time.Minute) // offsets.retention.check.interval.ms
	defer groupTick.Stop()
	// Kafka checks for ISR shrinks at half replica.lag.time.max.ms.
	isrTick := time.NewTicker(max(b.cfg.ReplicaLagTimeMax/2, 50*time.Millisecond))
	defer isrTick.Stop()
	for {
		select {
		case <-b.ctx.Done():
			return
		case <-isrTick.C:
			b.checkISR()
		case <-logTick.C:
			b.maintainLogs()
		case <-groupTick.C:
			b.coord.Expire()
		}
	}
}

func (b *Broker) maintainLogs() {
	for _, p := range b.allPartitions() {
		if err := p.log.Maintain(); err != nil {
			b.log.Error("log maintenance failed", "topic", p.topic, "partition", p.index, "err", err)
		}
	}
}

// Close stops serving, then closes every log cleanly so the next start
// needs no recovery.
func (b *Broker) Close() error {
	b.closeOnce.Do(func() {
		b.controlledShutdown()
		b.cancel()
		var errs []error
		if b.srv != nil {
			errs = append(errs, b.srv.Close())
		} else if b.ln != nil {
			errs = append(errs, b.ln.Close())
		}
		if b.http != nil {
			errs = append(errs, b.http.Close())
		}
		b.wg.Wait()
		if b.fetcher != nil {
			b.fetcher.Close()
		}
		if b.coord != nil {
			b.coord.Close()
		}
		// The metadata store closes before the logs: a command applied
		// meanwhile would otherwise reopen partitions being closed (the
		// listener also ignores changes once b.ctx is canceled).
		if b.meta != nil {
			errs = append(errs, b.meta.Close())
		}
		b.reconcileMu.Lock()
		b.mu.Lock()
		for k, p := range b.partitions {
			errs = append(errs, p.log.Close())
			delete(b.partitions, k)
		}
		b.mu.Unlock()
		b.reconcileMu.Unlock()
		b.wb.Close()
		b.closeErr = errors.Join(errs...)
		b.log.Info("broker stopped")
	})
	return b.closeErr
}

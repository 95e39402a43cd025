package mirror

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/kdr-io/kdr/mirror/naming"
	"github.com/kdr-io/kdr/mirror/offsets"
)

// Options are a Worker's collaborators.
type Options struct {
	// Logger receives the worker's logs; nil discards them.
	Logger *slog.Logger
	// Registerer receives the kdr_mirror_* metrics; nil leaves them
	// unregistered. Several workers may share one registry.
	Registerer prometheus.Registerer
	// ClientOpts are appended to the options of every Kafka client the
	// worker makes (TLS, SASL, a kgo logger).
	ClientOpts []kgo.Opt
}

// Worker copies the records of one flow. Several workers of the same flow
// (the same Flow.Group) share the source partitions through a consumer
// group. A Worker runs once: New, then Run until its context ends.
//
// Goroutines: Run's copy loop (owns the consumer's poll), the committer
// (offset syncs and commits of settled cycles), the topic manager
// (refresh), the heartbeat writer, the checkpointer (with its offset-syncs
// reader), and franz-go's group callbacks
// (assigned/revoked/lost), which BlockRebalanceOnPoll confines to the gaps
// between copy cycles. mu guards the state they share; it is never held
// across a network call.
type Worker struct {
	flow      Flow
	log       *slog.Logger
	m         *metrics
	policy    naming.Policy
	rules     naming.Rules
	excluded  []*regexp.Regexp // ConfigsExclude
	syncTopic string           // Flow.SyncsTopic, on syncCl's cluster
	// uncompressed: batches go out as built, so a record's batch size is
	// known before sending and one too large is skipped without a try.
	uncompressed bool
	// forward: batches are forwarded as they are (Flow.ForwardBatches
	// under prefix naming, uncompressed output): the worker fetches them
	// itself through fetchCl and sends them through fwd, and the consumer
	// only keeps the group membership.
	forward      bool
	identity     bool        // identity naming: each copy gets the provenance hop
	fetchCl      *kgo.Client // source: the worker's own fetches
	srcLeaders   *leaders
	fwd          *forwarder // target: forwarded batches
	decompressor kgo.Decompressor
	fetchWake    chan struct{} // a queue drained, or partitions changed
	throttle     *throttle     // Flow.MaxBytesPerSecond; nil: no cap
	// consumed counts the bytes of record batches the consumer read from
	// the source (as stored, compressed or not), for the throttle.
	consumed atomic.Int64
	fetched  chan struct{} // the fetch loop queued something

	consumer *kgo.Client // source: group member that reads the records
	srcCl    *kgo.Client // source: admin requests (and offset syncs, if held there)
	srcAdm   *kadm.Client
	target   *kgo.Client // target: record copies (manual flushing)
	tgtCl    *kgo.Client // target: admin requests and heartbeats (and offset syncs, if held there)
	tgtAdm   *kadm.Client
	// syncCl and syncAdm are srcCl and srcAdm, or tgtCl and tgtAdm with
	// Flow.OffsetSyncsLocation SyncsOnTarget; syncKind is that cluster's
	// error kind.
	syncCl   *kgo.Client
	syncAdm  *kadm.Client
	syncKind string
	store    *offsets.SyncStore // reads the offset syncs back, for checkpoints
	reg      prometheus.Registerer

	limits     sync.Map      // remote topic → int32 max.message.bytes, read by the producer
	refreshNow chan struct{} // asks the topic manager for an early refresh
	ran        atomic.Bool
	// cycleMu is held for a whole copy cycle and by the group callbacks, so
	// that partitions are never given up halfway through a cycle (franz-go
	// lets a rebalance run after a poll that returned nothing). Lock order:
	// cycleMu, then mu.
	cycleMu     sync.Mutex
	cycleWanted atomic.Int32 // group callbacks waiting for cycleMu
	// flights counts the cycles' goroutines. A stopping worker may give
	// up on cycles still waiting for the target; Run waits for them once
	// it has closed the clients, which fails what they wait for.
	flights sync.WaitGroup
	// commitMu is held while offset syncs are written and positions
	// committed (see syncAndCommit). Lock order: cycleMu, commitMu, mu.
	commitMu  sync.Mutex
	commitNow chan struct{} // the copy loop hands a settled cycle to the committer

	// commits bounds every write of offset syncs and commit of positions,
	// besides DeliveryTimeout: a stopping worker abandons them after
	// stopGrace, as waiting longer for a source that does not answer only
	// delays the stop (a restart copies the uncommitted again).
	commits        context.Context
	abandonCommits context.CancelFunc

	mu           sync.Mutex
	parts        map[topicPartition]*partState
	topics       map[string]*topicState // by source topic
	pendingSyncs []pendingSync          // offset syncs not yet written; commits wait for them
	errs         map[string]*ErrorStatus
	lastLog      map[string]time.Time
	running      bool
	refreshErr   error // of the last topic refresh
	// groupErr is why the worker's consumer last fell out of its group (or
	// could not join it), until a join works (onAssigned): groupHook.
	groupErr   failing
	refreshes  int64
	flushSince time.Time // when the cycle in flight began waiting for the target; zero when none
	heartbeats int64
	syncs      int64
	syncReady  bool // the offset-syncs topic exists
	hbReady    bool // the heartbeats topic exists
	cp         checkpointState
	acl        ACLStatus

	// Under mu too: fetchFails are the fetches from the source, of any
	// partition, that failed since the last one that worked.
	fetchFails failing
	// fetchHeld: the fetch loop holds every fetch back (the fetched,
	// uncopied bytes fill the budget, or a full partition waits for the
	// target), so partitions that failed before are not being retried and
	// their failure says nothing about the source now.
	fetchHeld bool
	// unsure: after the source was unreachable, the worker copies nothing
	// until its group membership is confirmed (membership.go).
	unsure bool
	doubts int64 // times unsure was set
}

type topicPartition struct {
	topic     string
	partition int32
}

// New checks flow and builds the worker's clients; nothing connects until
// Run.
func New(flow Flow, opts Options) (*Worker, error) {
	if err := flow.Validate(); err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	topicsFilter, _ := naming.NewFilter(flow.Topics, flow.TopicsExclude) // validated
	excluded, _ := naming.ParsePatterns(flow.ConfigsExclude)
	uncompressed := flow.Compression == "" || flow.Compression == "none"
	w := &Worker{
		flow:         flow,
		log:          log.With("flow", flow.Name()),
		m:            newMetrics(opts.Registerer, flow.Name()),
		policy:       flow.Policy(),
		rules:        naming.Rules{Policy: flow.Policy(), Topics: topicsFilter},
		excluded:     excluded,
		syncTopic:    flow.SyncsTopic(),
		uncompressed: uncompressed,
		forward:      flow.ForwardBatches && uncompressed,
		identity:     flow.Naming == NamingIdentity,
		decompressor: kgo.DefaultDecompressor(),
		fetchWake:    make(chan struct{}, 1),
		fetched:      make(chan struct{}, 1),
		refreshNow:   make(chan struct{}, 1),
		commitNow:    make(chan struct{}, 1),
		parts:        map[topicPartition]*partState{},
		topics:       map[string]*topicState{},
		errs:         map[string]*ErrorStatus{},
		lastLog:      map[string]time.Time{},
		reg:          opts.Registerer,
	}
	w.throttle = newThrottle(flow.MaxBytesPerSecond, w.m.throttled)
	w.commits, w.abandonCommits = context.WithCancel(context.Background())
	if err := w.newClients(opts.ClientOpts); err != nil {
		w.abandonCommits()
		return nil, err
	}
	return w, nil
}

func (w *Worker) newClients(extra []kgo.Opt) error {
	f := w.flow
	srcSec, err := f.Source.Security.Opts()
	if err != nil {
		return fmt.Errorf("mirror: source security: %w", err)
	}
	tgtSec, err := f.Target.Security.Opts()
	if err != nil {
		return fmt.Errorf("mirror: target security: %w", err)
	}
	// Every client of a cluster connects with its security options.
	security := map[string][]kgo.Opt{KindSource: srcSec, KindTarget: tgtSec}
	brokers := map[string][]string{KindSource: f.Source.Brokers, KindTarget: f.Target.Brokers}
	common := func(brokers []string, kind, id string) []kgo.Opt {
		opts := append([]kgo.Opt{
			kgo.SeedBrokers(brokers...),
			kgo.ClientID("kdr-mirror-" + id),
			kgo.MetadataMaxAge(f.RefreshInterval),
			kgo.MetadataMinAge(min(f.RefreshInterval, time.Second)),
			kgo.WithHooks(dialHook{w: w, kind: kind}),
		}, security[kind]...)
		return append(opts, extra...)
	}
	consumerOpts := append(common(f.Source.Brokers, KindSource, "consumer"),
		kgo.ConsumerGroup(f.Group()),
		kgo.Balancers(kgo.CooperativeStickyBalancer()),
		kgo.BlockRebalanceOnPoll(),
		kgo.DisableAutoCommit(),
		kgo.SessionTimeout(f.SessionTimeout),
		// franz-go's 3 s, or a third of a shorter session, as Kafka
		// advises: franz-go refuses a session shorter than its heartbeat
		// interval with an error naming an interval no flag sets.
		kgo.HeartbeatInterval(min(3*time.Second, f.SessionTimeout/3)),
		kgo.WithHooks(groupHook{w}),
		kgo.RebalanceTimeout(2*f.DeliveryTimeout+30*time.Second),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		// Kafka's fetch.max.wait.ms (franz-go waits 5 s): a partition
		// assigned while a fetch waits is only read once it returns.
		kgo.FetchMaxWait(500*time.Millisecond),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		// A transaction's marker tells the record path that its position
		// may pass the transaction's end (passEmpty); markers are never
		// copied.
		kgo.KeepControlRecords(),
		kgo.OnPartitionsAssigned(w.onAssigned),
		kgo.OnPartitionsRevoked(w.onRevoked),
		kgo.OnPartitionsLost(w.onLost),
	)
	if f.InstanceID != "" {
		consumerOpts = append(consumerOpts, kgo.InstanceID(f.InstanceID))
	}
	if w.throttle != nil {
		// Fetches of at most a second's bytes, as the worker's own.
		c := w.throttle.fetchCap(fetchMaxBytes)
		consumerOpts = append(consumerOpts, kgo.FetchMaxBytes(c), kgo.FetchMaxPartitionBytes(min(c, fetchPartitionBytes)),
			kgo.WithHooks(consumedHook{&w.consumed}))
	}
	codec, _ := CompressionCodec(f.Compression) // validated
	targetOpts := append(common(f.Target.Brokers, KindTarget, "producer"),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ManualFlushing(),
		kgo.MaxBufferedRecords(f.BatchRecords+1),
		kgo.ProducerBatchMaxBytesFn(w.batchMaxBytes),
		// Uncompressed by default, as MM2's producer: the batch size cap
		// (batchMaxBytes) is then exactly what the target checks against
		// max.message.bytes, and no CPU goes to recompressing what the
		// source's producers usually compressed already.
		kgo.ProducerBatchCompression(codec),
	)
	// Offset syncs and heartbeats need no idempotence (a repeat is
	// harmless), and without it a write to a target that went silent can
	// be given up on, so these writers never hang a worker.
	admin := func(brokers []string, kind, id string) []kgo.Opt {
		return append(common(brokers, kind, id),
			kgo.RecordPartitioner(kgo.ManualPartitioner()),
			kgo.RequiredAcks(kgo.AllISRAcks()),
			kgo.DisableIdempotentWrite(),
			kgo.MaxProduceRequestsInflightPerBroker(1), // syncs stay in order
			kgo.RecordDeliveryTimeout(f.DeliveryTimeout),
		)
	}
	if w.consumer, err = kgo.NewClient(consumerOpts...); err != nil {
		return fmt.Errorf("mirror: source consumer: %w", err)
	}
	if w.srcCl, err = kgo.NewClient(admin(f.Source.Brokers, KindSource, "source")...); err != nil {
		w.consumer.Close()
		return fmt.Errorf("mirror: source client: %w", err)
	}
	if w.target, err = kgo.NewClient(targetOpts...); err != nil {
		w.consumer.Close()
		w.srcCl.Close()
		return fmt.Errorf("mirror: target producer: %w", err)
	}
	if w.tgtCl, err = kgo.NewClient(admin(f.Target.Brokers, KindTarget, "target")...); err != nil {
		w.consumer.Close()
		w.srcCl.Close()
		w.target.Close()
		return fmt.Errorf("mirror: target client: %w", err)
	}
	closeAll := func() {
		w.consumer.Close()
		w.srcCl.Close()
		w.target.Close()
		w.tgtCl.Close()
	}
	if w.forward {
		// Produce up to v12, which names topics (v13 uses topic IDs).
		// Fetch names them too, and from v13 (brokers that have it) also
		// carries the topic id the worker mirrors: a topic re-created
		// on the source then answers UNKNOWN_TOPIC_ID at once, rather
		// than serving the new topic's records from the old position.
		vers := kversion.Stable()
		vers.SetMaxKeyVersion(kmsg.Produce.Int16(), 12)
		if w.fetchCl, err = kgo.NewClient(append(common(f.Source.Brokers, KindSource, "fetcher"), kgo.MaxVersions(vers))...); err != nil {
			closeAll()
			return fmt.Errorf("mirror: source fetcher: %w", err)
		}
		fwdCl, err := kgo.NewClient(append(common(f.Target.Brokers, KindTarget, "forwarder"), kgo.MaxVersions(vers))...)
		if err != nil {
			w.fetchCl.Close()
			closeAll()
			return fmt.Errorf("mirror: target forwarder: %w", err)
		}
		w.srcLeaders = newLeaders(w.fetchCl, 250*time.Millisecond)
		w.fwd = newForwarder(fwdCl, f.DeliveryTimeout)
		closeAll = func() {
			w.consumer.Close()
			w.srcCl.Close()
			w.target.Close()
			w.tgtCl.Close()
			w.fetchCl.Close()
			fwdCl.Close()
		}
	}
	w.srcAdm, w.tgtAdm = kadm.NewClient(w.srcCl), kadm.NewClient(w.tgtCl)
	// The offset syncs go where Flow.OffsetSyncsLocation says.
	w.syncCl, w.syncAdm, w.syncKind = w.srcCl, w.srcAdm, KindSource
	if f.OffsetSyncsLocation == SyncsOnTarget {
		w.syncCl, w.syncAdm, w.syncKind = w.tgtCl, w.tgtAdm, KindTarget
	}
	syncsFrom := append([]kgo.Opt{kgo.SeedBrokers(brokers[w.syncKind]...), kgo.ClientID("kdr-mirror-offset-syncs"),
		kgo.WithHooks(dialHook{w: w, kind: w.syncKind})}, security[w.syncKind]...)
	w.store, err = offsets.NewSyncStore(offsets.SyncStoreConfig{
		// The store sets its own metadata ages.
		Source:      append(syncsFrom, extra...),
		TargetAlias: f.TargetAlias, Topic: w.syncTopic, Flow: f.Name(),
		Logger: w.log, Registerer: w.reg,
	})
	if err != nil {
		closeAll()
		return fmt.Errorf("mirror: offset-syncs reader: %w", err)
	}
	return nil
}

// consumedHook counts the bytes of each record batch the consumer reads,
// as the source stored it (compressed if it was): what crossed the link.
type consumedHook struct{ n *atomic.Int64 }

func (h consumedHook) OnFetchBatchRead(_ kgo.BrokerMetadata, _ string, _ int32, m kgo.FetchBatchMetrics) {
	h.n.Add(int64(m.CompressedBytes))
}

// dialHook reports connection failures, which franz-go otherwise retries
// silently, as errors of the cluster's kind.
type dialHook struct {
	w    *Worker
	kind string
}

func (h dialHook) OnBrokerConnect(meta kgo.BrokerMetadata, _ time.Duration, _ net.Conn, err error) {
	if err != nil {
		h.w.noteErr(h.kind, fmt.Errorf("connecting to broker %s: %w", net.JoinHostPort(meta.Host, fmt.Sprint(meta.Port)), h.w.explainAuth(h.kind, err)))
	}
}

// explainAuth says what an EOF from a cluster (KindSource or KindTarget)
// the worker authenticates to with SASL most likely means
// (clientsec.Config.EndedDuringSASL).
func (w *Worker) explainAuth(kind string, err error) error {
	sec := w.flow.Source.Security
	if kind == KindTarget {
		sec = w.flow.Target.Security
	}
	if !sec.EndedDuringSASL(err) {
		return err
	}
	return fmt.Errorf("%w: the broker ended the connection during SASL authentication (%s): check the user and password", err, sec)
}

// leaveTimeout bounds how long a stopping worker waits for the source to
// answer its leave from the group.
const leaveTimeout = 3 * time.Second

// stopGrace bounds how long a stopping worker waits for the clusters, from
// the moment it is told to stop: for the target to answer the copies in
// flight, the source its last offset syncs and commit, and both the
// requests of the topic manager, checkpointer and heartbeats. Healthy
// clusters answer in milliseconds. One that went silent would otherwise
// be waited for up to DeliveryTimeout (30 s by default), or the
// connection's read timeout for a request already sent, which franz-go
// waits for whatever the context. With leaveTimeout, a worker stops
// within kdr up's grace (up.WorkerStopGrace, 15 s) whichever cluster
// went silent.
const stopGrace = 5 * time.Second

// ErrAlreadyRun is returned by a second call of Run.
var ErrAlreadyRun = errors.New("mirror: a Worker runs only once")

// Run copies records until ctx ends, then settles the cycles in flight and
// commits (waiting for the clusters up to stopGrace in all), leaves the
// group (up to leaveTimeout) and closes its clients. Unreachable clusters
// are retried with backoff, never returned as errors; Run returns nil
// after ctx ends.
func (w *Worker) Run(ctx context.Context) error {
	if !w.ran.CompareAndSwap(false, true) {
		return ErrAlreadyRun
	}
	w.mu.Lock()
	w.running = true
	w.mu.Unlock()
	w.log.Info("mirror starting", "source", w.flow.Source.Brokers, "target", w.flow.Target.Brokers,
		"group", w.flow.Group(), "naming", w.flow.Naming)

	bg, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { w.manage(bg) })
	if w.flow.HeartbeatInterval > 0 {
		wg.Go(func() { w.emitHeartbeats(bg) })
	}
	wg.Go(func() { w.checkpoint(bg) })
	wg.Go(func() { w.commitLoop(bg) })
	defer w.abandonCommits()
	if w.forward {
		wg.Go(func() { w.fetchLoop(bg) })
		wg.Go(func() { w.countFetchFailing(bg) })
	}
	// From the moment ctx ends, the clusters have stopGrace to answer
	// what the stop waits for; then it goes on without their answers.
	grace, endGrace := graceCtx(bg, stopGrace)
	defer endGrace()
	graceOver := grace.Done()
	graceUnused := context.AfterFunc(grace, func() {
		w.log.Warn("stopping: the clusters have not answered everything the stop waits for (copies in flight, the last offset syncs and commit, or a request of the topic manager, checkpointer or heartbeats); not waiting longer: a restart copies again what was copied since the last commit (at least once, nothing lost)",
			"waited", stopGrace)
		w.abandonCommits()
	})
	w.copyLoop(ctx, graceOver)
	stop()
	// The last cycle's syncs and commit, which the committer, stopped with
	// the copy loop, may not have made; before waiting for the loops, one
	// of which may wait for the other cluster. commitMu keeps them from
	// running alongside a committer still in its own.
	cctx, cancel := context.WithTimeout(w.commits, w.flow.DeliveryTimeout)
	w.syncAndCommit(cctx, nil)
	cancel()
	// The loops end with bg, except one waiting for the answer to a
	// request it has sent, which franz-go waits for until the
	// connection's read timeout whatever the context (a topic refresh
	// from a silent source held a stop for 10 s). Such a loop ends when
	// the clients close below.
	loopsDone := make(chan struct{})
	go func() {
		wg.Wait()
		close(loopsDone)
	}()
	select {
	case <-loopsDone:
	case <-graceOver:
	}
	graceUnused() // the grace did not run out: no warning when endGrace ends it

	// Leaving the group runs onRevoked, which commits through srcCl: close
	// the consumer first. Close waits for the coordinator's answer to the
	// leave, and franz-go waits for the answer to a request it has sent
	// until the connection's read timeout, whatever the context: from a
	// source that went silent a stop took a minute. After leaveTimeout the
	// worker stops without the answer (the group drops it after its
	// session timeout), and the consumer finishes closing in the
	// background. A revocation still running then (its commit waits for
	// a silent source) finds the clients closed and only drops its
	// partitions: Run committed before the leave.
	w.consumer.AllowRebalance()
	lctx, lcancel := context.WithTimeout(context.WithoutCancel(ctx), leaveTimeout)
	err := w.consumer.LeaveGroupContext(lctx)
	lcancel()
	if err != nil {
		w.log.Warn("leaving the group did not finish in time (the source did not answer, or the revocation's commit waited for it); stopping anyway: the group drops this worker after its session timeout, and its partitions then go to the flow's other workers",
			"group", w.flow.Group(), "waited", leaveTimeout, "session_timeout", w.flow.SessionTimeout, "err", err)
		go w.consumer.Close()
	} else {
		w.consumer.Close()
	}
	w.target.Close()
	w.srcCl.Close()
	w.tgtCl.Close()
	if w.forward {
		w.fetchCl.Close()
		w.fwd.cl.Close()
	}
	w.store.Close()
	<-loopsDone // closing the clients failed the requests still waited on
	w.flights.Wait()
	w.mu.Lock()
	w.running = false
	w.mu.Unlock()
	w.m.fetchFailing.Set(0) // owns nothing now
	w.log.Info("mirror stopped")
	return nil
}

// noteErr counts an error of kind, keeps it for Status, and logs it (at
// most once per kind every 5 s, so an outage does not flood the log).
func (w *Worker) noteErr(kind string, err error, attrs ...any) {
	if w.recordErr(kind, err) {
		w.log.Warn("mirror error", append([]any{"kind", kind, "err", err}, attrs...)...)
	}
}

// recordErr counts err of kind in the metrics and the status, and says
// whether it is to be logged: the first of its kind in 5 s.
func (w *Worker) recordErr(kind string, err error) (logIt bool) {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	w.m.errors.WithLabelValues(w.flow.Name(), kind).Inc()
	now := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	e := w.errs[kind]
	if e == nil {
		e = &ErrorStatus{}
		w.errs[kind] = e
	}
	e.Count++
	e.Last, e.At = err.Error(), now
	logIt = now.Sub(w.lastLog[kind]) >= 5*time.Second
	if logIt {
		w.lastLog[kind] = now
	}
	return logIt
}

// triggerRefresh asks the topic manager to refresh now.
func (w *Worker) triggerRefresh() {
	select {
	case w.refreshNow <- struct{}{}:
	default:
	}
}

// batchMaxBytes is the producer's per-topic batch limit: the remote topic's
// max.message.bytes, so that batches fit and only a record too large on its
// own is refused (franz-go fails it alone, before sending).
func (w *Worker) batchMaxBytes(topic string) int32 {
	if v, ok := w.limits.Load(topic); ok {
		return min(max(v.(int32), 512), 64<<20)
	}
	return 1000012 // Kafka's default max.message.bytes
}

// limit returns the remote topic's max.message.bytes, or 0 if unknown.
func (w *Worker) limit(remote string) int32 {
	if v, ok := w.limits.Load(remote); ok {
		return v.(int32)
	}
	return 0
}

package dashboards

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kdr-io/kdr/broker"
	"github.com/kdr-io/kdr/failover"
	"github.com/kdr-io/kdr/failover/store"
	"github.com/kdr-io/kdr/internal/kdrtest"
	"github.com/kdr-io/kdr/internal/obs"
	"github.com/kdr-io/kdr/mirror"
	"github.com/kdr-io/kdr/topology"
	"github.com/kdr-io/kdr/up"
)

// exported is what the code's registries export.
type exported struct {
	// names are every metric name the registries describe.
	names map[string]bool
	// types are the types of the names that had a series when gathered.
	types map[string]dto.MetricType
	// regs are the registries, by process kind (broker, mirror, up).
	regs map[string]*prometheus.Registry
}

var (
	exportedOnce sync.Once
	exportedVal  *exported
	exportedErr  error
)

// exportedMetrics starts, in process, what exports kdr's metrics and
// describes their registries: a broker that is the single voter of a raft
// metadata quorum (broker, controller, raft, group and request metrics),
// a plain broker, a mirror worker copying records from the first to the
// second and checkpointing a consumer group (mirror, offset-sync and
// checkpoint metrics), and kdr up's failover collector on a state with
// every part set (upRegistry). It runs once per test binary.
func exportedMetrics(t *testing.T) *exported {
	t.Helper()
	exportedOnce.Do(func() { exportedVal, exportedErr = startExporters(t) })
	if exportedErr != nil {
		t.Fatal(exportedErr)
	}
	return exportedVal
}

// exporterTB gives startExporters' brokers data dirs of its own and no
// test cleanups: it stops them itself, whichever test happened to start
// them.
type exporterTB struct {
	*testing.T
	dir string
}

func (e exporterTB) TempDir() string {
	d, err := os.MkdirTemp(e.dir, "broker")
	if err != nil {
		panic(err)
	}
	return d
}
func (e exporterTB) Cleanup(func()) {}

func startExporters(t *testing.T) (*exported, error) {
	dir, err := os.MkdirTemp("", "kdr-dashboards-exporters")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	tb := exporterTB{T: t, dir: dir}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	raftAddr := ln.Addr().String()
	ln.Close()
	brokerReg := obs.NewRegistry()
	cfg := kdrtest.TestConfig(tb)
	cfg.Cluster.RaftListen = raftAddr
	cfg.Cluster.Quorum = []broker.Voter{{ID: 1, Addr: raftAddr}}
	src, err := broker.Start(cfg, broker.Options{Registry: brokerReg})
	if err != nil {
		return nil, fmt.Errorf("starting the raft broker: %w", err)
	}
	defer src.Close()
	dst := kdrtest.StartBroker(tb)
	defer dst.Close()

	cl, err := kgo.NewClient(kgo.SeedBrokers(src.Addr()), kgo.DefaultProduceTopic("orders"))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := waitFor(ctx, func() error {
		r, err := adm.CreateTopic(ctx, 2, 1, nil, "orders")
		if err == nil && r.Err != nil && !strings.Contains(r.Err.Error(), "TOPIC_ALREADY_EXISTS") {
			err = r.Err
		}
		return err
	}); err != nil {
		return nil, fmt.Errorf("creating orders: %w", err)
	}
	for i := range 20 {
		if err := cl.ProduceSync(ctx, &kgo.Record{Key: []byte(strconv.Itoa(i)), Value: []byte("order")}).FirstErr(); err != nil {
			return nil, fmt.Errorf("producing: %w", err)
		}
	}
	if _, err := adm.CommitOffsets(ctx, "billing", kadm.OffsetsFromRecords(kgo.Record{Topic: "orders", Partition: 0, Offset: 1})); err != nil {
		return nil, fmt.Errorf("committing offsets of group billing: %w", err)
	}

	mirrorReg := obs.NewRegistry()
	f := mirror.DefaultFlow()
	f.SourceAlias, f.TargetAlias = "east", "west"
	f.Source.Brokers, f.Target.Brokers = []string{src.Addr()}, []string{dst.Addr()}
	f.Topics = "orders"
	f.RefreshInterval, f.CheckpointInterval, f.HeartbeatInterval = 200*time.Millisecond, 200*time.Millisecond, 100*time.Millisecond
	w, err := mirror.New(f, mirror.Options{Registerer: mirrorReg})
	if err != nil {
		return nil, err
	}
	wctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(wctx) }()
	defer func() {
		stop()
		<-done
	}()
	need := map[*prometheus.Registry][]string{
		mirrorReg: {"kdr_mirror_records_total", "kdr_mirror_replication_latency_seconds", "kdr_mirror_checkpoint_age_seconds",
			"kdr_mirror_offset_syncs_total", "kdr_mirror_commits_total", "kdr_mirror_lag_records",
			"kdr_mirror_fetch_seconds", "kdr_mirror_cycle_seconds", "kdr_mirror_forward_inflight_cycles"},
		brokerReg: {"kdr_broker_request_duration_seconds", "kdr_raft_commit_seconds", "kdr_topic_produced_bytes_total", "kdr_broker_storage_errors_total"},
	}
	if err := waitFor(ctx, func() error {
		for reg, names := range need {
			mfs, err := reg.Gather()
			if err != nil {
				return err
			}
			for _, n := range names {
				if !slices.ContainsFunc(mfs, func(mf *dto.MetricFamily) bool { return mf.GetName() == n }) {
					return fmt.Errorf("no %s series yet", n)
				}
			}
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("waiting for the mirror to copy and checkpoint: %w", err)
	}
	upReg, err := upRegistry()
	if err != nil {
		return nil, err
	}
	e := &exported{names: map[string]bool{}, types: map[string]dto.MetricType{},
		regs: map[string]*prometheus.Registry{"broker": brokerReg, "mirror": mirrorReg, "up": upReg}}
	for _, reg := range e.regs {
		ch := make(chan *prometheus.Desc)
		go func() { reg.Describe(ch); close(ch) }()
		for d := range ch {
			if m := fqName.FindStringSubmatch(d.String()); m != nil {
				e.names[m[1]] = true
			}
		}
		mfs, err := reg.Gather()
		if err != nil {
			return nil, err
		}
		for _, mf := range mfs {
			e.types[mf.GetName()] = mf.GetType()
		}
	}
	return e, nil
}

// upRegistry is kdr up's /metrics registry (up.NewFailoverCollector) on
// a failover state with an operation in progress, a fenced cluster, a
// history with a finished and a failed operation, and a last drill, so
// that every metric it describes has a series. It fails if one has none:
// then the state here misses a part the collector exports.
func upRegistry() (*prometheus.Registry, error) {
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	st := store.State{
		Topology: "demo", Active: "west", Epoch: 3, Fenced: []string{"east"},
		Operation: &store.Operation{ID: "op-2", Kind: failover.KindFailback, From: "west", To: "east", Step: "fence", StepIndex: 1, Started: start.Add(time.Hour)},
		History: []store.Event{
			{At: start, Kind: failover.KindSwitchover, Step: failover.StepStarted, Epoch: 2},
			{At: start.Add(20 * time.Second), Kind: failover.KindSwitchover, Step: failover.StepDone, Epoch: 3},
			{At: start.Add(time.Minute), Kind: failover.KindPromote, Step: failover.StepStarted, Epoch: 3},
			{At: start.Add(2 * time.Minute), Kind: failover.KindPromote, Step: failover.StepFailed, Epoch: 3},
		},
		LastDrill: json.RawMessage(`{"scenario":"planned-switchover","passed":true,"lost":0,"duplicated":1,"reordered":2,
			"rto_seconds":4.5,"rpo_records":0,"rpo_seconds":0,"finished_at":"2026-01-02T04:00:00Z"}`),
	}
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(up.NewFailoverCollector(topology.Demo(), func() (store.State, bool) { return st, true })); err != nil {
		return nil, err
	}
	mfs, err := reg.Gather()
	if err != nil {
		return nil, err
	}
	gathered := map[string]bool{}
	for _, mf := range mfs {
		gathered[mf.GetName()] = true
	}
	ch := make(chan *prometheus.Desc)
	go func() { reg.Describe(ch); close(ch) }()
	var missing []string
	for d := range ch {
		if m := fqName.FindStringSubmatch(d.String()); m != nil && !gathered[m[1]] {
			missing = append(missing, m[1])
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("kdr up's failover collector gave no series for %v on a state with every part set", missing)
	}
	return reg, nil
}

// fqName finds a metric's name in a prometheus.Desc's String().
var fqName = regexp.MustCompile(`fqName: "([^"]+)"`)

func waitFor(ctx context.Context, f func() error) error {
	for {
		err := f()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// has reports whether name is a series name the registries export: a
// metric name, or a histogram's _bucket, _sum or _count, or a summary's
// _sum or _count. "up" is Prometheus's own.
func (e *exported) has(name string) bool {
	if name == "up" || e.names[name] {
		return true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		base, ok := strings.CutSuffix(name, suffix)
		if !ok || !e.names[base] {
			continue
		}
		switch e.types[base] {
		case dto.MetricType_HISTOGRAM:
			return true
		case dto.MetricType_SUMMARY:
			return suffix != "_bucket"
		}
	}
	return false
}

package dashboards

import (
	"context"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"net"
	"os"
	"path/filepath"
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
	"github.com/kdr-io/kdr/internal/kdrtest"
	"github.com/kdr-io/kdr/internal/obs"
	"github.com/kdr-io/kdr/mirror"
)

// pendingMetrics are exported by kdr up's own /metrics (failover state and
// drill results), which another change is adding. Until kdr up's registry
// can be built here, these names are allowed in dashboards and alerts
// without being found in a registry. TestDashboardsPendingMetrics reports
// which of them the source already names.
//
// PENDING: remove this list once exportedMetrics describes kdr up's
// registry.
var pendingMetrics = []string{
	"kdr_failover_epoch",
	"kdr_failover_active_cluster",
	"kdr_failover_operation_in_progress",
	"kdr_failover_operations_total",
	"kdr_failover_last_operation_duration_seconds",
	"kdr_failover_fenced",
	"kdr_drill_last_lost_records",
	"kdr_drill_last_duplicated_records",
	"kdr_drill_last_reordered_records",
	"kdr_drill_last_rto_seconds",
	"kdr_drill_last_rpo_records",
	"kdr_drill_last_rpo_seconds",
	"kdr_drill_last_timestamp_seconds",
}

// exported is what the code's registries export.
type exported struct {
	// names are every metric name the registries describe.
	names map[string]bool
	// types are the types of the names that had a series when gathered.
	types map[string]dto.MetricType
	// regs are the registries, by process kind.
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
// a plain broker, and a mirror worker copying records from the first to
// the second and checkpointing a consumer group (mirror, offset-sync and
// checkpoint metrics). It runs once per test binary.
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
			"kdr_mirror_offset_syncs_total", "kdr_mirror_lag_records"},
		brokerReg: {"kdr_broker_request_duration_seconds", "kdr_raft_commit_seconds", "kdr_topic_produced_bytes_total"},
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
	e := &exported{names: map[string]bool{}, types: map[string]dto.MetricType{},
		regs: map[string]*prometheus.Registry{"broker": brokerReg, "mirror": mirrorReg}}
	fq := regexp.MustCompile(`fqName: "([^"]+)"`)
	for _, reg := range e.regs {
		ch := make(chan *prometheus.Desc)
		go func() { reg.Describe(ch); close(ch) }()
		for d := range ch {
			if m := fq.FindStringSubmatch(d.String()); m != nil {
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
	return slices.Contains(pendingMetrics, name)
}

// TestDashboardsPendingMetrics says which pending names (kdr up's failover
// and drill metrics) the module's non-test Go source already spells out,
// so the pending list can go once they all are.
func TestDashboardsPendingMetrics(t *testing.T) {
	root, err := kdrtest.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	literals := map[string]bool{}
	fset := token.NewFileSet()
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") || d.Name() == "node_modules" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return nil // someone's file mid-edit
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if lit, ok := n.(*ast.BasicLit); ok && lit.Kind == token.STRING {
				if s, err := strconv.Unquote(lit.Value); err == nil {
					literals[s] = true
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var found, missing []string
	for _, n := range pendingMetrics {
		if literals[n] {
			found = append(found, n)
		} else {
			missing = append(missing, n)
		}
	}
	t.Logf("pending metrics (allowed without a registry, see pendingMetrics): in the source %v; not yet %v", found, missing)
}

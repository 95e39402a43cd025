package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kdr-io/kdr/internal/kdrtest"
	"github.com/kdr-io/kdr/mirror"
	"github.com/kdr-io/kdr/up"
)

func parseMirrorRun(t *testing.T, env map[string]string, args ...string) (*MirrorRunOptions, error) {
	t.Helper()
	for k, v := range env {
		t.Setenv(k, v)
	}
	var got *MirrorRunOptions
	err := parseTop(NewCmdMirrorRun(IO{}, &globalOptions{}, func(o *MirrorRunOptions) error { got = o; return nil }), args...)
	return got, err
}

func TestMirrorRunOptions(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "mirror.yaml")
	if err := os.WriteFile(cfg, []byte("target-alias: west\ntarget-brokers: 10.1.0.1:9092,10.1.0.2:9092\nnaming: identity\nrefresh-interval: 2s\nbatch-records: 500\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	o, err := parseMirrorRun(t, map[string]string{"KDR_SOURCE_BROKERS": "10.0.0.1:9092", "KDR_BATCH_RECORDS": "700"},
		"--source-alias", "east", "--config", cfg, "--topics", "orders.*", "--sync-topic-configs=false", "--metrics-listen", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := o.Flow
	want := mirror.DefaultFlow()
	want.SourceAlias, want.TargetAlias = "east", "west"
	want.Source.Brokers, want.Target.Brokers = []string{"10.0.0.1:9092"}, []string{"10.1.0.1:9092", "10.1.0.2:9092"}
	want.Naming, want.Topics, want.SyncTopicConfigs = mirror.NamingIdentity, "orders.*", false
	want.RefreshInterval, want.BatchRecords = 2*time.Second, 700 // the environment beats the file
	if !reflect.DeepEqual(f, want) {
		t.Errorf("flow:\n got %+v\nwant %+v", f, want)
	}
	if o.MetricsListen != "127.0.0.1:0" || f.Group() != "kdr-mirror-east-west" {
		t.Errorf("metrics %q, group %q", o.MetricsListen, f.Group())
	}
}

func TestMirrorRunInvalidOptions(t *testing.T) {
	base := []string{"--source-alias", "east", "--source-brokers", "a:1", "--target-alias", "west", "--target-brokers", "b:2"}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--naming", "suffix"}, "--naming"},
		{[]string{"--target-alias", "east"}, "--target-alias"},
		{[]string{"--source-alias", "us.east"}, "--source-alias"},
		{[]string{"--topics", "(unclosed"}, "--topics"},
		{[]string{"--refresh-interval", "soon"}, "--refresh-interval"},
		{[]string{"--batch-records", "0"}, "--batch-records"},
		{[]string{"--commit-interval", "-1s"}, "--commit-interval"},
		{[]string{"--compression", "brotli"}, "--compression"},
		{[]string{"--target-brokers", ""}, "--target-brokers"},
	} {
		_, err := parseMirrorRun(t, nil, append(slices.Clone(base), c.args...)...)
		var ue usageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want a usage error naming %s", c.args, err, c.want)
		}
	}
}

// TestMirrorRunEveryFieldHasAFlag keeps the flag table complete: every
// mirror.Flow field is set by some flag (and so by KDR_* and --config).
func TestMirrorRunEveryFieldHasAFlag(t *testing.T) {
	args := []string{"--source-alias", "s", "--source-brokers", "a:1", "--target-alias", "t", "--target-brokers", "b:2",
		"--topics", "x", "--topics-exclude", "y", "--groups", "g", "--groups-exclude", "h", "--naming", "identity", "--separator", "_", "--local-records-only",
		"--sync-topic-configs=false", "--sync-topic-deletions", "--sync-topic-acls=false", "--configs-exclude", "c", "--refresh-interval", "7s", "--replication-factor", "3",
		"--heartbeat-interval", "3s", "--group", "grp", "--instance-id", "i", "--session-timeout", "8s", "--batch-records", "9", "--compression", "lz4",
		"--delivery-timeout", "11s", "--offset-syncs-retention", "12h", "--checkpoint-interval", "13s", "--sync-group-offsets=false",
		"--forward-batches=false", "--commit-interval", "0", "--offset-syncs-topic-location", "target", "--max-bytes-per-second", "1000000"}
	o, err := parseMirrorRun(t, nil, args...)
	if err != nil {
		t.Fatal(err)
	}
	got, def := reflect.ValueOf(o.Flow), reflect.ValueOf(mirror.DefaultFlow())
	for i := range got.NumField() {
		if reflect.DeepEqual(got.Field(i).Interface(), def.Field(i).Interface()) {
			t.Errorf("Flow.%s is not set by any flag", got.Type().Field(i).Name)
		}
	}
}

func TestMirrorStatusFromMetrics(t *testing.T) {
	const text = `# HELP kdr_mirror_records_total x
# TYPE kdr_mirror_records_total counter
kdr_mirror_records_total{flow="east->west",partition="1",topic="orders"} 12
kdr_mirror_records_total{flow="east->west",partition="0",topic="orders"} 30
kdr_mirror_bytes_total{flow="east->west",partition="0",topic="orders"} 3000
kdr_mirror_offset_syncs_total{flow="east->west",partition="0",topic="orders"} 4
kdr_mirror_lag_records{flow="east->west",partition="0",topic="orders"} 5
kdr_mirror_lag_seconds{flow="east->west",partition="0",topic="orders"} 0.25
kdr_mirror_replication_latency_seconds_sum{flow="east->west",topic="orders"} 2.1
kdr_mirror_replication_latency_seconds_count{flow="east->west",topic="orders"} 42
kdr_mirror_errors_total{flow="east->west",kind="target"} 2
kdr_mirror_errors_total{flow="east->west",kind="source"} 0
kdr_mirror_assigned_partitions{flow="east->west"} 1
kdr_mirror_fetch_failing_partitions{flow="east->west"} 0
kdr_mirror_assigned_partitions{flow="west->east"} 2
kdr_mirror_fetch_failing_partitions{flow="west->east"} 1
kdr_mirror_checkpoint_age_seconds{flow="east->west",group="billing"} 2.5
kdr_mirror_checkpoint_age_seconds{flow="east->west",group="new"} -1
kdr_mirror_records_total{flow="odd \"quoted\"\\flow",partition="0",topic="t"} 1
`
	health := "ok"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/healthz" && health != "ok":
			http.Error(w, health, http.StatusServiceUnavailable)
		case r.URL.Path == "/healthz":
			io.WriteString(w, health)
		case r.URL.Path == "/broker/metrics":
			io.WriteString(w, "kdr_broker_up 1\n")
		default:
			io.WriteString(w, text)
		}
	}))
	defer srv.Close()
	var out, errOut bytes.Buffer
	if code := Execute([]string{"mirror", "status", "--metrics", srv.URL + "/metrics"}, nil, &out, &errOut); code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	squash := func(s string) string { return strings.Join(strings.Fields(s), " ") }
	for _, want := range []string{
		`east->west orders 0 30 3000 4 5 250ms - 50ms`,
		`east->west orders 1 12 0 0 - - - 50ms`,
		`odd "quoted"\flow t 0 1 0 0 - - - -`,
		"east->west: 1 partitions assigned; errors: target=2",
		"west->east: 2 partitions assigned, 1 not fetched for 5s or more (see the worker's /healthz); errors: none",
		"east->west: checkpoint age by group: billing=2.5s new=-",
		"health: ok",
	} {
		if !strings.Contains(squash(out.String()), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	// host:port is enough, and JSON has a stable schema.
	if code := Execute([]string{"mirror", "status", "--metrics", strings.TrimPrefix(srv.URL, "http://"), "--output", "json"}, nil, &out, &errOut); code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	if !strings.Contains(out.String(), `"flow": "east->west"`) {
		t.Errorf("json escapes the flow's name:\n%s", out.String())
	}
	st := decodeJSON[mirrorStatus](t, out.String())
	if len(st.Checkpoints) != 2 || st.Checkpoints[0].Group != "billing" || *st.Checkpoints[0].AgeSeconds != 2.5 || st.Checkpoints[1].AgeSeconds != nil {
		t.Errorf("json checkpoints %+v", st.Checkpoints)
	}
	if st.NotFetched["west->east"] != 1 || st.NotFetched["east->west"] != 0 {
		t.Errorf("json fetch_failing_partitions %v", st.NotFetched)
	}
	if len(st.Partitions) != 3 || st.Partitions[0].Records != 30 || *st.Partitions[0].LagRecords != 5 || st.Assigned["east->west"] != 1 {
		t.Errorf("json status %+v", st)
	}
	if !st.Healthy || st.Health != "ok" {
		t.Errorf("json health %v %q", st.Healthy, st.Health)
	}
	// An unhealthy worker: the reason is shown, and the exit code says so.
	health = "listing target topics: unable to dial: connection refused"
	out.Reset()
	if code := Execute([]string{"mirror", "status", "--metrics", srv.URL}, nil, &out, &errOut); code != exitError ||
		!strings.Contains(out.String(), "health: NOT OK: "+health) {
		t.Errorf("unhealthy worker: exit %d, output:\n%s", code, out.String())
	}
	// Metrics that are not a worker's are refused, not shown as an idle worker.
	errOut.Reset()
	if code := Execute([]string{"mirror", "status", "--metrics", srv.URL + "/broker/metrics"}, nil, &out, &errOut); code != exitError ||
		!strings.Contains(errOut.String(), "not a kdr mirror worker's") {
		t.Errorf("broker metrics: exit %d, %s", code, errOut.String())
	}
	if code := Execute([]string{"mirror", "status", "--metrics", "127.0.0.1:1", "--timeout", "2s"}, nil, &out, &errOut); code != exitError ||
		!strings.Contains(errOut.String(), "is `kdr mirror run` running there?") {
		t.Errorf("unreachable worker: exit %d, %s", code, errOut.String())
	}
}

// TestMirrorRunCommand runs `kdr mirror run` in-process between two
// brokers: it prints its running line, copies, and `kdr mirror status`
// reads it.
func TestMirrorRunCommand(t *testing.T) {
	east, west := kdrtest.StartBroker(t), kdrtest.StartBroker(t)
	mustKdr(t, east.Addr(), "", "topic", "create", "orders", "--partitions", "2")
	mustKdr(t, east.Addr(), "one\ntwo\nthree\n", "produce", "orders")

	stdout, w := io.Pipe()
	var errOut bytes.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	root := NewCmdRoot(IO{In: strings.NewReader(""), Out: w, Err: &errOut})
	root.SetArgs([]string{"mirror", "run", "--source-alias", "east", "--source-brokers", east.Addr(), "--target-alias", "west",
		"--target-brokers", west.Addr(), "--metrics-listen", "127.0.0.1:0", "--refresh-interval", "500ms"})
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx); w.Close() }()
	defer func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("mirror run: %v", err)
			}
		case <-time.After(60 * time.Second):
			t.Error("mirror run did not stop after its context ended")
		}
	}()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	m := regexp.MustCompile(`^kdr mirror east->west running \(metrics on (http://\S+/metrics)\)`).FindStringSubmatch(line)
	if err != nil || m == nil {
		t.Fatalf("first line %q, %v; stderr:\n%s", line, err, errOut.String())
	}
	go io.Copy(io.Discard, stdout)

	cl, err := kgo.NewClient(kgo.SeedBrokers(west.Addr()), kgo.ConsumeTopics("east.orders"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var got []string
	pctx, pcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer pcancel()
	for len(got) < 3 && pctx.Err() == nil {
		cl.PollFetches(pctx).EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	slices.Sort(got)
	if !slices.Equal(got, []string{"one", "three", "two"}) {
		t.Fatalf("east.orders on west: %v", got)
	}
	kdrtest.Eventually(t, 20*time.Second, func() (bool, string) {
		var out, e bytes.Buffer
		Execute([]string{"mirror", "status", "--metrics", m[1]}, nil, &out, &e)
		return strings.Contains(out.String(), "east->west: 2 partitions assigned"), out.String() + e.String()
	})

	// Without --metrics, the workers kdr up's endpoints.json lists (this
	// process stands for kdr up: endpoints.json names a live pid), a
	// section each; one that cannot be read is shown in its place and
	// fails the exit status.
	dir := t.TempDir()
	writeEndpoints := func(running bool, workers ...up.WorkerEndpoints) {
		t.Helper()
		b, err := json.Marshal(up.Endpoints{Topology: "demo", StateDir: dir, PID: os.Getpid(), Running: running,
			Flows: []up.FlowEndpoints{{Name: "east->west", Source: "east", Target: "west", Workers: workers}}})
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, up.EndpointsFile), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	live := up.WorkerEndpoints{InstanceID: "east-west-0", MetricsURL: m[1]}
	writeEndpoints(true, live, up.WorkerEndpoints{InstanceID: "east-west-1", MetricsURL: "http://127.0.0.1:1/metrics"})
	var out, e bytes.Buffer
	code := Execute([]string{"mirror", "status", "--state-dir", dir, "--timeout", "5s"}, nil, &out, &e)
	for _, want := range []string{
		"east->west worker east-west-0 (" + m[1] + ")",
		"east->west: 2 partitions assigned",
		"health: ok",
		"east->west worker east-west-1 (http://127.0.0.1:1/metrics)\nunreadable: reading http://127.0.0.1:1/metrics",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("kdr up's workers: output lacks %q:\n%s", want, out.String())
		}
	}
	if code != exitError {
		t.Errorf("an unreadable worker: exit %d, stderr %s", code, e.String())
	}
	writeEndpoints(true, live)
	out.Reset()
	if code := Execute([]string{"mirror", "status", "--state-dir", dir, "--output", "json"}, nil, &out, &e); code != exitOK {
		t.Fatalf("kdr up's one worker, json: exit %d: %s", code, e.String())
	}
	sts := decodeJSON[[]mirrorStatus](t, out.String())
	if len(sts) != 1 || sts[0].Worker == nil || sts[0].Worker.Flow != "east->west" || sts[0].Worker.Instance != "east-west-0" ||
		sts[0].URL != m[1] || sts[0].Assigned["east->west"] != 2 || !sts[0].Healthy {
		t.Errorf("kdr up's workers, json: %+v", sts)
	}
	// A state dir whose kdr up has stopped: said so, not read as a worker.
	writeEndpoints(false, live)
	e.Reset()
	if code := Execute([]string{"mirror", "status", "--state-dir", dir}, nil, &out, &e); code != exitError ||
		!strings.Contains(e.String(), "kdr up is not running topology demo") {
		t.Errorf("stopped kdr up: exit %d, stderr %s", code, e.String())
	}
	e.Reset()
	if code := Execute([]string{"mirror", "status", "--state-dir", dir, "--metrics", m[1]}, nil, &out, &e); code != exitUsage {
		t.Errorf("--metrics with --state-dir: exit %d, stderr %s", code, e.String())
	}
}

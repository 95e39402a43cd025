package cli

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/kdr-io/kdr/broker"
	"github.com/kdr-io/kdr/clientsec"
	"github.com/kdr-io/kdr/dashboards"
	"github.com/kdr-io/kdr/mirror"
	"github.com/kdr-io/kdr/topology"
	"github.com/kdr-io/kdr/up"
)

// TestUpWorkerArgsCarryEveryFlowSetting: the arguments kdr up gives a
// mirror worker parse back, through kdr mirror run's own flags, into the
// very flow kdr up resolved, with every field away from its default.
func TestUpWorkerArgsCarryEveryFlowSetting(t *testing.T) {
	f := mirror.Flow{
		SourceAlias: "east", TargetAlias: "west",
		Source: mirror.ClusterConn{Brokers: []string{"10.0.0.1:9092", "10.0.0.2:9092"}, Security: clientsec.Config{
			TLS:  clientsec.TLS{Enabled: true, CAFile: "/etc/kdr/ca.pem", CertFile: "/etc/kdr/c.pem", KeyFile: "/etc/kdr/k.pem", ServerName: "kafka.east", InsecureSkipVerify: true},
			SASL: clientsec.SASL{Mechanism: "SCRAM-SHA-512", Username: "mirror", PasswordEnv: "EAST_PASSWORD"}}},
		Target: mirror.ClusterConn{Brokers: []string{"10.1.0.1:9092"}, Security: clientsec.Config{
			SASL: clientsec.SASL{Mechanism: "PLAIN", Username: "mm", Password: "hunter2"}}},
		Topics: "orders.*, pay ments", TopicsExclude: "x.*", Groups: "g.*", GroupsExclude: "tmp-.*",
		Naming: mirror.NamingIdentity, Separator: "_", LocalRecordsOnly: true,
		SyncTopicConfigs: false, ConfigsExclude: "cleanup.policy", SyncTopicDeletions: true, SyncTopicACLs: false,
		RefreshInterval: 1500 * time.Millisecond, ReplicationFactor: 2, HeartbeatInterval: -time.Second,
		WorkersGroup: "workers", InstanceID: "east-west-3", SessionTimeout: 7 * time.Second,
		BatchRecords: 123, Compression: "zstd", DeliveryTimeout: 11 * time.Second, OffsetSyncsRetention: 36 * time.Hour,
		CheckpointInterval: 2 * time.Second, SyncGroupOffsets: false, OffsetSyncsLocation: mirror.SyncsOnTarget, MaxBytesPerSecond: 5 << 20,
	}
	// Completeness: a field added to mirror.Flow must be set above (and so
	// be carried by up.WorkerArgs for this test to pass).
	def, fv := reflect.ValueOf(mirror.DefaultFlow()), reflect.ValueOf(f)
	for i := range fv.NumField() {
		if reflect.DeepEqual(fv.Field(i).Interface(), def.Field(i).Interface()) {
			t.Errorf("mirror.Flow.%s is at its default in this test; set it so the test covers it", fv.Type().Field(i).Name)
		}
	}
	args := up.WorkerArgs(f, f.InstanceID, "127.0.0.1:4567")
	if args[0] != "mirror" || args[1] != "run" {
		t.Fatalf("args %q", args)
	}
	// The worker reads a password given as such from its environment,
	// never from its arguments.
	env := up.WorkerEnv(f)
	if want := []string{"KDR_UP_TARGET_SASL_PASSWORD=hunter2"}; !reflect.DeepEqual(env, want) {
		t.Fatalf("WorkerEnv %q, want %q", env, want)
	}
	joined := strings.Join(args, " ")
	if strings.Contains(joined, "hunter2") {
		t.Fatalf("a password is in the worker's arguments: %q", args)
	}
	t.Setenv("EAST_PASSWORD", "x")
	k, v, _ := strings.Cut(env[0], "=")
	t.Setenv(k, v)
	o, err := parseMirrorRun(t, nil, args[2:]...)
	if err != nil {
		t.Fatalf("kdr mirror run %q: %v", args, err)
	}
	want := f
	want.Target.Security.SASL.Password, want.Target.Security.SASL.PasswordEnv = "", "KDR_UP_TARGET_SASL_PASSWORD"
	if !reflect.DeepEqual(o.Flow, want) || o.MetricsListen != "127.0.0.1:4567" {
		t.Fatalf("round trip:\n got %+v\nwant %+v\nmetrics %q", o.Flow, want, o.MetricsListen)
	}
	// And every flag of kdr mirror run but --config and the passwords is
	// passed.
	cmd := NewCmdMirrorRun(IO{}, &globalOptions{}, nil)
	cmd.Flags().VisitAll(func(fl *pflag.Flag) {
		switch passed := strings.Contains(joined, "--"+fl.Name+"="); fl.Name {
		case "config":
		case "source-sasl-password", "target-sasl-password":
			if passed {
				t.Errorf("kdr up passes --%s to its mirror workers", fl.Name)
			}
		default:
			if !passed {
				t.Errorf("kdr up does not pass --%s to its mirror workers", fl.Name)
			}
		}
	})
}

func TestUpBrokerArgsParse(t *testing.T) {
	c := topology.Cluster{Name: "east", Local: &topology.LocalCluster{Brokers: 3, BasePort: 9092, Racks: []string{"a", "b", "c"},
		ReplicationFactor: 2, Partitions: 6, MinInsyncReplicas: 1, GroupInitialRebalanceDelayMs: 1500}}
	args := up.BrokerArgs(c, 2, "/data/east/broker-3")
	var got *BrokerOptions
	if err := parseTop(NewCmdBroker(IO{}, &globalOptions{}, func(o *BrokerOptions) error { got = o; return nil }), args[1:]...); err != nil {
		t.Fatalf("kdr %q: %v", args, err)
	}
	cfg := got.Config
	want, err := broker.ParseQuorum("1@127.0.0.1:9192,2@127.0.0.1:9193,3@127.0.0.1:9194")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.NodeID != 3 || cfg.ClusterID != "east" || cfg.Listen != "127.0.0.1:9094" || cfg.Cluster.RaftListen != "127.0.0.1:9194" ||
		cfg.MetricsListen != "127.0.0.1:9294" || cfg.DataDir != "/data/east/broker-3" || cfg.Rack != "c" ||
		cfg.DefaultReplicationFactor != 2 || cfg.NumPartitions != 6 || cfg.MinInsyncReplicas != 1 ||
		cfg.OffsetsTopicReplicationFactor != 3 || cfg.Group.InitialRebalanceDelay != 1500*time.Millisecond ||
		!reflect.DeepEqual(cfg.Cluster.Quorum, want) {
		t.Fatalf("config from %q:\n%+v", args, cfg)
	}
}

// TestUpPrometheusNotInstalled: kdr up --prometheus without a prometheus
// binary warns, naming the Debian package, and goes on.
func TestUpPrometheusNotInstalled(t *testing.T) {
	var w strings.Builder
	if prometheusInstalled(&w, filepath.Join(t.TempDir(), "no-prometheus")) {
		t.Fatal("a missing binary counts as installed")
	}
	if !strings.Contains(w.String(), "apt-get install prometheus") || !strings.Contains(w.String(), "goes on without") {
		t.Fatalf("warning %q", w.String())
	}
}

func TestUpAndStatusOptions(t *testing.T) {
	var uo *UpOptions
	err := parseTop(newCmdUp(IO{}, &globalOptions{}, func(o *UpOptions) error { uo = o; return nil }),
		"estate.yaml", "--state-dir", "/s", "--bin", "/b/kdr", "--no-demo-producer")
	if err != nil || uo.File != "estate.yaml" || uo.StateDir != "/s" || uo.Bin != "/b/kdr" || !uo.NoDemoProducer {
		t.Fatalf("up: %v %+v", err, uo)
	}
	if uo.Prometheus || uo.PrometheusListen != dashboards.DefaultListen || uo.MetricsListen != up.DefaultMetricsListen {
		t.Fatalf("up defaults: %+v", uo)
	}
	err = parseTop(newCmdUp(IO{}, &globalOptions{}, func(o *UpOptions) error { uo = o; return nil }),
		"--prometheus", "--prometheus-listen", "127.0.0.1:19090")
	if err != nil || !uo.Prometheus || uo.PrometheusListen != "127.0.0.1:19090" {
		t.Fatalf("up --prometheus: %v %+v", err, uo)
	}
	err = parseTop(newCmdUp(IO{}, &globalOptions{}, func(*UpOptions) error { return nil }), "a.yaml", "b.yaml")
	if _, ok := err.(usageError); !ok {
		t.Fatalf("two files: %v, want a usage error", err)
	}
	var so *StatusOptions
	err = parseTop(newCmdStatus(IO{}, &globalOptions{}, func(o *StatusOptions) error { so = o; return nil }),
		"--output", "json", "--watch", "--timeout", "2s")
	if err != nil || so.File != "" || so.Output != outputJSON || !so.Watch || so.Timeout != 2*time.Second {
		t.Fatalf("status: %v %+v", err, so)
	}
	err = parseTop(newCmdStatus(IO{}, &globalOptions{}, func(*StatusOptions) error { return nil }), "--output", "yaml")
	if _, ok := err.(usageError); !ok {
		t.Fatalf("--output yaml: %v, want a usage error", err)
	}
}

package topology

import (
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kdr-io/kdr/mirror"
)

// exampleFlows are the flows each example must expand into, in order.
var exampleFlows = map[string][]string{
	"active-passive.yaml": {"east->west"},
	"active-active.yaml":  {"nyc->ldn", "ldn->nyc"},
	"hub-and-spoke.yaml":  {"store1->hub", "store2->hub", "store3->hub", "hub->store1", "hub->store2", "hub->store3"},
	"stretched.yaml":      nil,
}

func flowNames(t *Topology) []string {
	var out []string
	for _, f := range t.Flows() {
		out = append(out, f.Name())
	}
	return out
}

func TestTopologyExamples(t *testing.T) {
	files, err := filepath.Glob("examples/*.yaml")
	if err != nil || len(files) != len(exampleFlows) {
		t.Fatalf("examples: %v, %v; want the %d in exampleFlows", files, err, len(exampleFlows))
	}
	// Every local port of the examples and the demo is distinct and below
	// Linux's ephemeral range, so that they can run side by side.
	owner := map[int]string{}
	claim := func(who string, top *Topology) {
		for _, c := range top.Clusters {
			if c.Local == nil {
				continue
			}
			for _, r := range c.Local.PortRanges() {
				for p := r.Lo; p <= r.Hi; p++ {
					if p >= 32768 {
						t.Errorf("%s: cluster %s uses port %d, in the ephemeral range", who, c.Name, p)
					}
					if prev, taken := owner[p]; taken {
						t.Errorf("%s: cluster %s uses port %d, as %s does", who, c.Name, p, prev)
					}
					owner[p] = who + "/" + c.Name
				}
			}
			if c.Local.Host != "127.0.0.1" {
				t.Errorf("%s: cluster %s listens on %q, want loopback", who, c.Name, c.Local.Host)
			}
		}
	}
	claim("demo", Demo())
	for _, file := range files {
		want, ok := exampleFlows[filepath.Base(file)]
		if !ok {
			t.Errorf("%s: not in exampleFlows", file)
			continue
		}
		top, err := Load(file)
		if err != nil {
			t.Errorf("%s: %v", file, err)
			continue
		}
		if got := flowNames(top); !slices.Equal(got, want) {
			t.Errorf("%s: flows %v, want %v", file, got, want)
		}
		for _, f := range top.Flows() {
			if err := f.Flow.Validate(); err != nil {
				t.Errorf("%s: flow %s: %v", file, f.Name(), err)
			}
		}
		if top.File != file {
			t.Errorf("%s: File %q", file, top.File)
		}
		claim(filepath.Base(file), top)
	}
}

func TestTopologyExampleStretched(t *testing.T) {
	top, err := Load("examples/stretched.yaml")
	if err != nil {
		t.Fatal(err)
	}
	l := top.Clusters[0].Local
	if l.Brokers != 6 || len(l.Racks) != 6 || l.Racks[0] != l.Racks[1] || l.Racks[1] == l.Racks[2] || l.ReplicationFactor != 3 {
		t.Errorf("stretched cluster: %+v", l)
	}
}

func TestTopologyDemoValidates(t *testing.T) {
	d := Demo()
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
	if got := flowNames(d); !slices.Equal(got, []string{"east->west"}) {
		t.Errorf("demo flows %v", got)
	}
	f := d.Flows()[0].Flow
	if f.Naming != mirror.NamingIdentity || !slices.Equal(f.Source.Brokers, []string{"127.0.0.1:9092", "127.0.0.1:9093", "127.0.0.1:9094"}) ||
		!slices.Equal(f.Target.Brokers, []string{"127.0.0.1:19092", "127.0.0.1:19093", "127.0.0.1:19094"}) {
		t.Errorf("demo flow %+v", f)
	}
	if d.Clusters[1].Local.DataDir != "west" || d.Failover.MaxLag != 30*time.Second {
		t.Errorf("demo defaults not applied: %+v %+v", d.Clusters[1].Local, d.Failover)
	}
}

const minimal = `apiVersion: kdr.io/v1
kind: Topology
metadata: {name: prod}
clusters:
  - name: east
    local: {basePort: 9092}
  - name: west
    bootstrap: ["kafka1.west:9092", "kafka2.west:9092"]
replication:
  - type: active-passive
    primary: east
    standby: west
    mirror:
      refreshInterval: 2s
      topics: "orders.*"
      workers: 3
      commitInterval: 250ms
      maxBytesPerSecond: 0
mirror:
  refreshInterval: 1m
  heartbeatInterval: -1s
  naming: identity
  syncTopicACLs: false
  offsetSyncsRetention: 720h
  offsetSyncsTopicLocation: target
  maxBytesPerSecond: 1048576
failover:
  maxLag: 1m30s
  timeouts: {drain: 5m}
`

func TestTopologyParseDefaults(t *testing.T) {
	top, err := Parse([]byte(minimal), "prod.yaml")
	if err != nil {
		t.Fatal(err)
	}
	wantLocal := LocalCluster{Brokers: 3, Host: "127.0.0.1", BasePort: 9092, DataDir: "east"}
	if got := *top.Clusters[0].Local; !reflect.DeepEqual(got, wantLocal) {
		t.Errorf("local: got %+v, want %+v", got, wantLocal)
	}
	wantFailover := FailoverPolicy{
		Coordination:  Coordination{Backend: BackendFile, Consul: ConsulConfig{Address: "127.0.0.1:8500", KeyPrefix: "kdr/prod"}},
		MaxLagRecords: 10000, MaxLag: 90 * time.Second,
		Timeouts: FailoverTimeouts{Fence: 30 * time.Second, Drain: 5 * time.Minute, Promote: 30 * time.Second},
	}
	if !reflect.DeepEqual(top.Failover, wantFailover) {
		t.Errorf("failover: got %+v, want %+v", top.Failover, wantFailover)
	}
	flows := top.Flows()
	if len(flows) != 1 {
		t.Fatalf("flows %v", flows)
	}
	want := mirror.DefaultFlow()
	want.SourceAlias, want.TargetAlias = "east", "west"
	want.Source.Brokers = []string{"127.0.0.1:9092", "127.0.0.1:9093", "127.0.0.1:9094"}
	want.Target.Brokers = []string{"kafka1.west:9092", "kafka2.west:9092"}
	want.RefreshInterval = 2 * time.Second // the pattern's beats the topology's
	want.HeartbeatInterval = -time.Second
	want.CommitInterval = 250 * time.Millisecond
	want.OffsetSyncsRetention = 30 * 24 * time.Hour
	want.OffsetSyncsLocation = mirror.SyncsOnTarget
	want.Naming, want.Topics, want.SyncTopicACLs = mirror.NamingIdentity, "orders.*", false
	if !reflect.DeepEqual(flows[0].Flow, want) || flows[0].Workers != 3 {
		t.Errorf("flow:\n got %+v (%d workers)\nwant %+v", flows[0].Flow, flows[0].Workers, want)
	}
}

func TestTopologyParseYAMLAnchors(t *testing.T) {
	doc := `apiVersion: kdr.io/v1
kind: Topology
metadata: {name: anchors}
clusters:
  - name: a
    local: &small {brokers: 1, basePort: 9092, partitions: 6}
  - name: b
    local:
      <<: *small
      basePort: 10092
`
	top, err := Parse([]byte(doc), "anchors.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if b := top.Clusters[1].Local; b.Brokers != 1 || b.Partitions != 6 || b.BasePort != 10092 {
		t.Errorf("merged local: %+v", b)
	}
}

func TestTopologyParseExplicitZeros(t *testing.T) {
	doc := `apiVersion: kdr.io/v1
kind: Topology
metadata: {name: zeros}
clusters:
  - name: a
    local:
      brokers: 0
      basePort: 9092
  - name: b
    local:
mirror:
  refreshInterval: 0s
  topics: ""
  workers: 0
`
	_, err := Parse([]byte(doc), "zeros.yaml")
	got := map[string]string{}
	for _, p := range Problems(err) {
		got[fmt.Sprintf("%d %s", p.Line, p.Field)] = p.Problem
	}
	want := map[string]string{
		"7 clusters[0].local.brokers":   "0: want 1 to 99",
		"10 clusters[1].local.basePort": "required", // "local:" with nothing under it
		"12 mirror.refreshInterval":     "0s: must be positive",
		"13 mirror.topics":              "empty",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("problems:\n got %v\nwant %v\n(%v)", got, want, err)
	}
}

func TestTopologyParseEmpty(t *testing.T) {
	for _, doc := range []string{"", "# nothing\n", "~\n"} {
		_, err := Parse([]byte(doc), "empty.yaml")
		var e *Error
		if !errors.As(err, &e) || e.Line != 1 || !strings.Contains(e.Problem, "empty document") {
			t.Errorf("%q: %v", doc, err)
		}
	}
}

func TestTopologyLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"))
	if err == nil || errors.Is(err, ErrInvalid) {
		t.Errorf("missing file: %v, want a read error that is not ErrInvalid", err)
	}
}

func TestTopologyErrorFormat(t *testing.T) {
	for _, c := range []struct {
		e    Error
		want string
	}{
		{Error{File: "t.yaml", Line: 3, Column: 5, Field: "clusters[0].name", Problem: "required", Hint: "name it"},
			"t.yaml:3:5: clusters[0].name: required (fix: name it)"},
		{Error{File: "t.yaml", Line: 3, Problem: "YAML syntax: x"}, "t.yaml:3: YAML syntax: x"},
		{Error{Field: "kind", Problem: `"x": want "Topology"`}, `kind: "x": want "Topology"`}, // built in code
	} {
		if got := c.e.Error(); got != c.want {
			t.Errorf("got %q, want %q", got, c.want)
		}
	}
}

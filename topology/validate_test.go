package topology

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// invalidCases are the problems each file of testdata/invalid must give:
// all of them, and nothing else.
var invalidCases = []struct {
	file          string
	line          int
	field         string
	problem, hint string // substrings
}{
	{"unknown-key.yaml", 9, "clusters[0].local.basePrt", `unknown key "basePrt"`, `did you mean "basePort"?`},
	{"unknown-key.yaml", 7, "clusters[0].local.basePort", "required", "basePort+100+i"},
	{"unknown-cluster.yaml", 13, "replication[0].standby", `unknown cluster "wset"`, `did you mean "west"? defined clusters: "east", "west"`},
	{"port-clash.yaml", 13, "clusters[1].local.basePort", `kafka ports 9192-9194 of "west" overlap the raft ports 9192-9194 of "east" (clusters[0]) at 9192`, "move basePort to 9195"},
	{"consul-port.yaml", 7, "clusters[0].local.basePort", `raft ports 8500-8502 of "east" include 8500, the Consul agent's port`, "move basePort to 8401"},
	{"hub-also-spoke.yaml", 13, "replication[0].spokes[1]", `"hub" is the hub and also a spoke`, "remove it from spokes"},
	{"mixed-cycle.yaml", 17, "replication[1].mirror.naming", "the cycle east -> west (identity, replication[0]) -> east (prefix, replication[1]) mixes prefix and identity naming", "kdr-origin header"},
	{"bad-duration.yaml", 8, "mirror.refreshInterval", `"soon" is not a duration`, `"5s"`},
	{"bad-duration.yaml", 9, "mirror.checkpointInterval", "5 has no unit", `"5s"`},
	{"bad-duration.yaml", 12, "failover.timeouts.drain", `"2 minutes" is not a duration`, ""},
	{"missing-baseport.yaml", 8, "clusters[0].local.basePort", "required", "broker 0's Kafka port"},
	{"wrong-apiversion.yaml", 1, "apiVersion", `"kdr.io/v2": want "kdr.io/v1"`, ""},
	{"wrong-apiversion.yaml", 2, "kind", `"Topologies": want "Topology"`, ""},
	{"bootstrap-and-local.yaml", 6, "clusters[0]", "both bootstrap and local are set", ""},
	{"bootstrap-and-local.yaml", 9, "clusters[1]", "neither bootstrap nor local is set", ""},
	{"racks-mismatch.yaml", 10, "clusters[0].local.racks", "2 racks for 3 brokers", "one rack per broker"},
	{"racks-mismatch.yaml", 11, "clusters[0].local.replicationFactor", "4 exceeds the 3 brokers", ""},
	{"racks-mismatch.yaml", 12, "clusters[0].local.groupInitialRebalanceDelayMs", "-1: must not be negative", "Kafka's broker default is 3000"},
	{"duplicate-flow.yaml", 11, "replication[1]", "flow east->west is also produced by replication[0]", ""},
	{"shared-syncs.yaml", 13, "replication[1].mirror.offsetSyncsTopicLocation", "flow west->east would write its offset syncs to mm2-offset-syncs.east.internal on west, as flow east->west of replication[0] does", "same offsetSyncsTopicLocation"},
	{"bad-mirror.yaml", 9, "replication[0].type", `unknown pattern type "active-pasive"`, `did you mean "active-passive"?`},
	{"bad-mirror.yaml", 14, "replication[1].mirror.naming", `"suffix": want "prefix" or "identity"`, ""},
	{"bad-mirror.yaml", 15, "replication[1].mirror.topics", "(orders", "RE2"},
	{"bad-mirror.yaml", 16, "replication[1].mirror.workers", "-1: want 1 or more", ""},
	{"bad-mirror.yaml", 18, "mirror.batchRecords", "0: must be positive", ""},
	{"bad-mirror.yaml", 19, "mirror.commitInterval", "0s: must be positive", "--commit-interval 0"},
	{"bad-mirror.yaml", 20, "mirror.offsetSyncsRetention", "must be positive", ""},
	{"bad-mirror.yaml", 22, "mirror.maxBytesPerSecond", "-5: want 0 (no cap) or a positive byte rate", ""},
	{"bad-mirror.yaml", 21, "mirror.offsetSyncsTopicLocation", `"sideways": want "source" (MM2's default) or "target"`, `with "target" the workers need only read the source`},
	{"bad-yaml.yaml", 3, "", "YAML syntax", ""},
	{"bad-types.yaml", 8, "clusters[0].local.brokers", `want a whole number, got "three"`, ""},
	{"bad-types.yaml", 10, "clusters[0].bootstrap", "want a list", ""},
	{"clusters.yaml", 7, "clusters[0].bootstrap[0]", `"kafka1": not host:port`, ""},
	{"clusters.yaml", 8, "clusters[1].name", `"east" is also the name of clusters[0]`, "unique"},
	{"clusters.yaml", 10, "clusters[2].name", `"us.west" contains the separator "."`, ""},
	{"clusters.yaml", 14, "replication[0].clusters", "at least two distinct clusters, got 1", ""},
	{"failover.yaml", 9, "failover.coordination.backend", `unknown backend "zookeeper"`, ""},
	{"failover.yaml", 10, "failover.maxLag", "0s: must be positive", ""},
}

func TestTopologyValidateInvalidFiles(t *testing.T) {
	files, err := filepath.Glob("testdata/invalid/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatal(files, err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			_, err := Load(file)
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v, want one wrapping ErrInvalid", err)
			}
			var first *Error
			if !errors.As(err, &first) {
				t.Fatalf("errors.As found no *Error in %v", err)
			}
			problems := Problems(err)
			var want int
			for _, c := range invalidCases {
				if c.file != filepath.Base(file) {
					continue
				}
				want++
				found := false
				for _, p := range problems {
					if p.Line == c.line && p.Field == c.field && strings.Contains(p.Problem, c.problem) && strings.Contains(p.Hint, c.hint) {
						found = true
						prefix := fmt.Sprintf("%s:%d:", file, c.line)
						if s := p.Error(); !strings.HasPrefix(s, prefix) || !strings.Contains(s, c.field) {
							t.Errorf("%q: want it to start %q and name %s", s, prefix, c.field)
						}
					}
				}
				if !found {
					t.Errorf("no problem at line %d, field %q, problem ~%q, hint ~%q; got:\n%v", c.line, c.field, c.problem, c.hint, err)
				}
			}
			if want == 0 {
				t.Fatalf("no invalidCases for %s", file)
			}
			if len(problems) != want {
				t.Errorf("%d problems, want %d:\n%v", len(problems), want, err)
			}
		})
	}
}

// ring builds a topology of local clusters c0..c(n-1) with one
// active-passive pattern per flow c_i -> c_(i+1 mod n), naming[i] each.
func ring(naming ...string) *Topology {
	t := &Topology{APIVersion: APIVersion, Kind: Kind, Metadata: Metadata{Name: "ring"}}
	for i := range naming {
		t.Clusters = append(t.Clusters, Cluster{Name: fmt.Sprintf("c%d", i), Local: &LocalCluster{Brokers: 1, BasePort: 9092 + 1000*i}})
	}
	for i, n := range naming {
		p := Pattern{Type: ActivePassive, Primary: fmt.Sprintf("c%d", i), Standby: fmt.Sprintf("c%d", (i+1)%len(naming))}
		p.Mirror.Naming, p.Mirror.Separator, _ = strings.Cut(n, " ")
		t.Replication = append(t.Replication, p)
	}
	return t
}

func TestTopologyValidateCycles(t *testing.T) {
	for _, c := range []struct {
		name string
		top  *Topology
		want string // problem substring, "" for valid
	}{
		{"identity pair", ring("identity", "identity"), ""},
		{"prefix pair", ring("prefix", "prefix"), ""},
		{"identity ring", ring("identity", "identity", "identity"), ""},
		{"prefix ring", ring("prefix", "prefix", "prefix"), ""},
		{"prefix ring, one separator", ring("prefix _", "prefix _", "prefix _"), ""},
		{"mixed pair", ring("identity", "prefix"), "the cycle c0 -> c1 (identity, replication[0]) -> c0 (prefix, replication[1]) mixes prefix and identity"},
		{"mixed ring", ring("identity", "identity", "prefix"), "mixes prefix and identity naming"},
		{"prefix ring, two separators", ring("prefix", "prefix _", "prefix"), "different separators"},
		{"a chain is no cycle", func() *Topology {
			t := ring("identity", "prefix", "prefix")
			t.Replication = t.Replication[:2]
			return t
		}(), ""},
		{"active-active prefix", &Topology{APIVersion: APIVersion, Kind: Kind, Metadata: Metadata{Name: "aa"},
			Clusters:    ring("a", "b", "c").Clusters,
			Replication: []Pattern{{Type: ActiveActive, Clusters: []string{"c0", "c1", "c2"}}}}, ""},
		{"hub-and-spoke identity up, prefix down", &Topology{APIVersion: APIVersion, Kind: Kind, Metadata: Metadata{Name: "hs"},
			Clusters: ring("a", "b", "c").Clusters,
			Replication: []Pattern{
				{Type: HubAndSpoke, Hub: "c0", Spokes: []string{"c1", "c2"}, Up: &TopicSelection{}, Mirror: MirrorSettings{Naming: "identity"}},
				{Type: HubAndSpoke, Hub: "c0", Spokes: []string{"c1", "c2"}, Down: &TopicSelection{Topics: "prices"}},
			}}, "mixes prefix and identity naming"},
	} {
		err := c.top.Validate()
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: error %v, want one containing %q", c.name, err, c.want)
		case c.want != "":
			var e *Error
			if !errors.As(err, &e) || e.Line != 0 || !strings.HasPrefix(e.Field, "replication[") || !strings.Contains(e.Hint, "same") {
				t.Errorf("%s: %#v", c.name, e)
			}
		}
	}
}

func TestTopologyValidateInCode(t *testing.T) {
	top := Demo()
	top.Clusters[1].Local.Racks = []string{"a"}
	top.Replication[0].Mirror.RefreshInterval = -1
	top.Failover.Coordination.Backend = "fil"
	err := top.Validate()
	got := map[string]bool{}
	for _, p := range Problems(err) {
		got[p.Field] = true
		if p.Line != 0 || p.File != "" {
			t.Errorf("a topology built in code has no positions: %v", p)
		}
	}
	for _, f := range []string{"clusters[1].local.racks", "replication[0].mirror.refreshInterval", "failover.coordination.backend"} {
		if !got[f] {
			t.Errorf("no problem at %s in:\n%v", f, err)
		}
	}
	if len(got) != 3 {
		t.Errorf("problems at %v, want 3", got)
	}
	if !strings.Contains(err.Error(), `did you mean "file"?`) {
		t.Errorf("no did-you-mean for the backend: %v", err)
	}
	if Demo().Clusters[1].Local.BasePort != 19092 {
		t.Error("Demo returns shared state")
	}
}

// TestTopologyIdentityPaths: under identity naming a record must reach each
// cluster by one path. An active-active mesh of three clusters copies only
// local records (each cluster gets every record straight from its origin);
// told not to, or built from separate patterns, it is refused, naming both
// paths and the fix.
func TestTopologyIdentityPaths(t *testing.T) {
	no := false
	mesh := func(local *bool) *Topology {
		return &Topology{APIVersion: APIVersion, Kind: Kind, Metadata: Metadata{Name: "aa"},
			Clusters: ring("a", "b", "c").Clusters,
			Replication: []Pattern{{Type: ActiveActive, Clusters: []string{"c0", "c1", "c2"},
				Mirror: MirrorSettings{Naming: "identity", LocalRecordsOnly: local}}}}
	}
	if err := mesh(nil).Validate(); err != nil {
		t.Fatalf("identity mesh of three: %v", err)
	}
	for _, f := range mesh(nil).Flows() {
		if !f.Flow.LocalRecordsOnly {
			t.Errorf("flow %s of an identity mesh of three forwards mirrored records", f.Name())
		}
	}
	for _, f := range ring("identity", "identity").Flows() {
		if f.Flow.LocalRecordsOnly {
			t.Errorf("flow %s of an identity pair copies local records only", f.Name())
		}
	}
	diamond := ring("identity", "identity", "identity") // c0 -> c1 -> c2 -> c0
	diamond.Replication = append(diamond.Replication, Pattern{Type: ActivePassive, Primary: "c0", Standby: "c2", Mirror: MirrorSettings{Naming: "identity"}})
	for _, c := range []struct {
		name string
		top  *Topology
		want string
	}{
		{"mesh told to forward", mesh(&no), "records written on c0 reach c1 by two paths under identity naming, c0 -> c1 and c0 -> c2 -> c1"},
		{"a second path beside a ring", diamond, "records written on c0 reach c2 by two paths under identity naming, c0 -> c1 -> c2 and c0 -> c2"},
	} {
		err := c.top.Validate()
		var e *Error
		if err == nil || !strings.Contains(err.Error(), c.want) || !errors.As(err, &e) || !strings.Contains(e.Hint, "localRecordsOnly: true") {
			t.Errorf("%s: error %v, want one containing %q and the fix", c.name, err, c.want)
		}
	}
	prefix := mesh(nil)
	prefix.Replication[0].Mirror = MirrorSettings{LocalRecordsOnly: func() *bool { b := true; return &b }()}
	if err := prefix.Validate(); err == nil || !strings.Contains(err.Error(), "localRecordsOnly") || !strings.Contains(err.Error(), "only with identity naming") {
		t.Errorf("localRecordsOnly under prefix naming: %v", err)
	}
}

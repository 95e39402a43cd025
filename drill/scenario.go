package drill

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/kdr-io/kdr/internal/yamlschema"
	"github.com/kdr-io/kdr/topology"
)

// The document header every scenario carries.
const (
	APIVersion = "kdr.io/v1"
	Kind       = "Scenario"
)

// Actions a step can take.
const (
	ActStartLoad      = "start-load"
	ActStopLoad       = "stop-load"
	ActWait           = "wait"
	ActKillBroker     = "kill-broker"
	ActKillCluster    = "kill-cluster"
	ActRestartCluster = "restart-cluster"
	ActIsolateCluster = "isolate-cluster"
	ActHealCluster    = "heal-cluster"
	ActKillMirror     = "kill-mirror"
	ActRestartMirror  = "restart-mirror"
	ActCutNetwork     = "cut-network"
	ActHealNetwork    = "heal-network"
	ActSwitchover     = "switchover"
	ActPromote        = "promote"
	ActFailback       = "failback"
	ActRepoint        = "repoint"
	ActVerify         = "verify"
)

// Wait conditions, Wait.Until.
const (
	UntilLagZero    = "lag-zero"   // every flow out of the active cluster has lag 0 and the consumer has every record the active cluster acknowledged
	UntilRecords    = "records"    // the consumer group received Records more records
	UntilHealthy    = "healthy"    // every cluster reachable with all brokers
	UntilStep       = "step"       // a background failover reported step Step started
	UntilBackground = "background" // every background step finished
)

// Scenario is one drill. Field tags are the YAML keys.
type Scenario struct {
	APIVersion  string `yaml:"apiVersion"`
	Kind        string `yaml:"kind"`
	Name        string `yaml:"name"`
	Description string `yaml:"description"`
	// Topology is the topology file, relative to the scenario's directory;
	// empty means the built-in demo (topology.Demo).
	Topology string `yaml:"topology"`
	Load     Load   `yaml:"load"`
	Steps    []Step `yaml:"steps"`

	// File is the path the scenario was read from.
	File string `yaml:"-"`

	// idx locates the file's keys for Validate's problems; nil for a
	// scenario built in code.
	idx *yamlschema.Index
	// keyProblems are the unknown keys ParseScenario found; LoadScenario
	// lists them with Validate's problems.
	keyProblems []*Error
}

// Load is the workload the drill runs through failover/client.
type Load struct {
	// Rate is records per second (default 300).
	Rate float64 `yaml:"rate"`
	// Keys is the number of distinct keys (default 16).
	Keys int `yaml:"keys"`
	// Topic is produced and consumed (default "drill").
	Topic string `yaml:"topic"`
	// Partitions of the topic the drill creates (default 3).
	Partitions int32 `yaml:"partitions"`
	// ConsumerGroup consumes the topic (default "drill").
	ConsumerGroup string `yaml:"consumerGroup"`
}

// Step is one action, optionally followed by a wait.
type Step struct {
	Action string `yaml:"action"`
	Args   Args   `yaml:"args"`
	Wait   *Wait  `yaml:"wait"`
	// Background runs the action concurrently: the next step starts at
	// once (wait with until: step or until: background).
	Background bool `yaml:"background"`
}

// Args are the arguments of every action; each action takes the ones its
// documentation names.
type Args struct {
	Cluster string   `yaml:"cluster"`
	Broker  int      `yaml:"broker"`
	Flow    string   `yaml:"flow"`
	Between []string `yaml:"between"`
	To      string   `yaml:"to"`
	Verify  `yaml:",inline"`
}

// Verify are the thresholds of a verify step; unset ones are not checked.
type Verify struct {
	MaxLost        *int64        `yaml:"maxLost"`
	MaxDuplicated  *int64        `yaml:"maxDuplicated"`
	MaxReordered   *int64        `yaml:"maxReordered"`
	MaxUndelivered *int64        `yaml:"maxUndelivered"`
	MaxRPORecords  *int64        `yaml:"maxRPORecords"`
	MaxRPO         time.Duration `yaml:"maxRPO"`
	// MaxRTO bounds both the producer's and the consumer's RTO.
	MaxRTO         time.Duration `yaml:"maxRTO"`
	MaxProducerRTO time.Duration `yaml:"maxProducerRTO"`
	MaxConsumerRTO time.Duration `yaml:"maxConsumerRTO"`
}

// Wait is a pause after a step: a duration, or a condition with a timeout.
type Wait struct {
	Duration time.Duration `yaml:"duration"`
	Until    string        `yaml:"until"`
	Records  int64         `yaml:"records"`
	Step     string        `yaml:"step"`
	// Timeout bounds a condition (default 2 minutes); reaching it fails
	// the step.
	Timeout time.Duration `yaml:"timeout"`
}

// DefaultWaitTimeout bounds a wait condition without a timeout.
const DefaultWaitTimeout = 2 * time.Minute

// String is the step as a progress line shows it.
func (s Step) String() string {
	var parts []string
	a := s.Args
	for _, kv := range []struct{ k, v string }{{"cluster", a.Cluster}, {"flow", a.Flow}, {"to", a.To}} {
		if kv.v != "" {
			parts = append(parts, kv.k+"="+kv.v)
		}
	}
	if a.Broker > 0 {
		parts = append(parts, "broker="+strconv.Itoa(a.Broker))
	}
	if len(a.Between) > 0 {
		parts = append(parts, "between="+strings.Join(a.Between, ","))
	}
	if s.Background {
		parts = append(parts, "(background)")
	}
	if w := s.Wait; w != nil {
		parts = append(parts, "wait="+w.String())
	}
	return strings.TrimSpace(s.Action + " " + strings.Join(parts, " "))
}

func (w Wait) String() string {
	switch {
	case w.Until == UntilRecords:
		return fmt.Sprintf("%d records", w.Records)
	case w.Until == UntilStep:
		return "step " + w.Step
	case w.Until != "":
		return w.Until
	}
	return w.Duration.String()
}

// Error is one problem in a scenario: FILE:LINE:COL: FIELD: PROBLEM (fix:
// HINT), as a topology's; the YAML path is "steps[2].args.to".
type Error = yamlschema.Error

// LoadScenario reads and validates a scenario file and its topology
// (topologyFile, if not empty, replaces the scenario's). An invalid
// scenario gives every problem, each an *Error, joined: keys the scenario
// does not know beside Validate's problems; values of the wrong type
// alone, since the scenario cannot be decoded to validate it.
func LoadScenario(path, topologyFile string) (*Scenario, *topology.Topology, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("drill: %w", err)
	}
	s, err := parseScenario(data, path)
	if err != nil {
		return nil, nil, err
	}
	var t *topology.Topology
	switch {
	case topologyFile != "":
		t, err = topology.Load(topologyFile)
	case s.Topology != "":
		t, err = topology.Load(s.TopologyPath())
	default:
		t = topology.Demo()
	}
	if err != nil {
		return nil, nil, err
	}
	if err := yamlschema.Join(append(s.keyProblems, s.problems(t)...)); err != nil {
		return nil, nil, err
	}
	return s, t, nil
}

// TopologyPath is the scenario's topology file, resolved against the
// scenario's directory ("" for the demo).
func (s *Scenario) TopologyPath() string {
	if s.Topology == "" || filepath.IsAbs(s.Topology) {
		return s.Topology
	}
	return filepath.Join(filepath.Dir(s.File), s.Topology)
}

// ParseScenario decodes a scenario and applies the load defaults; Validate
// checks it against a topology. Unknown keys and values of the wrong type
// are errors, every one listed (see LoadScenario).
func ParseScenario(data []byte, file string) (*Scenario, error) {
	s, err := parseScenario(data, file)
	if err != nil {
		return nil, err
	}
	if err := yamlschema.Join(s.keyProblems); err != nil {
		return nil, err
	}
	return s, nil
}

// parseScenario is ParseScenario keeping the unknown keys in keyProblems
// rather than failing on them, so that LoadScenario can list them beside
// Validate's problems.
func parseScenario(data []byte, file string) (*Scenario, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, yamlschema.SyntaxError(file, err)
	}
	if len(doc.Content) == 0 {
		return nil, &Error{File: file, Line: 1, Problem: "empty document", Hint: "start with apiVersion: " + APIVersion + " and kind: " + Kind}
	}
	// The schema check, not the decoder, judges the document: the decoder
	// stops at its first problem and names Go types.
	root := doc.Content[0]
	idx, found := yamlschema.Check(root, reflect.TypeFor[Scenario](), "yaml")
	keyProblems, fatal := yamlschema.Errors(file, found)
	if fatal {
		return nil, yamlschema.Join(keyProblems)
	}
	var s Scenario
	if err := root.Decode(&s); err != nil {
		// Only what the schema check cannot see, such as an anchor cycle.
		return nil, &Error{File: file, Line: root.Line, Column: root.Column, Problem: err.Error()}
	}
	s.File = file
	s.idx = idx
	s.keyProblems = keyProblems
	for i := range s.Steps {
		if w := s.Steps[i].Wait; w != nil && w.Until == "" {
			switch {
			case w.Records > 0:
				w.Until = UntilRecords
			case w.Step != "":
				w.Until = UntilStep
			}
		}
	}
	l := &s.Load
	if l.Rate == 0 {
		l.Rate = 300
	}
	if l.Keys == 0 {
		l.Keys = 16
	}
	if l.Topic == "" {
		l.Topic = "drill"
	}
	if l.Partitions == 0 {
		l.Partitions = 3
	}
	if l.ConsumerGroup == "" {
		l.ConsumerGroup = "drill"
	}
	return &s, nil
}

// Validate checks the scenario against the topology it runs on and
// returns every problem, joined.
func (s *Scenario) Validate(t *topology.Topology) error {
	return yamlschema.Join(s.problems(t))
}

// problems are Validate's. A step's are on the step's first line, others
// on their key's line (or the line of the mapping that should hold it);
// they name the field, so they carry no column.
func (s *Scenario) problems(t *topology.Topology) []*Error {
	var errs []*Error
	addAt := func(at, field, problem, hint string) {
		errs = append(errs, &Error{File: s.File, Line: s.idx.Pos(at).Line, Field: field, Problem: problem, Hint: hint})
	}
	add := func(field, problem, hint string) { addAt(field, field, problem, hint) }
	if s.APIVersion != APIVersion {
		add("apiVersion", fmt.Sprintf("is %q, want %q", s.APIVersion, APIVersion), "")
	}
	if s.Kind != Kind {
		add("kind", fmt.Sprintf("is %q, want %q", s.Kind, Kind), "")
	}
	if s.Name == "" {
		add("name", "is empty", "name the scenario; reports and kdr status show it")
	}
	l := s.Load
	if l.Rate < 0 || l.Rate > 5000 {
		add("load.rate", fmt.Sprintf("%g records/s is outside 1..5000", l.Rate), "")
	}
	if l.Keys < 1 {
		add("load.keys", fmt.Sprintf("is %d, want at least 1", l.Keys), "")
	}
	if l.Partitions < 1 {
		add("load.partitions", fmt.Sprintf("is %d, want at least 1", l.Partitions), "")
	}
	if len(s.Steps) == 0 {
		add("steps", "no steps", "start with - action: start-load")
	}
	v := &validator{t: t}
	for i, st := range s.Steps {
		field := yamlschema.IndexPath("steps", i)
		for _, p := range v.step(st, i == len(s.Steps)-1) {
			addAt(field, field+p.field, p.problem, p.hint)
		}
	}
	return errs
}

type problem struct{ field, problem, hint string }

type validator struct{ t *topology.Topology }

func (v *validator) clusterNames() []string {
	names := make([]string, len(v.t.Clusters))
	for i, c := range v.t.Clusters {
		names[i] = c.Name
	}
	return names
}

func quoted(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = strconv.Quote(n)
	}
	return strings.Join(q, ", ")
}

// cluster checks a cluster argument; local requires kdr up to run it.
func (v *validator) cluster(field, name string, local bool) []problem {
	if name == "" {
		return []problem{{field, "is required", "one of " + quoted(v.clusterNames())}}
	}
	c := v.t.ClusterByName(name)
	if c == nil {
		return []problem{{field, fmt.Sprintf("cluster %q is not in topology %s", name, v.t.Metadata.Name), "one of " + quoted(v.clusterNames())}}
	}
	if local && c.Local == nil {
		return []problem{{field, fmt.Sprintf("cluster %q is not local: the drill can only kill what kdr up runs", name), ""}}
	}
	return nil
}

// flowOK reports whether "a->b" is a flow kdr up can run: a topology flow
// or the reverse of an active-passive one (after a switchover).
func (v *validator) flowOK(name string) bool {
	for _, f := range v.t.Flows() {
		if f.Name() == name {
			return true
		}
	}
	for _, p := range v.t.Replication {
		if p.Type == topology.ActivePassive && name == p.Standby+"->"+p.Primary {
			return true
		}
	}
	return false
}

func (v *validator) step(st Step, last bool) []problem {
	var out []problem
	a := st.Args
	allowed := map[string]bool{}
	switch st.Action {
	case ActStartLoad, ActStopLoad:
	case ActWait:
		if st.Wait == nil {
			out = append(out, problem{".wait", "a wait step needs wait: {duration: D} or wait: {until: C}", ""})
		}
	case ActKillBroker:
		allowed["cluster"], allowed["broker"] = true, true
		out = append(out, v.cluster(".args.cluster", a.Cluster, true)...)
		if c := v.t.ClusterByName(a.Cluster); c != nil && c.Local != nil && (a.Broker < 1 || a.Broker > c.Local.Brokers) {
			out = append(out, problem{".args.broker", fmt.Sprintf("broker %d is not in 1..%d (cluster %s's node ids)", a.Broker, c.Local.Brokers, a.Cluster), ""})
		}
	case ActKillCluster, ActRestartCluster, ActIsolateCluster, ActHealCluster:
		allowed["cluster"] = true
		out = append(out, v.cluster(".args.cluster", a.Cluster, true)...)
	case ActKillMirror, ActRestartMirror:
		allowed["flow"] = true
		if a.Flow != "" && !v.flowOK(a.Flow) {
			var names []string
			for _, f := range v.t.Flows() {
				names = append(names, f.Name())
			}
			out = append(out, problem{".args.flow", fmt.Sprintf("flow %q is not in the topology", a.Flow), "one of " + quoted(names) + ", or leave it out for every flow"})
		}
	case ActCutNetwork, ActHealNetwork:
		allowed["between"] = true
		if len(a.Between) != 2 {
			out = append(out, problem{".args.between", fmt.Sprintf("has %d clusters, want two: [a, b]", len(a.Between)), ""})
		}
		for i, c := range a.Between {
			out = append(out, v.cluster(fmt.Sprintf(".args.between[%d]", i), c, false)...)
		}
	case ActSwitchover, ActPromote, ActFailback, ActRepoint:
		allowed["to"] = true
		out = append(out, v.cluster(".args.to", a.To, false)...)
	case ActVerify:
		if !last {
			out = append(out, problem{".action", "verify must be the last step", "move it to the end"})
		}
	case "":
		return []problem{{".action", "is required", "one of " + quoted(actions)}}
	default:
		hint := "one of " + quoted(actions)
		return []problem{{".action", fmt.Sprintf("unknown action %q", st.Action), hint}}
	}
	if st.Action != ActVerify && a.Verify != (Verify{}) {
		out = append(out, problem{".args", "verify thresholds (max...) belong to a verify step", ""})
	}
	for name, set := range map[string]bool{"cluster": a.Cluster != "", "broker": a.Broker != 0, "flow": a.Flow != "",
		"between": len(a.Between) > 0, "to": a.To != ""} {
		if set && !allowed[name] {
			out = append(out, problem{".args." + name, fmt.Sprintf("%s does not take %s", st.Action, name), ""})
		}
	}
	if st.Background && st.Action != ActSwitchover && st.Action != ActPromote && st.Action != ActFailback {
		out = append(out, problem{".background", "only switchover, promote and failback can run in the background", ""})
	}
	if w := st.Wait; w != nil {
		out = append(out, checkWait(*w)...)
	}
	return out
}

var actions = []string{ActStartLoad, ActStopLoad, ActWait, ActKillBroker, ActKillCluster, ActRestartCluster,
	ActIsolateCluster, ActHealCluster, ActKillMirror, ActRestartMirror, ActCutNetwork, ActHealNetwork,
	ActSwitchover, ActPromote, ActFailback, ActRepoint, ActVerify}

func checkWait(w Wait) []problem {
	switch w.Until {
	case "":
		if w.Duration <= 0 {
			return []problem{{".wait", "needs duration (e.g. 10s) or until (" + quoted(untils) + ")", ""}}
		}
	case UntilRecords:
		if w.Records <= 0 {
			return []problem{{".wait.records", "until: records needs records: N > 0", ""}}
		}
	case UntilStep:
		if w.Step == "" {
			return []problem{{".wait.step", "until: step needs step: NAME (a failover step, e.g. drain)", ""}}
		}
	case UntilLagZero, UntilHealthy, UntilBackground:
	default:
		return []problem{{".wait.until", fmt.Sprintf("unknown condition %q", w.Until), "one of " + quoted(untils)}}
	}
	if w.Until != "" && w.Duration > 0 {
		return []problem{{".wait", "set duration or until, not both", "use timeout to bound a condition"}}
	}
	return nil
}

var untils = []string{UntilLagZero, UntilRecords, UntilHealthy, UntilStep, UntilBackground}

package drill

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kdr-io/kdr/topology"
)

func TestDrillScenariosShippedAreValid(t *testing.T) {
	files, err := filepath.Glob("../scenarios/*.yaml")
	if err != nil || len(files) < 8 {
		t.Fatalf("want the 8 shipped scenarios, found %d (%v)", len(files), err)
	}
	for _, f := range files {
		s, topo, err := LoadScenario(f, "")
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		if s.Name+".yaml" != filepath.Base(f) {
			t.Errorf("%s: name %q does not match the file name", f, s.Name)
		}
		for _, c := range topo.Clusters {
			if c.Local == nil || c.Local.BasePort+299 >= 32768 {
				t.Errorf("%s: cluster %s must be local with ports below 32768", f, c.Name)
			}
		}
	}
}

func TestDrillScenarioErrorsNameFileLineAndField(t *testing.T) {
	doc := `apiVersion: kdr.io/v1
kind: Scenario
name: bad
load: {rate: 100}
steps:
  - action: start-load
  - action: kill-broker
    args: {cluster: east, broker: 7}
  - action: switchover
    args: {to: nowhere}
  - action: wait
    wait: {until: forever}
  - action: explode
  - action: verify
    args: {maxLost: 0}
  - action: stop-load
`
	s, err := ParseScenario([]byte(doc), "bad.yaml")
	if err != nil {
		t.Fatal(err)
	}
	err = s.Validate(topology.Demo())
	var first *Error
	if !errors.As(err, &first) {
		t.Fatalf("want *Error, got %v", err)
	}
	for _, want := range []string{
		"bad.yaml:7: steps[1].args.broker: broker 7 is not in 1..3",
		`bad.yaml:9: steps[2].args.to: cluster "nowhere" is not in topology demo`,
		`bad.yaml:11: steps[3].wait.until: unknown condition "forever"`,
		`bad.yaml:13: steps[4].action: unknown action "explode"`,
		"bad.yaml:14: steps[5].action: verify must be the last step",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("errors do not contain %q:\n%v", want, err)
		}
	}
}

func TestDrillScenarioUnknownKeyIsAnError(t *testing.T) {
	_, err := ParseScenario([]byte("apiVersion: kdr.io/v1\nkind: Scenario\nname: x\nsteps:\n  - action: wait\n    wiat: {duration: 1s}\n"), "x.yaml")
	if err == nil || !strings.Contains(err.Error(), "x.yaml:6:") || !strings.Contains(err.Error(), "wiat") {
		t.Fatalf("want an error naming line 6 and the key, got %v", err)
	}
}

// writeScenario writes doc to a scenario file in a new temp dir.
func writeScenario(t *testing.T, doc string) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(file, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}

// checkProblems requires err to list exactly want, one problem a line,
// each prefixed with file.
func checkProblems(t *testing.T, err error, file string, want []string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %d problems", len(want))
	}
	got := strings.Split(err.Error(), "\n")
	for i := range want {
		want[i] = file + ":" + want[i]
	}
	if !slices.Equal(got, want) {
		t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// A QA run found that a typo'd key stopped the load at the first problem, in
// Go type names ("field maxLots not found in type drill.Args"): every
// problem is listed, unknown keys with their YAML path and the closest key,
// beside the problems the topology check finds.
func TestDrillScenarioListsUnknownKeysWithValidationProblems(t *testing.T) {
	file := writeScenario(t, `apiVersion: kdr.io/v1
kind: Scenario
name: bad
load: {rate: 100, keyz: 4}
steps:
  - action: start-load
  - action: switchover
    args: {to: nowhere}
  - action: verify
    args:
      maxLots: 0
`)
	_, _, err := LoadScenario(file, "")
	checkProblems(t, err, file, []string{
		`4:19: load.keyz: unknown key "keyz" (fix: did you mean "keys"? (known keys here: rate, keys, topic, partitions, consumerGroup))`,
		`7: steps[1].args.to: cluster "nowhere" is not in topology demo (fix: one of "east", "west")`,
		`11:7: steps[2].args.maxLots: unknown key "maxLots" (fix: did you mean "maxLost"? (known keys here: cluster, broker, flow, between, to, ` +
			`maxLost, maxDuplicated, maxReordered, maxUndelivered, maxRPORecords, maxRPO, maxRTO, maxProducerRTO, maxConsumerRTO))`,
	})
}

// Values of the wrong type are all listed too, with what is accepted
// instead of "cannot unmarshal !!str `6O` into time.Duration".
func TestDrillScenarioListsEveryTypeProblem(t *testing.T) {
	file := writeScenario(t, `apiVersion: kdr.io/v1
kind: Scenario
name: bad
load: {rate: fast}
steps:
  - action: start-load
  - action: wait
    wait: {duration: 10}
    background: yes please
  - action: verify
    args: {maxLost: none, maxRTO: 6O, maxDuplicatd: 0}
`)
	_, _, err := LoadScenario(file, "")
	checkProblems(t, err, file, []string{
		`4:14: load.rate: want a number, got "fast"`,
		`8:22: steps[1].wait.duration: 10 has no unit (fix: write a unit, e.g. "10s" or "10ms")`,
		`9:17: steps[1].background: want true or false, got "yes please"`,
		`11:21: steps[2].args.maxLost: want a whole number, got "none"`,
		`11:35: steps[2].args.maxRTO: "6O" is not a duration (fix: write a Go duration such as "5s", "500ms", "2m" or "1h30m")`,
		`11:39: steps[2].args.maxDuplicatd: unknown key "maxDuplicatd" (fix: did you mean "maxDuplicated"? (known keys here: cluster, broker, flow, between, to, ` +
			`maxLost, maxDuplicated, maxReordered, maxUndelivered, maxRPORecords, maxRPO, maxRTO, maxProducerRTO, maxConsumerRTO))`,
	})
}

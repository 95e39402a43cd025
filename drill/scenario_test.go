package drill

import (
	"errors"
	"path/filepath"
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

package yamlschema

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

func TestDidYouMean(t *testing.T) {
	known := []string{"brokers", "host", "basePort", "dataDir", "racks"}
	for in, want := range map[string]string{"basePrt": "basePort", "baseport": "basePort", "rack": "racks", "hosts": "host", "datadri": "dataDir", "zone": ""} {
		if got := DidYouMean(in, known); got != want {
			t.Errorf("DidYouMean(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestCheckInlineAndFloat covers what only yaml-tagged types use: keys of
// an inlined struct belong to the enclosing mapping, and float fields take
// whole and fractional numbers but nothing else.
func TestCheckInlineAndFloat(t *testing.T) {
	type thresholds struct {
		MaxLost *int64        `yaml:"maxLost"`
		MaxRTO  time.Duration `yaml:"maxRTO"`
	}
	type args struct {
		To         string  `yaml:"to"`
		Rate       float64 `yaml:"rate"`
		thresholds `yaml:",inline"`
	}
	doc := "to: west\nrate: 2.5\nmaxLots: 1\nmaxRTO: 6O\n---\nrate: 3\n---\nrate: fast\n"
	dec := yaml.NewDecoder(strings.NewReader(doc))
	var got [][]Problem
	for {
		var n yaml.Node
		if err := dec.Decode(&n); err != nil {
			break
		}
		_, p := Check(n.Content[0], reflect.TypeFor[args](), "yaml")
		got = append(got, p)
	}
	want := [][]Problem{
		{
			{Position{3, 1}, "maxLots", `unknown key "maxLots"`, `did you mean "maxLost"? (known keys here: to, rate, maxLost, maxRTO)`, false},
			{Position{4, 9}, "maxRTO", `"6O" is not a duration`, `write a Go duration such as "5s", "500ms", "2m" or "1h30m"`, true},
		},
		nil,
		{{Position{8, 7}, "rate", `want a number, got "fast"`, "", true}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
}

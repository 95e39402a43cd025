package topology

import (
	"strings"
	"testing"
)

func TestTopologyGraph(t *testing.T) {
	ap, err := Load("examples/active-passive.yaml")
	if err != nil {
		t.Fatal(err)
	}
	hs, err := Load("examples/hub-and-spoke.yaml")
	if err != nil {
		t.Fatal(err)
	}
	st, err := Load("examples/stretched.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		top    *Topology
		format string
		want   string
	}{
		{ap, GraphText, `east -> west  (active-passive, identity naming, topics orders.*, payments.*, excluding .*\.tmp)` + "\n"},
		{hs, GraphText, `store1 -> hub  (hub-and-spoke, prefix naming, topics sales.*, inventory)
store2 -> hub  (hub-and-spoke, prefix naming, topics sales.*, inventory)
store3 -> hub  (hub-and-spoke, prefix naming, topics sales.*, inventory)
hub -> store1  (hub-and-spoke, prefix naming, topics prices, promotions, excluding promotions-draft)
hub -> store2  (hub-and-spoke, prefix naming, topics prices, promotions, excluding promotions-draft)
hub -> store3  (hub-and-spoke, prefix naming, topics prices, promotions, excluding promotions-draft)
`},
		{st, GraphText, "no replication flows; clusters: metro\n"},
		{ap, GraphDOT, `digraph "active-passive" {
  rankdir=LR;
  node [shape=box];
  "east" [label="east\nus-east"];
  "west" [label="west\nus-west"];
  "east" -> "west" [label="active-passive"];
}
`},
		{ap, GraphMermaid, `flowchart LR
  c0["east<br/>us-east"]
  c1["west<br/>us-west"]
  c0 -->|active-passive| c1
`},
	} {
		var b strings.Builder
		if err := WriteGraph(&b, c.top, c.format); err != nil {
			t.Fatal(err)
		}
		if b.String() != c.want {
			t.Errorf("%s %s:\n got:\n%s\nwant:\n%s", c.top.Metadata.Name, c.format, b.String(), c.want)
		}
	}
	if err := WriteGraph(new(strings.Builder), ap, "svg"); err == nil {
		t.Error("format svg: no error")
	}
}

func TestTopologyGraphEscapes(t *testing.T) {
	top := &Topology{Metadata: Metadata{Name: `q"uote`}, Clusters: []Cluster{{Name: "a-b", Region: `eu "west"`}}}
	var dot, mm strings.Builder
	if err := WriteGraph(&dot, top, GraphDOT); err != nil {
		t.Fatal(err)
	}
	if err := WriteGraph(&mm, top, GraphMermaid); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(dot.String(), `digraph "q\"uote"`) || !strings.Contains(dot.String(), `"a-b" [label="a-b\neu \"west\""];`) {
		t.Errorf("dot:\n%s", dot.String())
	}
	if !strings.Contains(mm.String(), `c0["a-b<br/>eu #quot;west#quot;"]`) {
		t.Errorf("mermaid:\n%s", mm.String())
	}
}

package naming

import (
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

func hdr(k, v string) kgo.RecordHeader { return kgo.RecordHeader{Key: k, Value: []byte(v)} }

func TestNamingProvenance(t *testing.T) {
	cases := []struct {
		headers []kgo.RecordHeader
		want    []string
	}{
		{nil, nil},
		{[]kgo.RecordHeader{hdr("trace", "x")}, nil},
		{[]kgo.RecordHeader{hdr(ProvenanceHeader, "")}, nil},
		{[]kgo.RecordHeader{hdr(ProvenanceHeader, "east")}, []string{"east"}},
		{[]kgo.RecordHeader{hdr(ProvenanceHeader, "east, west,,")}, []string{"east", "west"}},
		{[]kgo.RecordHeader{hdr(ProvenanceHeader, "east"), hdr("x", "y"), hdr(ProvenanceHeader, "west")}, []string{"east", "west"}},
	}
	for _, tc := range cases {
		if got := Provenance(tc.headers); !slices.Equal(got, tc.want) {
			t.Errorf("Provenance(%v) = %v, want %v", tc.headers, got, tc.want)
		}
	}
}

func TestNamingWithHop(t *testing.T) {
	in := []kgo.RecordHeader{hdr("trace", "1"), hdr(ProvenanceHeader, "east"), hdr("x", "2"), hdr(ProvenanceHeader, "west")}
	out := WithHop(in, "central")
	want := []kgo.RecordHeader{hdr("trace", "1"), hdr(ProvenanceHeader, "east,west,central"), hdr("x", "2")}
	if !slices.EqualFunc(out, want, func(a, b kgo.RecordHeader) bool { return a.Key == b.Key && string(a.Value) == string(b.Value) }) {
		t.Errorf("WithHop = %v, want %v", out, want)
	}
	if string(in[1].Value) != "east" || len(in) != 4 {
		t.Errorf("WithHop modified its input: %v", in)
	}
	fresh := WithHop([]kgo.RecordHeader{hdr("trace", "1")}, "east")
	if len(fresh) != 2 || fresh[1].Key != ProvenanceHeader || string(fresh[1].Value) != "east" {
		t.Errorf("WithHop without a header = %v", fresh)
	}
	if got := WithHop(nil, "east"); len(got) != 1 || string(got[0].Value) != "east" {
		t.Errorf("WithHop(nil) = %v", got)
	}
}

func TestNamingVisited(t *testing.T) {
	h := []kgo.RecordHeader{hdr(ProvenanceHeader, "east, west")}
	for alias, want := range map[string]bool{"east": true, "west": true, "central": false, "eas": false, "": false} {
		if got := Visited(h, alias); got != want {
			t.Errorf("Visited(%q) = %v, want %v", alias, got, want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { Visited(h, "central") }); n != 0 {
		t.Errorf("Visited allocates %v times", n)
	}
}

// TestNamingProvenanceStopsLoops simulates identity-named flows record by
// record: each flow forwards every copy of the record on its source once,
// unless the target is in the copy's provenance.
func TestNamingProvenanceStopsLoops(t *testing.T) {
	type flow struct{ from, to string }
	type copyOn struct {
		cluster string
		headers []kgo.RecordHeader
	}
	run := func(flows []flow, origin string) []string {
		queue := []copyOn{{cluster: origin}}
		var reached []string
		for len(queue) > 0 {
			if len(reached) > 100 {
				t.Fatalf("record keeps circulating: %v", reached)
			}
			c := queue[0]
			queue = queue[1:]
			for _, f := range flows {
				if f.from != c.cluster || Visited(c.headers, f.to) {
					continue
				}
				h := WithHop(c.headers, f.from)
				if slices.Contains(Provenance(h), f.to) {
					t.Fatalf("copy on %s has itself in its provenance %v", f.to, Provenance(h))
				}
				queue = append(queue, copyOn{f.to, h})
				reached = append(reached, f.to+"="+string(h[0].Value))
			}
		}
		return reached
	}
	cases := []struct {
		name  string
		flows []flow
		want  []string
	}{
		{"active-active", []flow{{"east", "west"}, {"west", "east"}}, []string{"west=east"}},
		{"chain", []flow{{"east", "west"}, {"west", "central"}}, []string{"west=east", "central=east,west"}},
		{"ring", []flow{{"east", "west"}, {"west", "central"}, {"central", "east"}}, []string{"west=east", "central=east,west"}},
		{"hub-and-spoke", []flow{{"s1", "hub"}, {"s2", "hub"}, {"hub", "s1"}, {"hub", "s2"}}, []string{"hub=s1", "s2=s1,hub"}},
		// A full mesh stops loops but delivers one copy per simple path:
		// identity naming cannot tell the two copies on west apart.
		{"full mesh", []flow{{"east", "west"}, {"east", "central"}, {"west", "central"}, {"central", "west"}, {"west", "east"}, {"central", "east"}},
			[]string{"west=east", "central=east", "central=east,west", "west=east,central"}},
	}
	for _, tc := range cases {
		origin := tc.flows[0].from
		if got := run(tc.flows, origin); !slices.Equal(got, tc.want) {
			t.Errorf("%s: reached %v, want %v", tc.name, got, tc.want)
		}
	}
}

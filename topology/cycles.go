package topology

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/kdr-io/kdr/internal/yamlschema"
	"github.com/kdr-io/kdr/mirror"
)

// maxCycles bounds the cycles examined; real estates have a handful.
const maxCycles = 256

// simpleCycles lists the simple cycles of the flow graph, each as the flows
// around it in order, starting from its lowest cluster (in order of first
// appearance). flows must hold one flow per ordered pair.
func simpleCycles(flows []FlowSpec) [][]FlowSpec {
	ids := map[string]int{}
	id := func(name string) int {
		if i, ok := ids[name]; ok {
			return i
		}
		ids[name] = len(ids)
		return ids[name]
	}
	type edge struct {
		to int
		f  FlowSpec
	}
	var adj [][]edge
	for _, f := range flows {
		from, to := id(f.Flow.SourceAlias), id(f.Flow.TargetAlias)
		for len(adj) < len(ids) {
			adj = append(adj, nil)
		}
		adj[from] = append(adj[from], edge{to, f})
	}
	var out [][]FlowSpec
	var path []FlowSpec
	onPath := make([]bool, len(adj))
	// From each start s, walk only through clusters after s, so that each
	// cycle is found once, from its lowest cluster.
	var walk func(s, v int)
	walk = func(s, v int) {
		for _, e := range adj[v] {
			if len(out) >= maxCycles {
				return
			}
			switch {
			case e.to == s:
				out = append(out, append(slices.Clone(path), e.f))
			case e.to > s && !onPath[e.to]:
				onPath[e.to] = true
				path = append(path, e.f)
				walk(s, e.to)
				path = path[:len(path)-1]
				onPath[e.to] = false
			}
		}
	}
	for s := range adj {
		onPath[s] = true
		walk(s, s)
		onPath[s] = false
	}
	return out
}

// cycles rejects the cycles whose loops no flow can see. A cycle whose
// flows all use identity naming is safe: each flow adds its source to the
// record's kdr-origin header and drops records the target has had. One
// whose flows all use prefix naming with one separator is safe: names carry
// their path ("west.east.orders") and a topic is never sent to a cluster
// its name says it came from. Mixing the two is not: prefix flows do not
// maintain the header, and identity flows copy names unchanged, so a topic
// goes round for ever, growing a prefix per lap.
// Prefix flows with different separators cannot read each other's names.
func (c *checker) cycles(t *Topology, flows []FlowSpec) {
	for _, cyc := range simpleCycles(flows) {
		kinds := map[string]bool{}
		seps := map[string]bool{}
		last := cyc[0]
		for _, f := range cyc {
			kinds[f.Flow.Naming] = true
			if f.Flow.Naming == mirror.NamingPrefix {
				seps[cmp.Or(f.Flow.Separator, ".")] = true
			}
			if f.Pattern > last.Pattern {
				last = f
			}
		}
		field := yamlschema.IndexPath("replication", last.Pattern)
		if c.idx.Has(field + ".mirror.naming") {
			field += ".mirror.naming"
		}
		switch {
		case kinds[mirror.NamingPrefix] && kinds[mirror.NamingIdentity]:
			c.add(field, fmt.Sprintf("the cycle %s mixes prefix and identity naming, so nothing stops records looping around it", describeCycle(cyc)),
				"prefix flows do not add kdr's kdr-origin header, which is how identity flows see a loop, and identity flows copy "+
					"names unchanged, so a prefixed name does not show the loop either (orders comes back as east.orders, then east.east.orders, ...): "+
					"give every flow of the cycle the same naming, identity or prefix")
		case len(kinds) == 1 && kinds[mirror.NamingPrefix] && len(seps) > 1:
			c.add(field, fmt.Sprintf("the cycle %s uses prefix naming with different separators, so no flow can read where a topic has been", describeCycle(cyc)),
				"give every flow of the cycle the same separator")
		}
	}
}

// describeCycle renders a cycle for messages: "east -> west (identity,
// replication[0]) -> east (prefix "_", replication[1])".
func describeCycle(cyc []FlowSpec) string {
	var b strings.Builder
	b.WriteString(cyc[0].Flow.SourceAlias)
	for _, f := range cyc {
		how := f.Flow.Naming
		if f.Flow.Naming == mirror.NamingPrefix && f.Flow.Separator != "" {
			how += fmt.Sprintf(" %q", f.Flow.Separator)
		}
		fmt.Fprintf(&b, " -> %s (%s, replication[%d])", f.Flow.TargetAlias, how, f.Pattern)
	}
	return b.String()
}

// maxPathSteps bounds the walk identityPaths makes per origin.
const maxPathSteps = 4096

// identityPaths rejects identity-named flows by which a record reaches a
// cluster twice. The kdr-origin header stops a record going round a cycle
// back to a cluster it has been on, not one arriving by two paths: in a mesh
// of east, west and central, a record written on east reaches west straight
// and through central. Paths are walked per origin over identity flows: the
// first hop is any flow from the origin, later hops only flows that forward
// mirrored records (not LocalRecordsOnly), never to a cluster the record has
// been on. Topic patterns are not compared, as for cycles.
func (c *checker) identityPaths(flows []FlowSpec) {
	adj := map[string][]FlowSpec{}
	var origins []string
	for _, f := range flows {
		if f.Flow.Naming != mirror.NamingIdentity {
			continue
		}
		if _, ok := adj[f.Flow.SourceAlias]; !ok {
			origins = append(origins, f.Flow.SourceAlias)
		}
		adj[f.Flow.SourceAlias] = append(adj[f.Flow.SourceAlias], f)
	}
	for _, origin := range origins {
		paths := map[string][][]FlowSpec{} // destination → its first two paths
		var dests []string
		var path []FlowSpec
		been := map[string]bool{origin: true}
		steps := 0
		var walk func(at string)
		walk = func(at string) {
			for _, f := range adj[at] {
				if steps++; steps > maxPathSteps {
					return
				}
				to := f.Flow.TargetAlias
				if been[to] || at != origin && f.Flow.LocalRecordsOnly {
					continue
				}
				path = append(path, f)
				if len(paths[to]) == 0 {
					dests = append(dests, to)
				}
				if len(paths[to]) < 2 {
					paths[to] = append(paths[to], slices.Clone(path))
				}
				been[to] = true
				walk(to)
				been[to] = false
				path = path[:len(path)-1]
			}
		}
		walk(origin)
		for _, to := range dests {
			ps := paths[to]
			if len(ps) < 2 {
				continue
			}
			// The longer path's last flow forwards mirrored records.
			last := ps[1][len(ps[1])-1]
			if len(ps[0]) > len(ps[1]) {
				last = ps[0][len(ps[0])-1]
			}
			field := yamlschema.IndexPath("replication", last.Pattern)
			if c.idx.Has(field + ".mirror.naming") {
				field += ".mirror.naming"
			}
			c.add(field, fmt.Sprintf("records written on %s reach %s by two paths under identity naming, %s and %s, so each arrives there twice: the kdr-origin header stops loops, not a second path",
				origin, to, describePath(ps[0]), describePath(ps[1])),
				fmt.Sprintf("set mirror.localRecordsOnly: true on the flow %s -> %s (it then copies only records written on %s), or use prefix naming (each path then has its own topic names)",
					last.Flow.SourceAlias, to, last.Flow.SourceAlias))
		}
	}
}

// describePath renders a path of flows: "east -> central -> west".
func describePath(p []FlowSpec) string {
	var b strings.Builder
	b.WriteString(p[0].Flow.SourceAlias)
	for _, f := range p {
		b.WriteString(" -> " + f.Flow.TargetAlias)
	}
	return b.String()
}

package topology

import (
	"bufio"
	"fmt"
	"io"
	"strings"

	"github.com/kdr-io/kdr/mirror/naming"
)

// Formats of WriteGraph.
const (
	GraphText    = "text"    // one line per flow
	GraphDOT     = "dot"     // Graphviz: dot -Tsvg
	GraphMermaid = "mermaid" // a Mermaid flowchart, for Markdown
)

// GraphFormats lists WriteGraph's formats.
var GraphFormats = []string{GraphText, GraphDOT, GraphMermaid}

// WriteGraph draws t's clusters and flows in format: text (one line per
// flow: "east -> west  (active-passive, identity naming, topics .*)"), dot
// (a digraph: clusters labelled with their region, flows with their
// pattern) or mermaid (the same as a "flowchart LR"). t should be valid.
func WriteGraph(w io.Writer, t *Topology, format string) error {
	bw := bufio.NewWriter(w)
	switch format {
	case GraphText:
		graphText(bw, t)
	case GraphDOT:
		graphDOT(bw, t)
	case GraphMermaid:
		graphMermaid(bw, t)
	default:
		return fmt.Errorf("topology: unknown graph format %q: want one of %s", format, strings.Join(GraphFormats, ", "))
	}
	return bw.Flush()
}

// patternType is the type of the pattern flow f comes from.
func (t *Topology) patternType(f FlowSpec) string {
	if f.Pattern >= 0 && f.Pattern < len(t.Replication) {
		return t.Replication[f.Pattern].Type
	}
	return ""
}

func graphText(w io.Writer, t *Topology) {
	flows := t.Flows()
	if len(flows) == 0 {
		names := make([]string, len(t.Clusters))
		for i, c := range t.Clusters {
			names[i] = c.Name
		}
		fmt.Fprintf(w, "no replication flows; clusters: %s\n", strings.Join(names, ", "))
		return
	}
	width := 0
	for _, f := range flows {
		width = max(width, len(f.Flow.SourceAlias)+len(" -> ")+len(f.Flow.TargetAlias))
	}
	for _, f := range flows {
		arrow := f.Flow.SourceAlias + " -> " + f.Flow.TargetAlias
		details := []string{t.patternType(f), f.Flow.Naming + " naming", "topics " + f.Flow.Topics}
		if f.Flow.TopicsExclude != naming.DefaultTopicsExclude {
			details = append(details, "excluding "+f.Flow.TopicsExclude)
		}
		if f.Workers > 1 {
			details = append(details, fmt.Sprintf("%d workers", f.Workers))
		}
		fmt.Fprintf(w, "%-*s  (%s)\n", width, arrow, strings.Join(details, ", "))
	}
}

// dotQuote quotes s as a DOT string.
func dotQuote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// clusterLabel is a cluster's name, then its region if it has one, joined
// by newline (DOT's "\n", Mermaid's "<br/>").
func clusterLabel(c Cluster, esc func(string) string, newline string) string {
	label := esc(c.Name)
	if c.Region != "" {
		label += newline + esc(c.Region)
	}
	return label
}

func graphDOT(w io.Writer, t *Topology) {
	fmt.Fprintf(w, "digraph %s {\n", dotQuote(t.Metadata.Name))
	fmt.Fprintln(w, "  rankdir=LR;")
	fmt.Fprintln(w, "  node [shape=box];")
	esc := func(s string) string { q := dotQuote(s); return q[1 : len(q)-1] }
	for _, c := range t.Clusters {
		fmt.Fprintf(w, "  %s [label=\"%s\"];\n", dotQuote(c.Name), clusterLabel(c, esc, `\n`))
	}
	for _, f := range t.Flows() {
		fmt.Fprintf(w, "  %s -> %s [label=%s];\n", dotQuote(f.Flow.SourceAlias), dotQuote(f.Flow.TargetAlias), dotQuote(t.patternType(f)))
	}
	fmt.Fprintln(w, "}")
}

func graphMermaid(w io.Writer, t *Topology) {
	fmt.Fprintln(w, "flowchart LR")
	// Node ids are c0, c1, ...: cluster names may hold '-' and '.', which
	// Mermaid would read as arrows or styles.
	ids := map[string]string{}
	esc := strings.NewReplacer(`"`, "#quot;", "<", "#lt;", ">", "#gt;").Replace
	for i, c := range t.Clusters {
		ids[c.Name] = fmt.Sprintf("c%d", i)
		fmt.Fprintf(w, "  %s[\"%s\"]\n", ids[c.Name], clusterLabel(c, esc, "<br/>"))
	}
	for _, f := range t.Flows() {
		fmt.Fprintf(w, "  %s -->|%s| %s\n", ids[f.Flow.SourceAlias], esc(t.patternType(f)), ids[f.Flow.TargetAlias])
	}
}

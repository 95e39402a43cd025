package cli

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kdr-io/kdr/topology"
)

// NewCmdTopology is the `kdr topology` group: validate, plan, apply, graph.
func NewCmdTopology(streams IO, g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "topology",
		Short: "Validate, plan, apply and draw a topology file",
		Long: `A topology file (YAML, apiVersion kdr.io/v1, kind Topology) declares the clusters of an estate, the
replication patterns joining them (active-passive, active-active, hub-and-spoke) and the failover
policy. Examples are in topology/examples.`,
		Example: `  kdr topology validate prod.yaml
  kdr topology graph prod.yaml --format dot | dot -Tsvg > prod.svg`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(NewCmdTopologyValidate(streams, nil), NewCmdTopologyGraph(streams, nil))
	cmd.AddCommand(newCmdTopologyPlan(streams, g), newCmdTopologyApply(streams, g))
	return cmd
}

// invalidTopologyError lists every problem of a topology file, one a line.
type invalidTopologyError struct {
	file string
	err  error // as topology.Load returns it
}

func (e invalidTopologyError) Error() string {
	problems := topology.Problems(e.err)
	lines := make([]string, len(problems))
	for i, p := range problems {
		lines[i] = p.Error()
	}
	return fmt.Sprintf("%s is not a valid topology (%s):\n%s", e.file, countNoun(len(problems), "problem"), strings.Join(lines, "\n"))
}

func (e invalidTopologyError) Unwrap() error { return e.err }

func countNoun(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// loadTopology loads and validates the topology file; "-" reads it from
// in. An invalid file gives an error listing every problem (errors.As
// finds the *topology.Error).
func loadTopology(file string, in io.Reader) (*topology.Topology, error) {
	var t *topology.Topology
	var err error
	if file == "-" {
		if in == nil {
			return nil, usageError{errors.New("no standard input to read the topology from")}
		}
		data, rerr := io.ReadAll(in)
		if rerr != nil {
			return nil, fmt.Errorf("reading the topology from standard input: %w", rerr)
		}
		file = "<stdin>"
		t, err = topology.Parse(data, file)
	} else {
		t, err = topology.Load(file)
	}
	if errors.Is(err, topology.ErrInvalid) {
		return nil, invalidTopologyError{file: file, err: err}
	}
	return t, err
}

// TopologyValidateOptions are the parsed options of `kdr topology validate`.
type TopologyValidateOptions struct {
	IO   IO
	File string
}

// NewCmdTopologyValidate builds `kdr topology validate FILE`. runF replaces
// the run step in tests.
func NewCmdTopologyValidate(streams IO, runF func(*TopologyValidateOptions) error) *cobra.Command {
	opts := &TopologyValidateOptions{IO: streams}
	return &cobra.Command{
		Use:   "validate FILE",
		Short: "Check a topology file and report every problem with its line",
		Long: `Read a topology file, apply defaults and check it: the schema (unknown keys, types), cluster
names and ports, the replication patterns, the mirror settings of every flow they expand into, and
cycles whose loops no flow could stop. Every problem is printed as FILE:LINE:COL: FIELD: PROBLEM
(fix: HINT). Exit status 0 if valid, 1 if not, 2 on wrong usage. FILE "-" reads standard input.`,
		Example: `  kdr topology validate topology/examples/active-passive.yaml
  kdr topology validate - < prod.yaml`,
		Args: exactArgs(1, "one topology file"),
		RunE: func(_ *cobra.Command, args []string) error {
			opts.File = args[0]
			if runF != nil {
				return runF(opts)
			}
			return runTopologyValidate(opts)
		},
	}
}

func runTopologyValidate(opts *TopologyValidateOptions) error {
	t, err := loadTopology(opts.File, opts.IO.In)
	if err != nil {
		return err
	}
	name := opts.File
	if name == "-" {
		name = "<stdin>"
	}
	_, err = fmt.Fprintf(opts.IO.Out, "%s: valid: %s, %s\n", name, countNoun(len(t.Clusters), "cluster"), countNoun(len(t.Flows()), "flow"))
	return err
}

// TopologyGraphOptions are the parsed options of `kdr topology graph`.
type TopologyGraphOptions struct {
	IO     IO
	File   string
	Format string
}

// NewCmdTopologyGraph builds `kdr topology graph FILE`. runF replaces the
// run step in tests.
func NewCmdTopologyGraph(streams IO, runF func(*TopologyGraphOptions) error) *cobra.Command {
	opts := &TopologyGraphOptions{IO: streams}
	cmd := &cobra.Command{
		Use:   "graph FILE",
		Short: "Draw a topology's clusters and mirror flows (text, Graphviz DOT or Mermaid)",
		Long: `Draw the clusters of a valid topology file and the mirror flows its patterns expand into.
text prints one line per flow with its pattern, naming and topics; dot prints a Graphviz digraph
(clusters labelled with their region, flows with their pattern); mermaid prints a flowchart for
Markdown. FILE "-" reads standard input.`,
		Example: `  kdr topology graph topology/examples/hub-and-spoke.yaml
  kdr topology graph prod.yaml --format dot | dot -Tsvg > prod.svg
  kdr topology graph prod.yaml --format mermaid >> README.md`,
		Args: exactArgs(1, "one topology file"),
		RunE: func(_ *cobra.Command, args []string) error {
			opts.File = args[0]
			opts.Format = strings.ToLower(strings.TrimSpace(opts.Format))
			if !slices.Contains(topology.GraphFormats, opts.Format) {
				return usageError{fmt.Errorf("--format %q: want %s", opts.Format, strings.Join(topology.GraphFormats, ", "))}
			}
			if runF != nil {
				return runF(opts)
			}
			t, err := loadTopology(opts.File, opts.IO.In)
			if err != nil {
				return err
			}
			return topology.WriteGraph(opts.IO.Out, t, opts.Format)
		},
	}
	cmd.Flags().StringVar(&opts.Format, "format", topology.GraphText, "output format: "+strings.Join(topology.GraphFormats, ", "))
	return cmd
}

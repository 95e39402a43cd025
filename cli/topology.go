package cli

import "github.com/spf13/cobra"

// NewCmdTopology is the `kdr topology` group: validate, plan, apply, graph.
func NewCmdTopology(streams IO, g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{Use: "topology", Short: "Validate, plan, apply and draw a topology file"}
	cmd.AddCommand(newCmdTopologyPlan(streams, g), newCmdTopologyApply(streams, g))
	return cmd
}

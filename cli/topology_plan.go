package cli

import "github.com/spf13/cobra"

func newCmdTopologyPlan(streams IO, g *globalOptions) *cobra.Command {
	return &cobra.Command{Use: "plan FILE", Short: "Show what apply would create or change"}
}

func newCmdTopologyApply(streams IO, g *globalOptions) *cobra.Command {
	return &cobra.Command{Use: "apply FILE", Short: "Create and update remote topics as the topology says"}
}

package cli

import "github.com/spf13/cobra"

// NewCmdStatus is `kdr status [FILE]`.
func NewCmdStatus(streams IO, g *globalOptions) *cobra.Command {
	return &cobra.Command{Use: "status [FILE]", Short: "Show clusters, brokers and flows of a topology"}
}

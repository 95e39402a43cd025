package cli

import "github.com/spf13/cobra"

// NewCmdUp is `kdr up [FILE]`.
func NewCmdUp(streams IO, g *globalOptions) *cobra.Command {
	return &cobra.Command{Use: "up [FILE]", Short: "Run a topology's local clusters and mirror flows"}
}

// Command consul is the real HashiCorp Consul agent (v1.20.2, pinned in
// go.mod), built from the Go module proxy for kdr's tests: Consul has no
// Debian package and its own module cannot be `go install`ed because of its
// replace directives. scripts/consul.sh builds and caches it; tests find it
// through KDR_CONSUL_BIN (see internal/consultest).
package main

import (
	"fmt"
	"io"
	"log"
	"os"
	"sort"

	"github.com/hashicorp/consul/command"
	consulcli "github.com/hashicorp/consul/command/cli"
	mcli "github.com/mitchellh/cli"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

// run dispatches args to Consul's registered subcommands ("agent", "kv",
// "members", ...) and returns the exit code.
func run(args []string) int {
	// Libraries that log through the standard logger would otherwise write
	// around the agent's own structured log.
	log.SetOutput(io.Discard)

	ui := &consulcli.BasicUI{BasicUi: mcli.BasicUi{Writer: os.Stdout, ErrorWriter: os.Stderr}}
	commands := command.RegisteredCommands(ui)
	names := make([]string, 0, len(commands))
	for name := range commands {
		names = append(names, name)
	}
	sort.Strings(names)

	c := &mcli.CLI{
		Name:        "consul",
		Args:        args,
		Commands:    commands,
		HelpFunc:    mcli.FilteredHelpFunc(names, mcli.BasicHelpFunc("consul")),
		HelpWriter:  os.Stdout,
		ErrorWriter: os.Stderr,
	}
	code, err := c.Run()
	if err != nil {
		fmt.Fprintf(os.Stderr, "consul: %v\n", err)
		return 1
	}
	return code
}

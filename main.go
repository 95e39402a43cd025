// Command kdr is the Kafka multi-cluster replication and disaster-recovery
// suite: brokers, mirrors, failover and drills in one binary.
package main

import (
	"os"

	"github.com/kdr-io/kdr/cli"
)

func main() {
	os.Exit(cli.Execute(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// Command kfakeserver runs franz-go's kfake as a standalone single-broker
// Kafka cluster, so that benchmarks can measure it as a separate process, the
// same way they measure kdr.
//
// It prints one line, "listening on 127.0.0.1:PORT", on stdout once the
// listener is bound, then serves until SIGTERM or SIGINT.
//
//	go build -o /tmp/kfakeserver ./bench/kfakeserver
//	/tmp/kfakeserver --port 0
//
// By default kfake keeps the log in memory; --data-dir makes it persist to a
// directory instead (written through the page cache, without fsync).
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/twmb/franz-go/pkg/kfake"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	fs := flag.NewFlagSet("kfakeserver", flag.ContinueOnError)
	port := fs.Int("port", 0, "TCP port on 127.0.0.1 to listen on (0 picks a free port)")
	dataDir := fs.String("data-dir", "", "persist the log under this directory (default: in memory)")
	if err := fs.Parse(args); err != nil {
		return 2
	}

	opts := []kfake.Opt{kfake.NumBrokers(1), kfake.Ports(*port)}
	if *dataDir != "" {
		opts = append(opts, kfake.DataDir(*dataDir))
	}
	// Register for signals before announcing the address, so a parent that
	// sends SIGTERM right after reading the line is not racing us.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)

	c, err := kfake.NewCluster(opts...)
	if err != nil {
		fmt.Fprintf(os.Stderr, "kfakeserver: %v\n", err)
		return 1
	}
	defer c.Close()

	addrs := c.ListenAddrs()
	if len(addrs) != 1 {
		fmt.Fprintf(os.Stderr, "kfakeserver: want 1 listen address, got %v\n", addrs)
		return 1
	}
	fmt.Printf("listening on %s\n", addrs[0])

	<-sigs
	return 0
}

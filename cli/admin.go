package cli

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kdr-io/kdr/clientsec"
)

// addAdminCommands adds the client-side commands: topic, group, produce and
// consume. They use only the Kafka protocol (through kadm and kgo), so they
// work against any Kafka cluster, not only kdr.
func addAdminCommands(root *cobra.Command, streams IO, g *globalOptions) {
	root.AddCommand(
		NewCmdTopic(streams, g),
		NewCmdGroup(streams, g),
		NewCmdProduce(streams, g, nil),
		NewCmdConsume(streams, g, nil),
	)
}

// Defaults of the connection flags.
const (
	defaultBrokers = "127.0.0.1:9092"
	defaultTimeout = 30 * time.Second
)

// ConnOptions are the connection settings every client command shares:
// --brokers, --output and --timeout, or KDR_BROKERS, KDR_OUTPUT and
// KDR_TIMEOUT.
type ConnOptions struct {
	// Brokers are the seed brokers, host:port.
	Brokers []string
	// Output is how results are printed.
	Output outputFormat
	// Timeout bounds each request (and, for admin commands, the whole
	// command).
	Timeout time.Duration
	// Security is TLS and SASL (--tls-*, --sasl-*).
	Security clientsec.Config

	// log receives the Kafka client's logs; nil: none.
	log kgo.Logger
}

// addConnFlags registers the connection flags on cmd as persistent flags, so
// that all its subcommands have them.
func addConnFlags(cmd *cobra.Command) {
	pf := cmd.PersistentFlags()
	pf.String("brokers", defaultBrokers, "comma-separated seed brokers, host:port (env KDR_BROKERS)")
	pf.String("output", string(outputText), "output format: text or json (env KDR_OUTPUT)")
	pf.Duration("timeout", defaultTimeout, "request timeout (env KDR_TIMEOUT)")
	addSecurityFlags(pf, "", "the cluster")
}

// resolveConn reads the connection settings of cmd from its flags and the
// KDR_* environment, flags first.
func resolveConn(cmd *cobra.Command, streams IO, g *globalOptions) (ConnOptions, error) {
	v, err := newViper(cmd, "")
	if err != nil {
		return ConnOptions{}, err
	}
	var c ConnOptions
	raw := v.GetString("brokers")
	if c.Brokers, err = splitBrokers(raw); err != nil {
		return ConnOptions{}, err
	}
	if c.Output, err = parseOutput(v.GetString("output")); err != nil {
		return ConnOptions{}, err
	}
	c.Timeout = v.GetDuration("timeout")
	if c.Timeout <= 0 {
		return ConnOptions{}, usageError{fmt.Errorf("--timeout must be positive, got %q", v.GetString("timeout"))}
	}
	c.Security = readSecurity(v, cmd.Flags(), "")
	if err := securityProblems(c.Security, ""); err != nil {
		return ConnOptions{}, usageError{err}
	}
	if c.log, err = newKgoLogger(streams, g); err != nil {
		return ConnOptions{}, err
	}
	return c, nil
}

// splitBrokers parses a comma-separated list of host:port addresses.
func splitBrokers(raw string) ([]string, error) {
	var out []string
	for _, b := range strings.Split(raw, ",") {
		b = strings.TrimSpace(b)
		if b == "" {
			continue
		}
		if !strings.Contains(b, ":") {
			return nil, usageError{fmt.Errorf("--brokers: %q is not host:port (for example 127.0.0.1:9092)", b)}
		}
		out = append(out, b)
	}
	if len(out) == 0 {
		return nil, usageError{fmt.Errorf("--brokers is empty; give at least one host:port, or set KDR_BROKERS")}
	}
	return out, nil
}

// parseKeyValue splits a key=value argument of flag. The value may be empty
// and may contain '='; the key may not be empty.
func parseKeyValue(flag, arg string) (key, value string, err error) {
	k, v, ok := strings.Cut(arg, "=")
	if !ok || strings.TrimSpace(k) == "" {
		return "", "", usageError{fmt.Errorf("invalid --%s %q: want key=value", flag, arg)}
	}
	return k, v, nil
}

// parseKeyValues parses repeated key=value arguments of flag, keeping their
// order. Unless repeats is set, a key given twice is an error.
func parseKeyValues(flag string, args []string, repeats bool) ([]keyValue, error) {
	seen := make(map[string]bool, len(args))
	out := make([]keyValue, 0, len(args))
	for _, a := range args {
		k, v, err := parseKeyValue(flag, a)
		if err != nil {
			return nil, err
		}
		if seen[k] && !repeats {
			return nil, usageError{fmt.Errorf("--%s %q given twice", flag, k)}
		}
		seen[k] = true
		out = append(out, keyValue{Key: k, Value: v})
	}
	return out, nil
}

// keyValue is one parsed key=value argument.
type keyValue struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// exactArgs requires n positional arguments, described by what.
func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usageError{fmt.Errorf("%s takes %s, got %d argument(s); see --help", cmd.CommandPath(), what, len(args))}
		}
		return nil
	}
}

// minArgs requires at least n positional arguments, described by what.
func minArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < n {
			return usageError{fmt.Errorf("%s takes %s, got %d argument(s); see --help", cmd.CommandPath(), what, len(args))}
		}
		return nil
	}
}

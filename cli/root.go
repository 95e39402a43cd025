package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"

	"github.com/kdr-io/kdr/internal/obs"
)

// Exit codes.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

// IO is the streams a command reads and writes.
type IO struct {
	In       io.Reader
	Out, Err io.Writer
}

// usageError marks errors caused by how the command was called.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// Execute runs kdr with args and returns the process exit code.
func Execute(args []string, in io.Reader, out, errOut io.Writer) int {
	ctx, stop := stopOnSignal()
	defer stop()
	root := NewCmdRoot(IO{In: in, Out: out, Err: errOut})
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	// A command that ends with an exit code of its own (plan
	// --detailed-exitcode) has already said what it had to.
	var ec interface{ ExitCode() int }
	if errors.As(err, &ec) {
		return ec.ExitCode()
	}
	fmt.Fprintln(errOut, "Error:", err)
	var ue usageError
	// cobra's own errors for a bad command line are plain errors.
	msg := err.Error()
	if errors.As(err, &ue) || strings.HasPrefix(msg, "unknown command") || strings.HasPrefix(msg, "unknown flag") || strings.HasPrefix(msg, "required flag(s)") {
		return exitUsage
	}
	return exitError
}

// stopOnSignal returns a context that ends on the first SIGINT or SIGTERM.
// Stopping cleanly can take seconds (kdr up waits for its mirror workers'
// last commits and its brokers' controlled shutdowns), so SIGINT gets its
// default action back before the context ends: a second Ctrl-C ends kdr at
// once, as operators expect. What was acknowledged is on disk either way,
// and copies not committed are copied again. A second SIGTERM is ignored:
// supervisors that signal a whole process group and then each process (a
// drill stopping kdr up, systemd's control-group kill) send two, and they
// must not cut a clean stop short.
func stopOnSignal() (context.Context, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case <-sigs:
			signal.Reset(syscall.SIGINT)
			cancel()
		case <-done:
		}
	}()
	return ctx, func() {
		close(done)
		signal.Stop(sigs)
		cancel()
	}
}

// globalOptions are the flags every command has.
type globalOptions struct {
	LogLevel  string
	LogFormat string
}

// NewCmdRoot builds the command tree.
func NewCmdRoot(streams IO) *cobra.Command {
	g := &globalOptions{}
	root := &cobra.Command{
		Use:           "kdr",
		Short:         "Kafka multi-cluster replication and disaster recovery",
		Long:          "kdr runs Kafka-compatible broker clusters, mirrors topics between clusters, and rehearses and\nperforms failover, from one binary.",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(streams.In)
	root.SetOut(streams.Out)
	root.SetErr(streams.Err)
	pf := root.PersistentFlags()
	pf.StringVar(&g.LogLevel, "log-level", "info", "log level: debug, info, warn or error")
	pf.StringVar(&g.LogFormat, "log-format", "text", "log format: text or json")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })

	root.AddCommand(NewCmdBroker(streams, g, nil))
	root.AddCommand(NewCmdMirror(streams, g))
	root.AddCommand(NewCmdTopology(streams, g), NewCmdUp(streams, g), NewCmdStatus(streams, g))
	addAdminCommands(root, streams, g)
	root.AddCommand(NewCmdCluster(streams, g))
	root.AddCommand(NewCmdFailover(streams, g), NewCmdDiscover(streams, g))
	root.AddCommand(NewCmdDrill(streams, g))
	root.AddCommand(NewCmdDashboards(streams, g))
	return root
}

// logger builds the process logger from the global flags; logs go to stderr
// so that command output on stdout stays machine-readable.
func (g *globalOptions) logger(w io.Writer) (*slog.Logger, error) {
	l, err := obs.NewLogger(w, g.LogLevel, g.LogFormat)
	if err != nil {
		return nil, usageError{err}
	}
	return l, nil
}

// newViper returns a viper instance bound to cmd's flags, the KDR_*
// environment (flag name upper-cased, '-' and '.' as '_'), and, when
// configFile is set, that YAML file (keys are flag names). Precedence:
// flag, environment, file, default.
func newViper(cmd *cobra.Command, configFile string) (*viper.Viper, error) {
	v := viper.New()
	v.SetEnvPrefix("KDR")
	v.SetEnvKeyReplacer(strings.NewReplacer("-", "_", ".", "_"))
	v.AutomaticEnv()
	var bindErr error
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if err := v.BindPFlag(f.Name, f); err != nil && bindErr == nil {
			bindErr = err
		}
	})
	if bindErr != nil {
		return nil, bindErr
	}
	if configFile != "" {
		v.SetConfigFile(configFile)
		v.SetConfigType("yaml")
		if err := v.ReadInConfig(); err != nil {
			return nil, usageError{fmt.Errorf("reading config file %s: %w", configFile, err)}
		}
		known := map[string]bool{}
		cmd.Flags().VisitAll(func(f *pflag.Flag) { known[f.Name] = true })
		for _, k := range v.AllKeys() {
			if !known[k] {
				return nil, usageError{fmt.Errorf("config file %s: unknown key %q (keys are the command's flag names; see --help)", configFile, k)}
			}
		}
	}
	return v, nil
}

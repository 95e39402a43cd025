package cli

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
)

// TopicAlterConfigOptions are the parsed options of `kdr topic alter-config`.
type TopicAlterConfigOptions struct {
	IO   IO
	Conn ConnOptions

	Topic string
	// Set are the configs to set; Delete those to remove from the topic
	// (so that the broker default applies again).
	Set    []keyValue
	Delete []string
	// DryRun asks the broker to validate the change without applying it.
	DryRun bool
}

// NewCmdTopicAlterConfig builds `kdr topic alter-config`. runF replaces the
// run step in tests.
func NewCmdTopicAlterConfig(streams IO, g *globalOptions, runF func(*TopicAlterConfigOptions) error) *cobra.Command {
	opts := &TopicAlterConfigOptions{IO: streams}
	var set []string
	cmd := &cobra.Command{
		Use:   "alter-config NAME (--set KEY=VALUE | --delete KEY)...",
		Short: "Change a topic's configs",
		Long: `Set or remove configs of a topic with IncrementalAlterConfigs; configs not named are left as they
are. A removed config falls back to the broker's default.`,
		Example: `  kdr topic alter-config orders --set retention.ms=3600000 --delete cleanup.policy
  kdr topic alter-config orders --set max.message.bytes=2097152 --dry-run`,
		Args: exactArgs(1, "one topic name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var err error
			if opts.Conn, err = resolveConn(cmd, streams, g); err != nil {
				return err
			}
			opts.Topic = args[0]
			if opts.Set, err = parseKeyValues("set", set, false); err != nil {
				return err
			}
			if err := validateAlterConfig(opts); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return runTopicAlterConfig(cmd.Context(), opts)
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&set, "set", nil, "config to set, key=value (repeatable)")
	f.StringArrayVar(&opts.Delete, "delete", nil, "config to remove from the topic (repeatable)")
	f.BoolVar(&opts.DryRun, "dry-run", false, "have the broker validate the change without applying it")
	return cmd
}

func validateAlterConfig(opts *TopicAlterConfigOptions) error {
	if len(opts.Set) == 0 && len(opts.Delete) == 0 {
		return usageError{fmt.Errorf("nothing to change: give --set key=value or --delete key")}
	}
	set := make(map[string]bool, len(opts.Set))
	for _, kv := range opts.Set {
		set[kv.Key] = true
	}
	for _, k := range opts.Delete {
		if strings.TrimSpace(k) == "" || strings.Contains(k, "=") {
			return usageError{fmt.Errorf("invalid --delete %q: want a config name such as retention.ms", k)}
		}
		if set[k] {
			return usageError{fmt.Errorf("config %q is both set and deleted; give one of --set or --delete for it", k)}
		}
	}
	return nil
}

// topicConfigAltered is the result of `kdr topic alter-config`.
type topicConfigAltered struct {
	Topic   string     `json:"topic"`
	DryRun  bool       `json:"dry_run"`
	Set     []keyValue `json:"set"`
	Deleted []string   `json:"deleted"`
}

func runTopicAlterConfig(ctx context.Context, opts *TopicAlterConfigOptions) error {
	ctx, cancel := opts.Conn.withTimeout(ctx)
	defer cancel()
	adm, err := opts.Conn.newAdmin()
	if err != nil {
		return err
	}
	defer adm.Close()
	res, err := alterTopicConfig(ctx, adm, opts)
	if err != nil {
		return err
	}
	return printResult(opts.IO.Out, opts.Conn.Output, res, printTopicConfigAltered)
}

func alterTopicConfig(ctx context.Context, adm *kadm.Client, opts *TopicAlterConfigOptions) (topicConfigAltered, error) {
	what := fmt.Sprintf("altering configs of topic %q", opts.Topic)
	if opts.DryRun {
		what = fmt.Sprintf("validating config change of topic %q", opts.Topic)
	}
	alter := make([]kadm.AlterConfig, 0, len(opts.Set)+len(opts.Delete))
	for _, kv := range opts.Set {
		alter = append(alter, kadm.AlterConfig{Op: kadm.SetConfig, Name: kv.Key, Value: kadm.StringPtr(kv.Value)})
	}
	for _, k := range opts.Delete {
		alter = append(alter, kadm.AlterConfig{Op: kadm.DeleteConfig, Name: k})
	}
	do := adm.AlterTopicConfigs
	if opts.DryRun {
		do = adm.ValidateAlterTopicConfigs
	}
	resps, err := do(ctx, alter, opts.Topic)
	if err != nil {
		return topicConfigAltered{}, opts.Conn.requestErr(what, err)
	}
	r, err := resps.On(opts.Topic, nil)
	if err != nil {
		return topicConfigAltered{}, fmt.Errorf("%s: the broker's answer does not mention the topic", what)
	}
	if r.Err != nil {
		return topicConfigAltered{}, fmt.Errorf("%s: %w", what, kafkaErr(r.Err, r.ErrMessage))
	}
	return topicConfigAltered{
		Topic:   opts.Topic,
		DryRun:  opts.DryRun,
		Set:     append([]keyValue{}, opts.Set...),
		Deleted: append([]string{}, opts.Delete...),
	}, nil
}

func printTopicConfigAltered(w io.Writer, r topicConfigAltered) error {
	var changes []string
	for _, kv := range r.Set {
		changes = append(changes, "set "+kv.Key+"="+kv.Value)
	}
	for _, k := range r.Deleted {
		changes = append(changes, "deleted "+k)
	}
	if r.DryRun {
		_, err := fmt.Fprintf(w, "Dry run: the broker accepts these changes to topic %s: %s (nothing was changed)\n", r.Topic, strings.Join(changes, ", "))
		return err
	}
	_, err := fmt.Fprintf(w, "Altered configs of topic %s: %s\n", r.Topic, strings.Join(changes, ", "))
	return err
}

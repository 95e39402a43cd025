package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kdr-io/kdr/mirror"
)

// ProduceOptions are the parsed options of `kdr produce`.
type ProduceOptions struct {
	IO   IO
	Conn ConnOptions

	Topic string
	// Key, when set, is the key of every record.
	Key *string
	// KeySeparator, when set, splits each line into key and value at its
	// first occurrence.
	KeySeparator string
	// Partition is the partition to write to; -1: the key's hash, or
	// spread for records without keys.
	Partition int32
	// Acks is "all", "1" or "0".
	Acks string
	// Compression is none, gzip, snappy, lz4 or zstd.
	Compression string
	Headers     []keyValue
}

// NewCmdProduce builds `kdr produce`. runF replaces the run step in tests.
func NewCmdProduce(streams IO, g *globalOptions, runF func(*ProduceOptions) error) *cobra.Command {
	opts := &ProduceOptions{IO: streams}
	var (
		key     string
		headers []string
	)
	cmd := &cobra.Command{
		Use:   "produce TOPIC",
		Short: "Write records read from stdin, one per line",
		Long: `Write one record per line of standard input to TOPIC. With --key-separator each line is split into
key and value at the first separator. A summary (records per partition and their last offsets) is
printed to stderr at the end; records that fail are reported one by one and make the exit code
non-zero.`,
		Example: `  printf 'a\nb\n' | kdr produce orders
  printf 'k1:v1\nk2:v2\n' | kdr produce orders --key-separator : --acks all --compression zstd`,
		Args: exactArgs(1, "one topic name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var err error
			if opts.Conn, err = resolveConn(cmd, streams, g); err != nil {
				return err
			}
			opts.Topic = args[0]
			if cmd.Flags().Changed("key") {
				opts.Key = &key
			}
			if opts.Headers, err = parseKeyValues("header", headers, true); err != nil {
				return err
			}
			if err := validateProduce(opts); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return runProduce(cmd.Context(), opts)
		},
	}
	addConnFlags(cmd)
	f := cmd.Flags()
	f.StringVar(&key, "key", "", "key of every record")
	f.StringVar(&opts.KeySeparator, "key-separator", "", "split each line into key and value at the first SEP")
	f.Int32Var(&opts.Partition, "partition", -1, "partition to write to (-1: by key hash)")
	f.StringVar(&opts.Acks, "acks", "all", "acknowledgements to wait for: all, 1 or 0")
	f.StringVar(&opts.Compression, "compression", "none", "batch compression: none, gzip, snappy, lz4 or zstd")
	f.StringArrayVar(&headers, "header", nil, "record header key=value (repeatable)")
	return cmd
}

func validateProduce(opts *ProduceOptions) error {
	if opts.Key != nil && opts.KeySeparator != "" {
		return usageError{fmt.Errorf("--key and --key-separator cannot be combined: --key gives every record the same key, --key-separator reads it from each line")}
	}
	if opts.Partition < -1 {
		return usageError{fmt.Errorf("--partition %d: want a partition number, or -1", opts.Partition)}
	}
	if _, err := produceAcks(opts.Acks); err != nil {
		return err
	}
	if _, err := compressionCodec(opts.Compression); err != nil {
		return err
	}
	return nil
}

func produceAcks(s string) (kgo.Acks, error) {
	switch s {
	case "all", "-1":
		return kgo.AllISRAcks(), nil
	case "1":
		return kgo.LeaderAck(), nil
	case "0":
		return kgo.NoAck(), nil
	}
	return kgo.Acks{}, usageError{fmt.Errorf("--acks %q: want all, 1 or 0", s)}
}

func compressionCodec(s string) (kgo.CompressionCodec, error) {
	c, err := mirror.CompressionCodec(s)
	if err != nil {
		return c, usageError{fmt.Errorf("--compression %w", err)}
	}
	return c, nil
}

// produceClientOpts are the producer settings of opts.
func produceClientOpts(opts *ProduceOptions) []kgo.Opt {
	acks, _ := produceAcks(opts.Acks)
	codec, _ := compressionCodec(opts.Compression)
	kopts := []kgo.Opt{
		kgo.DefaultProduceTopic(opts.Topic),
		kgo.RequiredAcks(acks),
		kgo.ProducerBatchCompression(codec),
		// Each record gets the request timeout to be acknowledged,
		// retries included.
		kgo.RecordDeliveryTimeout(opts.Conn.Timeout),
	}
	if opts.Acks != "all" && opts.Acks != "-1" {
		kopts = append(kopts, kgo.DisableIdempotentWrite()) // idempotence needs acks=all
	}
	if opts.Partition >= 0 {
		kopts = append(kopts, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	}
	return kopts
}

func runProduce(ctx context.Context, opts *ProduceOptions) error {
	cl, err := opts.Conn.newClient(produceClientOpts(opts)...)
	if err != nil {
		return err
	}
	defer cl.Close()
	if err := checkTopic(ctx, cl, opts.Conn, opts.Topic, opts.Partition); err != nil {
		return err
	}
	sum, err := produceLines(ctx, cl, opts)
	if perr := printResult(opts.IO.Err, opts.Conn.Output, sum, printProduceSummary); perr != nil && err == nil {
		err = perr
	}
	return err
}

// produceSummary is the result of `kdr produce`, printed to stderr.
type produceSummary struct {
	Topic string `json:"topic"`
	// Records counts acknowledged records; Failed those that were not.
	Records    int                 `json:"records"`
	Failed     int                 `json:"failed"`
	Partitions []producedPartition `json:"partitions"`
}

type producedPartition struct {
	Partition int32 `json:"partition"`
	Records   int   `json:"records"`
	// LastOffset is -1 with --acks 0, which returns no offsets.
	LastOffset int64 `json:"last_offset"`
}

// produceTally collects delivery results, which arrive concurrently.
type produceTally struct {
	mu     sync.Mutex
	errOut io.Writer
	sum    produceSummary
	parts  map[int32]*producedPartition
	// policyRefused is set when the cluster refused a record with
	// POLICY_VIOLATION, as a fenced kdr cluster does.
	policyRefused bool
}

func (t *produceTally) delivered(r *kgo.Record, noOffsets bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.sum.Records++
	p := t.parts[r.Partition]
	if p == nil {
		p = &producedPartition{Partition: r.Partition, LastOffset: -1}
		t.parts[r.Partition] = p
	}
	p.Records++
	if !noOffsets {
		p.LastOffset = max(p.LastOffset, r.Offset)
	}
}

func (t *produceTally) failed(line int, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.sum.Failed++
	t.policyRefused = t.policyRefused || errors.Is(err, kerr.PolicyViolation)
	fmt.Fprintf(t.errOut, "Error: line %d: %v\n", line, err)
}

func (t *produceTally) summary() produceSummary {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.sum
	s.Partitions = []producedPartition{}
	for _, p := range t.parts {
		s.Partitions = append(s.Partitions, *p)
	}
	sort.Slice(s.Partitions, func(i, j int) bool { return s.Partitions[i].Partition < s.Partitions[j].Partition })
	return s
}

// produceLines writes one record per line of opts.IO.In and waits for all
// of them to be acknowledged. When ctx ends (Ctrl-C), it stops reading but
// still delivers the lines already read.
func produceLines(ctx context.Context, cl *kgo.Client, opts *ProduceOptions) (produceSummary, error) {
	tally := &produceTally{errOut: opts.IO.Err, sum: produceSummary{Topic: opts.Topic}, parts: map[int32]*producedPartition{}}
	noOffsets := opts.Acks == "0"
	// Records outlive an interrupt; RecordDeliveryTimeout bounds them.
	recordCtx := context.WithoutCancel(ctx)
	lines, stop := readLines(opts.IO.In)
	defer stop()
	var readErr error
	interrupted := false
	for line := 1; ; line++ {
		var in inputLine
		var more bool
		select {
		case <-ctx.Done():
			interrupted = true
		case in, more = <-lines:
		}
		if interrupted || !more {
			break
		}
		if in.err != nil {
			readErr = fmt.Errorf("reading stdin: %w", in.err)
			break
		}
		rec, err := lineRecord(in.text, opts)
		if err != nil {
			tally.failed(line, err)
			continue
		}
		cl.Produce(recordCtx, rec, func(r *kgo.Record, err error) {
			if err != nil {
				tally.failed(line, fmt.Errorf("producing to %s: %w", opts.Topic, err))
				return
			}
			tally.delivered(r, noOffsets)
		})
	}
	flushErr := cl.Flush(recordCtx) // returns once every record has its callback
	sum := tally.summary()
	switch {
	case readErr != nil:
		return sum, readErr
	case sum.Failed > 0:
		err := fmt.Errorf("%d of %d records could not be produced to topic %q (errors above)", sum.Failed, sum.Failed+sum.Records, opts.Topic)
		if tally.policyRefused {
			err = fmt.Errorf("%w: %s", err, explainPolicyViolation(ctx, cl, opts.Conn))
		}
		return sum, err
	case flushErr != nil:
		return sum, fmt.Errorf("flushing records to topic %q: %w", opts.Topic, flushErr)
	case interrupted:
		return sum, fmt.Errorf("producing to topic %q: interrupted after %d records; the rest of stdin was not read", opts.Topic, sum.Records)
	}
	return sum, nil
}

// explainPolicyViolation says why the cluster refused records with
// POLICY_VIOLATION. A kdr cluster fenced by a failover does, and says so in
// the produce answer's error message, but franz-go (v1.22) drops that
// message and leaves only Kafka's generic text for the code ("Request
// parameters do not satisfy the configured policy"); so the fence is read
// back with the admin API, as kdr cluster status does.
func explainPolicyViolation(ctx context.Context, cl *kgo.Client, conn ConnOptions) string {
	ctx, cancel := conn.withTimeout(ctx)
	defer cancel()
	const find = "kdr failover status or kdr discover names the active cluster"
	s, err := readClusterStatus(ctx, conn.adminOf(cl), conn)
	switch {
	case err != nil: // not a kdr cluster, or it cannot tell
		return "the cluster's policy refused them (a kdr cluster does so while a failover fences it: kdr cluster status shows the fence; " + find + ")"
	case s.Fenced:
		return fmt.Sprintf("cluster fenced by failover epoch %d: %s; produce to the active cluster (%s)", s.Epoch, s.Reason, find)
	}
	return fmt.Sprintf("the cluster's policy refused them, but it is not fenced now (epoch %d): a failover may have fenced it and lifted the fence since (%s)", s.Epoch, find)
}

// lineRecord makes the record for one input line.
func lineRecord(line string, opts *ProduceOptions) (*kgo.Record, error) {
	rec := &kgo.Record{Topic: opts.Topic, Value: []byte(line)}
	switch {
	case opts.KeySeparator != "":
		k, v, ok := strings.Cut(line, opts.KeySeparator)
		if !ok {
			return nil, fmt.Errorf("no key separator %q in the line; record skipped", opts.KeySeparator)
		}
		rec.Key, rec.Value = []byte(k), []byte(v)
	case opts.Key != nil:
		rec.Key = []byte(*opts.Key)
	}
	if opts.Partition >= 0 {
		rec.Partition = opts.Partition
	}
	for _, h := range opts.Headers {
		rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: h.Key, Value: []byte(h.Value)})
	}
	return rec, nil
}

func printProduceSummary(w io.Writer, s produceSummary) error {
	fmt.Fprintf(w, "Produced %d record(s) to topic %s", s.Records, s.Topic)
	if s.Failed > 0 {
		fmt.Fprintf(w, "; %d failed", s.Failed)
	}
	fmt.Fprintln(w)
	if len(s.Partitions) == 0 {
		return nil
	}
	t := newTable(w, "PARTITION", "RECORDS", "LAST-OFFSET")
	for _, p := range s.Partitions {
		t.row(p.Partition, p.Records, offsetString(p.LastOffset))
	}
	return t.flush()
}

package cli

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// newClient builds a Kafka client for c, with extra options (producer or
// consumer settings) appended.
func (c ConnOptions) newClient(extra ...kgo.Opt) (*kgo.Client, error) {
	opts := []kgo.Opt{
		kgo.SeedBrokers(c.Brokers...),
		kgo.ClientID("kdr-cli"),
		kgo.DialTimeout(c.Timeout),
		// Like request.timeout.ms: a broker that accepts a connection
		// but does not answer is given up on after the timeout (the
		// default of 10s would make Close wait that long).
		kgo.RequestTimeoutOverhead(c.Timeout),
	}
	if c.log != nil {
		opts = append(opts, kgo.WithLogger(c.log))
	}
	sec, err := securityOpts(c.Security, "")
	if err != nil {
		return nil, err
	}
	opts = append(opts, sec...)
	cl, err := kgo.NewClient(append(opts, extra...)...)
	if err != nil {
		return nil, usageError{fmt.Errorf("invalid client settings (--brokers %s): %w", strings.Join(c.Brokers, ","), err)}
	}
	return cl, nil
}

// newAdmin builds an admin client for c. Close it when done.
func (c ConnOptions) newAdmin() (*kadm.Client, error) {
	cl, err := c.newClient()
	if err != nil {
		return nil, err
	}
	return c.adminOf(cl), nil
}

// adminOf is an admin client on cl, for commands that also send requests
// to chosen brokers through cl.
func (c ConnOptions) adminOf(cl *kgo.Client) *kadm.Client {
	adm := kadm.NewClient(cl)
	adm.SetTimeoutMillis(int32(c.Timeout.Milliseconds()))
	return adm
}

// checkTopic fails early, with one clear message, when the topic (or the
// given partition, if not -1) does not exist or the cluster cannot be reached.
func checkTopic(ctx context.Context, cl *kgo.Client, conn ConnOptions, topic string, partition int32) error {
	_, err := describeTopic(ctx, kadm.NewClient(cl), conn, topic, partition)
	return err
}

// describeTopic is checkTopic's answer: the topic's metadata.
func describeTopic(ctx context.Context, adm *kadm.Client, conn ConnOptions, topic string, partition int32) (kadm.TopicDetail, error) {
	ctx, cancel := conn.withTimeout(ctx)
	defer cancel()
	tds, err := adm.ListTopics(ctx, topic)
	if err != nil {
		return kadm.TopicDetail{}, conn.requestErr(fmt.Sprintf("reading metadata of topic %q", topic), err)
	}
	td, ok := tds[topic]
	switch {
	case !ok:
		return td, fmt.Errorf("topic %q: not in the broker's metadata answer", topic)
	case td.Err != nil:
		return td, fmt.Errorf("topic %q: %w (create it with: kdr topic create %s)", topic, td.Err, topic)
	case partition >= 0 && !slices.Contains(td.Partitions.Numbers(), partition):
		return td, usageError{fmt.Errorf("--partition %d: topic %q has %d partitions (0 to %d)", partition, topic, len(td.Partitions), len(td.Partitions)-1)}
	}
	return td, nil
}

// withTimeout bounds a whole admin command by the request timeout.
func (c ConnOptions) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, c.Timeout)
}

// requestErr explains a request that failed as a whole: what was being done,
// and for connection problems, what to check.
func (c ConnOptions) requestErr(what string, err error) error {
	brokers := strings.Join(c.Brokers, ",")
	var netErr *net.OpError
	var verify *tls.CertificateVerificationError
	var header tls.RecordHeaderError
	switch {
	// A TLS alert from the broker is a net.OpError of Op "remote error".
	case errors.As(err, &netErr) && netErr.Op == "remote error", errors.As(err, &verify), errors.As(err, &header):
		return fmt.Errorf("%s: the TLS handshake with brokers %s failed; check --tls-ca-file, --tls-cert-file and --tls-key-file, and that the cluster speaks TLS on that port: %w",
			what, brokers, err)
	case errors.Is(err, kerr.SaslAuthenticationFailed):
		return fmt.Errorf("%s: brokers %s refused the SASL credentials (%s); check --sasl-username and the password: %w", what, brokers, c.Security, err)
	case c.Security.EndedDuringSASL(err):
		return fmt.Errorf("%s: brokers %s ended the connection during SASL authentication (%s); check --sasl-username and the password: %w", what, brokers, c.Security, err)
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%s: no answer from brokers %s within %s; check that the cluster is up and that --brokers (or KDR_BROKERS) is right, or raise --timeout: %w",
			what, brokers, c.Timeout, err)
	case errors.Is(err, context.Canceled):
		return fmt.Errorf("%s: interrupted", what)
	case errors.As(err, &netErr):
		return fmt.Errorf("%s: cannot connect to brokers %s; check that the cluster is up and that --brokers (or KDR_BROKERS) is right: %w",
			what, brokers, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// kafkaErr is err (usually a kerr.Error) with the broker's extra message, if
// it adds anything.
func kafkaErr(err error, msg string) error {
	if msg == "" || strings.Contains(err.Error(), msg) {
		return err
	}
	return fmt.Errorf("%w (%s)", err, msg)
}

// kgoLogger forwards the Kafka client's logs to the command's logger.
type kgoLogger struct {
	l     *slog.Logger
	level kgo.LogLevel
}

// newKgoLogger gives the Kafka client the command's logger at --log-level
// debug, and no logger otherwise: the client's own warnings and errors (one
// per connection retry) would repeat the error the command returns.
func newKgoLogger(streams IO, g *globalOptions) (kgo.Logger, error) {
	if g == nil || streams.Err == nil {
		return nil, nil
	}
	l, err := g.logger(streams.Err) // validates --log-level and --log-format
	if err != nil || g.LogLevel != "debug" {
		return nil, err
	}
	return kgoLogger{l: l, level: kgo.LogLevelDebug}, nil
}

func (k kgoLogger) Level() kgo.LogLevel { return k.level }

func (k kgoLogger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	sl := slog.LevelDebug
	switch level {
	case kgo.LogLevelError:
		sl = slog.LevelError
	case kgo.LogLevelWarn:
		sl = slog.LevelWarn
	case kgo.LogLevelInfo:
		sl = slog.LevelInfo
	}
	k.l.Log(context.Background(), sl, "kafka client: "+msg, keyvals...)
}

// runAdmin is the shape of an admin command: one request through a fresh
// admin client within the connection's timeout, then its result printed.
// With partial set, a result that partial says holds something is printed
// even when do also failed (describe or delete of several names, some of
// which failed), and the error is returned after it.
func runAdmin[T any](ctx context.Context, conn ConnOptions, out io.Writer, do func(context.Context, *kadm.Client) (T, error),
	print func(io.Writer, T) error, partial func(T) bool) error {
	ctx, cancel := conn.withTimeout(ctx)
	defer cancel()
	adm, err := conn.newAdmin()
	if err != nil {
		return err
	}
	defer adm.Close()
	res, err := do(ctx, adm)
	if err != nil && (partial == nil || !partial(res)) {
		return err
	}
	if perr := printResult(out, conn.Output, res, print); perr != nil {
		return perr
	}
	return err
}

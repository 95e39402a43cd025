package mirror

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kdr-io/kdr/clientsec"
	"github.com/kdr-io/kdr/internal/kdrtest"
)

// securedCluster is a kfake cluster asking for SASL (and TLS with a CA
// file), with a test client that authenticates as the flow's workers do.
func securedCluster(t *testing.T, mechanism string, withTLS bool, opts ...kfake.Opt) (*cluster, clientsec.Config) {
	t.Helper()
	s := kdrtest.StartSecured(t, mechanism, withTLS, opts...)
	env := "KDR_TEST_PASSWORD_" + strings.NewReplacer("-", "_").Replace(mechanism)
	t.Setenv(env, s.Password)
	sec := clientsec.Config{SASL: clientsec.SASL{Mechanism: mechanism, Username: s.User, PasswordEnv: env}}
	if withTLS {
		sec.TLS.CAFile = s.CAFile
	}
	secOpts, err := sec.Opts()
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(append(secOpts, kgo.SeedBrokers(s.Addr()), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.MetadataMinAge(10*time.Millisecond))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return &cluster{t: t, addr: s.Addr(), cl: cl, adm: kadm.NewClient(cl), sec: secOpts}, sec
}

// checkRecords fails unless topic on c holds exactly seqRecords(topic,
// parts, 0, n), each partition in order.
func checkRecords(t *testing.T, c *cluster, topic string, parts, n int) {
	t.Helper()
	got := c.readAll(topic)
	want := map[int32][]string{}
	for _, r := range seqRecords(topic, parts, 0, n) {
		want[r.Partition] = append(want[r.Partition], string(r.Value))
	}
	for p := range int32(parts) {
		var vals []string
		for _, r := range got[p] {
			vals = append(vals, string(r.Value))
		}
		if !slices.Equal(vals, want[p]) {
			t.Fatalf("%s/%d holds %d records %.80q..., want %d %.80q...", topic, p, len(vals), vals, len(want[p]), want[p])
		}
	}
}

// TestMirrorToSecuredTarget mirrors from a kdr cluster to a cluster that
// asks for TLS and SASL SCRAM-SHA-512 (SASL_SSL), the password in an
// environment variable: every record arrives once and in order, and the
// heartbeats, checkpoints and a group's synced offsets are written there.
func TestMirrorToSecuredTarget(t *testing.T) {
	east := startCluster(t)
	west, sec := securedCluster(t, clientsec.ScramSHA512, true)
	const parts, n, group = 3, 300, "billing"
	east.createTopic("orders", parts)
	east.produce(seqRecords("orders", parts, 0, n)...)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	commit := kadm.Offsets{}
	for p := range int32(parts) {
		commit.Add(kadm.Offset{Topic: "orders", Partition: p, At: 40, LeaderEpoch: -1})
	}
	if err := east.adm.CommitAllOffsets(ctx, group, commit); err != nil {
		t.Fatal(err)
	}

	f := testFlow(east, west, "east", "west")
	f.Target.Security = sec
	f.CheckpointInterval = 200 * time.Millisecond
	f.SyncTopicACLs = false // kfake keeps ACLs only when asked to
	w := startWorker(t, f)
	waitCount(t, west, "east.orders", n, 30*time.Second)
	checkRecords(t, west, "east.orders", parts, n)
	waitGroupAt(t, west, group, "east.orders", map[int32]int64{0: 40, 1: 40, 2: 40}, 30*time.Second)
	for _, topic := range []string{"heartbeats", "east.checkpoints.internal"} {
		if west.count(topic) == 0 {
			t.Errorf("%s is empty on the secured target", topic)
		}
	}
	if err := w.Health(); err != nil {
		t.Errorf("health: %v", err)
	}
}

// TestMirrorFromSecuredSource mirrors from a cluster that asks for SASL
// PLAIN without TLS (SASL_PLAINTEXT) to a kdr cluster: the consumer, the
// fetcher, the offset-syncs reader and the checkpointer all authenticate,
// so records arrive and a group's offsets are translated.
func TestMirrorFromSecuredSource(t *testing.T) {
	const parts, n, group = 3, 300, "billing"
	east, sec := securedCluster(t, clientsec.Plain, false, kfake.SeedTopics(parts, "orders"))
	west := startCluster(t)
	east.produce(seqRecords("orders", parts, 0, n)...)

	f := testFlow(east, west, "east", "west")
	f.Source.Security = sec
	f.CheckpointInterval = 200 * time.Millisecond
	f.SyncTopicACLs = false
	startWorker(t, f)
	waitCount(t, west, "east.orders", n, 30*time.Second)
	checkRecords(t, west, "east.orders", parts, n)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	commit := kadm.Offsets{}
	for p := range int32(parts) {
		commit.Add(kadm.Offset{Topic: "orders", Partition: p, At: int64(10 * (p + 1)), LeaderEpoch: -1})
	}
	if err := east.adm.CommitAllOffsets(ctx, group, commit); err != nil {
		t.Fatal(err)
	}
	waitGroupAt(t, west, group, "east.orders", map[int32]int64{0: 10, 1: 20, 2: 30}, 30*time.Second)
}

// TestMirrorSecuredTargetRejects: a wrong password, or no TLS where the
// target wants it, is an error of the target in the worker's status and
// health that says what failed; nothing is copied, and the worker stays
// up. With the right settings a new worker then copies everything.
func TestMirrorSecuredTargetRejects(t *testing.T) {
	east := startCluster(t)
	west, sec := securedCluster(t, clientsec.ScramSHA256, true)
	east.createTopic("orders", 2)
	east.produce(seqRecords("orders", 2, 0, 100)...)

	wrong := sec
	t.Setenv("KDR_TEST_WRONG_PASSWORD", "not-it")
	wrong.SASL.PasswordEnv = "KDR_TEST_WRONG_PASSWORD"
	noTLS := sec
	noTLS.TLS = clientsec.TLS{}
	for _, c := range []struct {
		name string
		sec  clientsec.Config
		want string
	}{
		// kfake ends the connection where Kafka would answer
		// SASL_AUTHENTICATION_FAILED: the worker says what that means.
		{"wrong password", wrong, "during SASL authentication (SASL_SSL SCRAM-SHA-256 as mirror): check the user and password"},
		{"no TLS", noTLS, "is TLS missing?"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := testFlow(east, west, "east", "west")
			f.Target.Security = c.sec
			f.SyncTopicACLs = false
			w := startWorker(t, f)
			kdrtest.Eventually(t, 30*time.Second, func() (bool, string) {
				e := w.Status().Errors[KindTarget]
				h := w.Health()
				return e.Count > 0 && strings.Contains(e.Last, c.want) && h != nil && strings.Contains(h.Error(), c.want),
					fmt.Sprintf("target errors %+v, health %v; want an error naming %q", e, h, c.want)
			})
			t.Logf("%s: status %q; health %v", c.name, w.Status().Errors[KindTarget].Last, w.Health())
			if west.hasTopic("east.orders") && west.count("east.orders") > 0 {
				t.Fatalf("records reached the target through a worker it should refuse")
			}
			w.stop()
		})
	}
	f := testFlow(east, west, "east", "west")
	f.Target.Security = sec
	f.SyncTopicACLs = false
	startWorker(t, f)
	waitCount(t, west, "east.orders", 100, 30*time.Second)
	checkRecords(t, west, "east.orders", 2, 100)
}

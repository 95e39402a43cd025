package cli

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/kdr-io/kdr/internal/kdrtest"
)

// TestProduceInterrupted checks that Ctrl-C (the command context ending)
// stops a produce that waits on a terminal, after delivering what was read.
func TestProduceInterrupted(t *testing.T) {
	b := kdrtest.StartBroker(t)
	addr := b.Addr()
	mustKdr(t, addr, "", "topic", "create", "t", "--partitions", "1")

	stdin, typing := io.Pipe()
	defer typing.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errOut bytes.Buffer
	root := NewCmdRoot(IO{In: stdin, Out: &out, Err: &errOut})
	root.SetArgs([]string{"produce", "t", "--brokers", addr})
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()

	if _, err := io.WriteString(typing, "one\ntwo\n"); err != nil {
		t.Fatal(err)
	}
	kdrtest.Eventually(t, 20*time.Second, func() (bool, string) {
		partitions, _, _ := describeOne(t, addr, "t")
		return partitions[0].HighWatermark == 2, "high watermark is not 2 yet"
	})
	cancel()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "interrupted after 2 records") {
			t.Errorf("interrupted produce returned %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("produce did not stop after its context was cancelled")
	}
	if !strings.Contains(errOut.String(), "Produced 2 record(s) to topic t") {
		t.Errorf("summary missing from stderr:\n%s", errOut.String())
	}
	if got := mustKdr(t, addr, "", "consume", "t", "--from-beginning", "--max-messages", "2"); got != "one\ntwo\n" {
		t.Errorf("consumed %q", got)
	}
}

// TestProduceToFencedCluster checks that a produce refused by a cluster a
// failover fenced says so, with the fence's epoch and reason, and where to
// find the active cluster, not only Kafka's generic text for
// POLICY_VIOLATION (what a QA run got after kdr failover switchover).
func TestProduceToFencedCluster(t *testing.T) {
	b := kdrtest.StartBroker(t)
	addr := b.Addr()
	mustKdr(t, addr, "", "topic", "create", "orders", "--partitions", "1")
	mustKdr(t, addr, "", "cluster", "fence", "--epoch", "7", "--reason", "failover to west")

	r := runKdr(t, addr, "x\ny\n", "produce", "orders")
	const refused = "producing to orders: POLICY_VIOLATION: Request parameters do not satisfy the configured policy."
	want := "Error: line 1: " + refused + "\n" +
		"Error: line 2: " + refused + "\n" +
		"Produced 0 record(s) to topic orders; 2 failed\n" +
		`Error: 2 of 2 records could not be produced to topic "orders" (errors above): ` +
		"cluster fenced by failover epoch 7: failover to west; produce to the active cluster (kdr failover status or kdr discover names the active cluster)\n"
	if r.code != exitError || r.stderr != want {
		t.Errorf("produce to a fenced cluster: exit %d, stderr:\n%s\nwant exit %d, stderr:\n%s", r.code, r.stderr, exitError, want)
	}
	if partitions, _, _ := describeOne(t, addr, "orders"); partitions[0].HighWatermark != 0 {
		t.Errorf("the fenced cluster took records: high watermark %d", partitions[0].HighWatermark)
	}

	// Refused by a kdr cluster that is no longer fenced, or by another
	// cluster's policy, the explanation says what it can.
	mustKdr(t, addr, "", "cluster", "unfence", "--epoch", "7")
	conn := ConnOptions{Brokers: []string{addr}, Timeout: 20 * time.Second}
	if got, want := explainWith(t, conn), "the cluster's policy refused them, but it is not fenced now (epoch 7): a failover may have fenced it and lifted the fence since (kdr failover status or kdr discover names the active cluster)"; got != want {
		t.Errorf("unfenced kdr cluster:\ngot  %q\nwant %q", got, want)
	}
	other, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	conn.Brokers = other.ListenAddrs()
	if got, want := explainWith(t, conn), "the cluster's policy refused them (a kdr cluster does so while a failover fences it: kdr cluster status shows the fence; kdr failover status or kdr discover names the active cluster)"; got != want {
		t.Errorf("a cluster without kdr's fence:\ngot  %q\nwant %q", got, want)
	}
}

func explainWith(t *testing.T, conn ConnOptions) string {
	t.Helper()
	cl, err := conn.newClient()
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	return explainPolicyViolation(t.Context(), cl, conn)
}

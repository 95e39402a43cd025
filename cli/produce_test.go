package cli

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"

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

package broker_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kdr-io/kdr/internal/kdrtest"
)

// TestBrokerServesWhileATopicIsCreated holds a topic's creation in the
// middle of its disk work and checks that the broker's other partitions
// still take produce and fetch requests meanwhile. It used to hold the lock
// every request takes while it created and fsynced the new logs.
//
// The new partition's metadata file is a FIFO: opening the partition reads
// that file, and the read waits for a writer, so the creation stays where a
// slow fsync would keep it until the test writes.
func TestBrokerServesWhileATopicIsCreated(t *testing.T) {
	b := kdrtest.StartBroker(t)
	adm := kadm.NewClient(client(t, b.Addr()))
	createTopic(t, adm, "busy", 1, nil)
	prod := client(t, b.Addr(), kgo.DefaultProduceTopic("busy"))
	if err := prod.ProduceSync(ctxT(t), &kgo.Record{Value: []byte("before")}).FirstErr(); err != nil {
		t.Fatal(err)
	}

	dir := filepath.Join(b.Config().DataDir, "slow-0")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "partition.metadata")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	created := make(chan error, 1)
	go func() {
		resp, err := adm.CreateTopic(context.Background(), 1, 1, nil, "slow")
		created <- errors.Join(err, resp.Err)
	}()
	// Opening a FIFO to write without blocking fails until a reader has
	// it open: once it succeeds, the broker is inside the creation, and
	// keeping this end open without writing keeps it there.
	var w *os.File
	kdrtest.Eventually(t, 10*time.Second, func() (bool, string) {
		f, err := os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0)
		if err != nil {
			return false, "the broker has not started opening slow-0: " + err.Error()
		}
		w = f
		return true, ""
	})
	release := func() {
		if w != nil {
			w.Write([]byte("{}")) // a topic id that is not slow's: the directory is replaced
			w.Close()
			w = nil
		}
	}
	t.Cleanup(release)

	// The produce runs apart: a request stuck behind the creation would
	// wait for the release, which only this goroutine can give.
	produced := make(chan kgo.ProduceResults, 1)
	go func() { produced <- prod.ProduceSync(context.Background(), &kgo.Record{Value: []byte("during")}) }()
	select {
	case res := <-produced:
		r, err := res.First()
		if err != nil {
			t.Fatalf("produce to another topic while slow's creation is held: %v", err)
		}
		if r.Offset != 1 {
			t.Fatalf("produced at offset %d, want 1", r.Offset)
		}
	case <-time.After(5 * time.Second):
		release()
		t.Fatal("a produce to another topic waited for slow's creation")
	}
	select {
	case err := <-created:
		t.Fatalf("slow was created while its partition's metadata was unreadable (err %v): the test held nothing", err)
	default:
	}
	got := consumeAll(t, b.Addr(), "busy", 2)
	if string(got[0].Value) != "before" || string(got[1].Value) != "during" {
		t.Fatalf("busy holds %q, %q; want before, during", got[0].Value, got[1].Value)
	}

	release()
	select {
	case err := <-created:
		if err != nil {
			t.Fatalf("creating slow: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("slow's creation did not finish after its metadata became readable")
	}
	sp := client(t, b.Addr(), kgo.DefaultProduceTopic("slow"))
	r, err := sp.ProduceSync(ctxT(t), &kgo.Record{Value: []byte("slow")}).First()
	if err != nil {
		t.Fatalf("produce to slow: %v", err)
	}
	if r.Offset != 0 {
		t.Fatalf("produced to slow at offset %d, want 0", r.Offset)
	}
}

package broker_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/sys/unix"

	"github.com/kdr-io/kdr/broker"
	"github.com/kdr-io/kdr/internal/kdrtest"
)

// TestBrokerDiskFullIsStorageError: an append the disk refuses is answered
// with KAFKA_STORAGE_ERROR, which clients retry, and counted in
// kdr_broker_storage_errors_total; the broker stays up, the partition
// takes appends again once there is room, and the log holds every
// acknowledged record and nothing of the refused one. The refusal comes
// from the process's file size limit (RLIMIT_FSIZE), which fails a write
// past it with EFBIG the way a full disk fails it with ENOSPC; Go ignores
// the SIGXFSZ that comes with it.
func TestBrokerDiskFullIsStorageError(t *testing.T) {
	b := kdrtest.StartBroker(t, kdrtest.WithConfig(func(c *broker.Config) { c.MetricsListen = "127.0.0.1:0" }))
	_, value := produceKeyed(t, b.Addr(), "full", 'f')
	seg, err := os.Stat(filepath.Join(b.Config().DataDir, "full-0", "00000000000000000000.log"))
	if err != nil {
		t.Fatal(err)
	}

	// No file of this process may now grow past the segment's size (2 MiB,
	// more than the metadata files hold): the next append to it fails.
	var limit unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_FSIZE, &limit); err != nil {
		t.Fatal(err)
	}
	restore := func() {
		if err := unix.Setrlimit(unix.RLIMIT_FSIZE, &limit); err != nil {
			t.Fatalf("restoring the file size limit: %v", err)
		}
	}
	t.Cleanup(restore)
	if err := unix.Setrlimit(unix.RLIMIT_FSIZE, &unix.Rlimit{Cur: uint64(seg.Size()), Max: limit.Max}); err != nil {
		t.Fatal(err)
	}
	if code := produceDirect(t, b.Addr(), "full", 0, "refused"); code != kerr.KafkaStorageError.Code {
		t.Fatalf("append past the file size limit answered %v, want KAFKA_STORAGE_ERROR", kerr.ErrorForCode(code))
	}
	if n := metricValue(t, b.MetricsAddr(), "kdr_broker_storage_errors_total", nil); n != 1 {
		t.Fatalf("kdr_broker_storage_errors_total %v, want 1", n)
	}

	restore()
	if code := produceDirect(t, b.Addr(), "full", 0, "after"); code != 0 {
		t.Fatalf("append once there is room answered %v", kerr.ErrorForCode(code))
	}
	// The torn append was cut: "after" directly follows the keyed records.
	consumer := client(t, b.Addr(), kgo.ConsumeTopics("full"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	var got []*kgo.Record
	for len(got) < keyedRecords+1 {
		fs := consumer.PollFetches(ctxT(t))
		if err := fs.Err(); err != nil {
			t.Fatal(err)
		}
		got = append(got, fs.Records()...)
	}
	if len(got) != keyedRecords+1 {
		t.Fatalf("read %d records, want %d", len(got), keyedRecords+1)
	}
	for i, r := range got[:keyedRecords] {
		if string(r.Key) != strconv.Itoa(i) || !bytes.Equal(r.Value, value) || r.Offset != int64(i) {
			t.Fatalf("record %d: key %q at offset %d, %d value bytes", i, r.Key, r.Offset, len(r.Value))
		}
	}
	if last := got[keyedRecords]; string(last.Value) != "after" || last.Offset != keyedRecords {
		t.Fatalf("after the refusal: %q at offset %d, want \"after\" at %d", last.Value, last.Offset, keyedRecords)
	}
}

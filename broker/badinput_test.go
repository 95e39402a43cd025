package broker_test

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kdr-io/kdr/internal/kdrtest"
)

// TestBrokerBadInputClosesConnectionAndKeepsServing sends a real broker the
// inputs a confused or hostile client can send, each on its own connection,
// while a producer keeps writing on another: each bad connection is closed,
// and every acknowledged record is still readable afterwards.
func TestBrokerBadInputClosesConnectionAndKeepsServing(t *testing.T) {
	b := kdrtest.StartBroker(t)
	prod := client(t, b.Addr(), kgo.DefaultProduceTopic("steady"), kgo.AllowAutoTopicCreation())
	meta := kmsg.NewPtrMetadataRequest()
	meta.Version = 9
	unknownKey := frameRequest(meta, 1)
	binary.BigEndian.PutUint16(unknownKey[4:], 777)
	tooNew := frameRequest(meta, 1)
	binary.BigEndian.PutUint16(tooNew[6:], 300)
	truncated := frameRequest(meta, 1)
	truncated = truncated[:len(truncated)-3]
	inputs := map[string][]byte{
		"2 GiB length prefix":   {0x7f, 0xff, 0xff, 0xff, 0, 18, 0, 0},
		"garbage":               []byte("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 TLS hello to a plaintext port"),
		"unknown api key":       unknownKey,
		"unsupported version":   tooNew,
		"truncated then hangup": truncated,
	}
	acked := 0
	for name, in := range inputs {
		c, err := net.Dial("tcp", b.Addr())
		if err != nil {
			t.Fatal(err)
		}
		c.Write(in)
		if name == "truncated then hangup" {
			c.Close()
		} else {
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := io.ReadAll(c); err != nil && !errors.Is(err, io.EOF) {
				t.Fatalf("%s: connection not closed by the broker: %v", name, err)
			}
			c.Close()
		}
		if err := prod.ProduceSync(ctxT(t), &kgo.Record{Value: []byte(name)}).FirstErr(); err != nil {
			t.Fatalf("after %s: produce failed: %v", name, err)
		}
		acked++
	}
	got := consumeAll(t, b.Addr(), "steady", acked)
	if len(got) != acked {
		t.Fatalf("read %d records, want %d", len(got), acked)
	}
}

package broker_test

import (
	"bytes"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kdr-io/kdr/broker"
	"github.com/kdr-io/kdr/internal/kdrtest"
	"github.com/kdr-io/kdr/internal/promtext"
)

// metricValue scrapes the /metrics at addr and returns the series name with
// exactly labels, or -1 when it is absent.
func metricValue(t *testing.T, addr, name string, labels map[string]string) float64 {
	t.Helper()
	samples, err := promtext.Parse(strings.NewReader(metricsText(t, addr)))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range samples {
		if s.Name == name && maps.Equal(s.Labels, labels) {
			return s.Value
		}
	}
	return -1
}

// TestBrokerWritebackHandsProducedBytes produces 2 MiB to a broker with
// log.writeback.bytes=64 KiB and expects all but the last 64 KiB handed to
// the kernel's writeback, the setting in DescribeConfigs, and every record
// read back.
func TestBrokerWritebackHandsProducedBytes(t *testing.T) {
	const every = 64 << 10
	b := kdrtest.StartBroker(t, kdrtest.WithConfig(func(c *broker.Config) {
		c.MetricsListen = "127.0.0.1:0"
		c.LogWritebackBytes = every
	}))
	adm, value := produceKeyed(t, b.Addr(), "wb", 'w')
	var handed, produced float64
	kdrtest.Eventually(t, 10*time.Second, func() (bool, string) {
		handed = metricValue(t, b.MetricsAddr(), "kdr_broker_log_writeback_bytes_total", nil)
		produced = metricValue(t, b.MetricsAddr(), "kdr_topic_produced_bytes_total", map[string]string{"topic": "wb"})
		return produced >= keyedRecords*16<<10 && handed > produced-every, fmt.Sprintf("handed %.0f of %.0f produced bytes to writeback", handed, produced)
	})
	if handed > produced {
		t.Fatalf("handed %.0f bytes, more than the %.0f produced", handed, produced)
	}
	if f := metricValue(t, b.MetricsAddr(), "kdr_broker_log_writeback_failures_total", nil); f != 0 {
		t.Fatalf("kdr_broker_log_writeback_failures_total %v", f)
	}

	cfgs, err := adm.DescribeBrokerConfigs(ctxT(t), 1)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := cfgs.On("1", nil)
	if err != nil {
		t.Fatal(err)
	}
	var got string
	for _, c := range rc.Configs {
		if c.Key == "log.writeback.bytes" {
			got = c.MaybeValue()
		}
	}
	if got != strconv.Itoa(every) {
		t.Fatalf("DescribeConfigs log.writeback.bytes = %q, want %d", got, every)
	}

	readKeyed(t, b.Addr(), "wb", value)
}

// keyedRecords records of 16 KiB each, keyed by their index, are what
// produceKeyed writes and readKeyed expects: 2 MiB, enough for many
// writeback ranges of the sizes these tests set.
const keyedRecords = 128

// produceKeyed creates topic with one partition and produces keyedRecords
// records to it, one at a time, uncompressed; it returns an admin client
// and the value every record carries (fill repeated).
func produceKeyed(t *testing.T, addr, topic string, fill byte) (*kadm.Client, []byte) {
	t.Helper()
	cl := client(t, addr, kgo.DefaultProduceTopic(topic), kgo.ProducerBatchCompression(kgo.NoCompression()))
	adm := kadm.NewClient(cl)
	createTopic(t, adm, topic, 1, nil)
	value := bytes.Repeat([]byte{fill}, 16<<10)
	for i := range keyedRecords {
		if err := cl.ProduceSync(ctxT(t), &kgo.Record{Key: []byte(strconv.Itoa(i)), Value: value}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	return adm, value
}

// readKeyed reads topic from the start and checks it holds exactly what
// produceKeyed wrote, in order.
func readKeyed(t *testing.T, addr, topic string, value []byte) {
	t.Helper()
	consumer := client(t, addr, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	n := 0
	for n < keyedRecords {
		fs := consumer.PollFetches(ctxT(t))
		if err := fs.Err(); err != nil {
			t.Fatal(err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if string(r.Key) != strconv.Itoa(n) || !bytes.Equal(r.Value, value) || r.Offset != int64(n) {
				t.Fatalf("record %d: key %q at offset %d, %d value bytes", n, r.Key, r.Offset, len(r.Value))
			}
			n++
		})
	}
}

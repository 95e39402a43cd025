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
	cl := client(t, b.Addr(), kgo.DefaultProduceTopic("wb"), kgo.ProducerBatchCompression(kgo.NoCompression()))
	adm := kadm.NewClient(cl)
	createTopic(t, adm, "wb", 1, nil)

	value := bytes.Repeat([]byte("w"), 16<<10)
	const records = 128
	for i := range records {
		if err := cl.ProduceSync(ctxT(t), &kgo.Record{Key: []byte(strconv.Itoa(i)), Value: value}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	var handed, produced float64
	kdrtest.Eventually(t, 10*time.Second, func() (bool, string) {
		handed = metricValue(t, b.MetricsAddr(), "kdr_broker_log_writeback_bytes_total", nil)
		produced = metricValue(t, b.MetricsAddr(), "kdr_topic_produced_bytes_total", map[string]string{"topic": "wb"})
		return produced >= records*16<<10 && handed > produced-every, fmt.Sprintf("handed %.0f of %.0f produced bytes to writeback", handed, produced)
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

	consumer := client(t, b.Addr(), kgo.ConsumeTopics("wb"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	n := 0
	for n < records {
		fs := consumer.PollFetches(ctxT(t))
		if err := fs.Err(); err != nil {
			t.Fatal(err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if string(r.Key) != strconv.Itoa(n) || !bytes.Equal(r.Value, value) {
				t.Fatalf("record %d: key %q", n, r.Key)
			}
			n++
		})
	}
}

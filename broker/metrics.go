package broker

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the broker's partition and topic metrics. Partition gauges are
// read from the logs at scrape time, so the append path pays nothing for
// them.
type metrics struct {
	b *Broker

	producedBytes   *prometheus.CounterVec
	producedRecords *prometheus.CounterVec
	fetchedBytes    *prometheus.CounterVec
	isrChanges      *prometheus.CounterVec
	// Write fencing (fence.go).
	fencedRejections prometheus.Counter
	fencedAllowed    *prometheus.CounterVec
	fenced           *prometheus.Desc
	fenceEpoch       *prometheus.Desc
	// storageErrors counts partition appends and reads that failed in the
	// log's files (KAFKA_STORAGE_ERROR), and failed flushes of rolled
	// segments.
	storageErrors prometheus.Counter
	// logFlush times the flushes of rolled segments, which run beside
	// the appends (storage/flush.go).
	logFlush prometheus.Histogram

	logEndOffset    *prometheus.Desc
	logStartOffset  *prometheus.Desc
	highWatermark   *prometheus.Desc
	sizeBytes       *prometheus.Desc
	leader          *prometheus.Desc
	partitions      *prometheus.Desc
	topics          *prometheus.Desc
	leaders         *prometheus.Desc
	underReplicated *prometheus.Desc
	underMinISR     *prometheus.Desc
	fetchLag        *prometheus.Desc
	fetchLagTime    *prometheus.Desc
	// Early writeback (log.writeback.bytes).
	writebackBytes    *prometheus.Desc
	writebackFailures *prometheus.Desc
	droppedBytes      *prometheus.Desc // drop-behind (log.drop.behind.bytes)
}

func newMetrics(b *Broker) *metrics {
	tp := []string{"topic", "partition"}
	return &metrics{
		b: b,
		producedBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kdr_topic_produced_bytes_total", Help: "Record batch bytes appended by producers, by topic.",
		}, []string{"topic"}),
		producedRecords: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kdr_topic_produced_records_total", Help: "Records appended by producers, by topic.",
		}, []string{"topic"}),
		fetchedBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kdr_topic_fetched_bytes_total", Help: "Record batch bytes returned to fetchers, by topic.",
		}, []string{"topic"}),
		isrChanges: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kdr_partition_isr_changes_total", Help: "ISR changes this broker committed as partition leader, by kind (shrink, expand).",
		}, []string{"kind"}),
		fencedRejections: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kdr_broker_fenced_produce_rejections_total", Help: "Produce partitions refused because the cluster is fenced.",
		}),
		storageErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kdr_broker_storage_errors_total",
			Help: "Partition appends and fetch reads that failed in the log's files (disk full, I/O error), answered with KAFKA_STORAGE_ERROR, and failed flushes of rolled segments.",
		}),
		logFlush: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "kdr_broker_log_flush_seconds",
			Help:    "Time to fsync rolled segments, their indexes and producer snapshot and move the recovery point; done beside the appends.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
		fencedAllowed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kdr_broker_fenced_produce_allowed_total",
			Help: "Produce partitions accepted while the cluster is fenced, by exception (mirror_client, internal_topic).",
		}, []string{"exception"}),
		fenced:          prometheus.NewDesc("kdr_broker_fenced", "1 while this broker enforces a cluster write fence.", nil, nil),
		fenceEpoch:      prometheus.NewDesc("kdr_broker_fence_epoch", "Fencing epoch of the last fence change this broker knows of.", nil, nil),
		leaders:         prometheus.NewDesc("kdr_broker_leader_partitions", "Partitions this broker leads.", nil, nil),
		underReplicated: prometheus.NewDesc("kdr_broker_under_replicated_partitions", "Partitions led by this broker whose ISR is smaller than their replica set.", nil, nil),
		underMinISR:     prometheus.NewDesc("kdr_broker_under_min_isr_partitions", "Partitions led by this broker whose ISR is below min.insync.replicas.", nil, nil),
		fetchLag:        prometheus.NewDesc("kdr_replica_fetch_lag_records", "Records a followed partition is behind its leader's high watermark.", tp, nil),
		fetchLagTime:    prometheus.NewDesc("kdr_replica_fetch_lag_seconds", "Seconds since a followed partition last had its leader's high watermark (0 when caught up).", tp, nil),
		logEndOffset:    prometheus.NewDesc("kdr_partition_log_end_offset", "Offset of the next record to be appended.", tp, nil),
		logStartOffset:  prometheus.NewDesc("kdr_partition_log_start_offset", "First offset still in the log.", tp, nil),
		highWatermark:   prometheus.NewDesc("kdr_partition_high_watermark", "Offset up to which consumers may read.", tp, nil),
		sizeBytes:       prometheus.NewDesc("kdr_partition_size_bytes", "Bytes of the partition's segments on disk.", tp, nil),
		leader:          prometheus.NewDesc("kdr_partition_is_leader", "1 when this broker leads the partition.", tp, nil),
		partitions:      prometheus.NewDesc("kdr_broker_partitions", "Partition replicas hosted by this broker.", nil, nil),
		topics:          prometheus.NewDesc("kdr_broker_topics", "Topics in the cluster metadata.", nil, nil),
		writebackBytes: prometheus.NewDesc("kdr_broker_log_writeback_bytes_total",
			"Appended log bytes handed to the kernel's writeback early (log.writeback.bytes).", nil, nil),
		writebackFailures: prometheus.NewDesc("kdr_broker_log_writeback_failures_total",
			"Early writeback ranges the kernel refused; those bytes are written back on the kernel's own schedule.", nil, nil),
		droppedBytes: prometheus.NewDesc("kdr_broker_log_dropped_bytes_total",
			"Written-back log bytes dropped from the page cache (log.drop.behind.bytes).", nil, nil),
	}
}

func (m *metrics) produced(topic string, bytes, records int) {
	m.producedBytes.WithLabelValues(topic).Add(float64(bytes))
	m.producedRecords.WithLabelValues(topic).Add(float64(records))
}

// flushed records a flush of rolled segments (storage.Options.OnFlush). A
// failure is logged where it surfaces: by the log for a background flush,
// by the caller of Flush or Close otherwise.
func (m *metrics) flushed(took time.Duration, err error) {
	m.logFlush.Observe(took.Seconds())
	if err != nil {
		m.storageErrors.Inc()
	}
}

func (m *metrics) isrChange(kind string) { m.isrChanges.WithLabelValues(kind).Inc() }

func (m *metrics) fetched(topic string, bytes int) {
	m.fetchedBytes.WithLabelValues(topic).Add(float64(bytes))
}

// Describe implements prometheus.Collector.
func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	m.producedBytes.Describe(ch)
	m.producedRecords.Describe(ch)
	m.fetchedBytes.Describe(ch)
	m.isrChanges.Describe(ch)
	m.fencedRejections.Describe(ch)
	m.fencedAllowed.Describe(ch)
	m.storageErrors.Describe(ch)
	m.logFlush.Describe(ch)
	for _, d := range []*prometheus.Desc{m.fenced, m.fenceEpoch, m.logEndOffset, m.logStartOffset, m.highWatermark, m.sizeBytes, m.leader, m.partitions, m.topics,
		m.leaders, m.underReplicated, m.underMinISR, m.fetchLag, m.fetchLagTime, m.writebackBytes, m.writebackFailures, m.droppedBytes} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	m.producedBytes.Collect(ch)
	m.producedRecords.Collect(ch)
	m.fetchedBytes.Collect(ch)
	m.isrChanges.Collect(ch)
	m.fencedRejections.Collect(ch)
	m.fencedAllowed.Collect(ch)
	m.storageErrors.Collect(ch)
	m.logFlush.Collect(ch)
	ch <- prometheus.MustNewConstMetric(m.writebackBytes, prometheus.CounterValue, float64(m.b.wb.Bytes()))
	ch <- prometheus.MustNewConstMetric(m.writebackFailures, prometheus.CounterValue, float64(m.b.wb.Failures()))
	ch <- prometheus.MustNewConstMetric(m.droppedBytes, prometheus.CounterValue, float64(m.b.wb.Dropped()))
	parts := m.b.allPartitions()
	var leaders, under, underMin int
	for _, p := range parts {
		labels := []string{p.topic, strconv.Itoa(int(p.index))}
		leader, _, settings := p.state()
		isLeader := 0.0
		if leader {
			isLeader = 1
			leaders++
			p.mu.Lock()
			isr, replicas := len(p.isr), len(p.replicas)
			p.mu.Unlock()
			if isr < replicas {
				under++
			}
			if int32(isr) < settings.minInsyncReplicas {
				underMin++
			}
		}
		ch <- prometheus.MustNewConstMetric(m.logEndOffset, prometheus.GaugeValue, float64(p.log.LogEndOffset()), labels...)
		ch <- prometheus.MustNewConstMetric(m.logStartOffset, prometheus.GaugeValue, float64(p.log.LogStartOffset()), labels...)
		ch <- prometheus.MustNewConstMetric(m.highWatermark, prometheus.GaugeValue, float64(p.highWatermark()), labels...)
		ch <- prometheus.MustNewConstMetric(m.sizeBytes, prometheus.GaugeValue, float64(p.log.Size()), labels...)
		ch <- prometheus.MustNewConstMetric(m.leader, prometheus.GaugeValue, isLeader, labels...)
	}
	ch <- prometheus.MustNewConstMetric(m.partitions, prometheus.GaugeValue, float64(len(parts)))
	ch <- prometheus.MustNewConstMetric(m.leaders, prometheus.GaugeValue, float64(leaders))
	ch <- prometheus.MustNewConstMetric(m.underReplicated, prometheus.GaugeValue, float64(under))
	ch <- prometheus.MustNewConstMetric(m.underMinISR, prometheus.GaugeValue, float64(underMin))
	if m.b.fetcher != nil {
		for _, l := range m.b.fetcher.Lags() {
			labels := []string{l.Topic, strconv.Itoa(int(l.Partition))}
			ch <- prometheus.MustNewConstMetric(m.fetchLag, prometheus.GaugeValue, float64(l.Records), labels...)
			ch <- prometheus.MustNewConstMetric(m.fetchLagTime, prometheus.GaugeValue, l.Behind.Seconds(), labels...)
		}
	}
	if m.b.meta != nil {
		ch <- prometheus.MustNewConstMetric(m.topics, prometheus.GaugeValue, float64(len(m.b.meta.State().Topics)))
		f := m.b.currentFence()
		fenced := 0.0
		if f.Fenced {
			fenced = 1
		}
		ch <- prometheus.MustNewConstMetric(m.fenced, prometheus.GaugeValue, fenced)
		ch <- prometheus.MustNewConstMetric(m.fenceEpoch, prometheus.GaugeValue, float64(f.Epoch))
	}
}

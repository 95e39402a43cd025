package wire

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Metrics are the request-path metrics of one broker.
type Metrics struct {
	requests         *prometheus.CounterVec
	requestErrors    *prometheus.CounterVec
	latency          *prometheus.HistogramVec
	connections      prometheus.Gauge
	connectionErrors *prometheus.CounterVec
	bytesIn          prometheus.Counter
	bytesOut         prometheus.Counter
}

// NewMetrics creates the metrics and registers them with reg (nil: not
// registered, still usable).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kdr_broker_requests_total", Help: "Kafka requests handled, by API.",
		}, []string{"api"}),
		requestErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kdr_broker_request_failures_total", Help: "Requests whose handler closed the connection, by API.",
		}, []string{"api"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "kdr_broker_request_duration_seconds",
			Help:    "Time from a request's last byte read to its response being queued, by API.",
			Buckets: prometheus.ExponentialBuckets(0.00005, 2.5, 14),
		}, []string{"api"}),
		connections: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "kdr_broker_connections_active", Help: "Open client connections.",
		}),
		connectionErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kdr_broker_connections_closed_on_error_total", Help: "Connections the broker closed because of bad input, by reason.",
		}, []string{"reason"}),
		bytesIn: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kdr_broker_network_received_bytes_total", Help: "Request bytes read from clients, framing included.",
		}),
		bytesOut: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kdr_broker_network_sent_bytes_total", Help: "Response bytes written to clients, framing included.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.requestErrors, m.latency, m.connections, m.connectionErrors, m.bytesIn, m.bytesOut)
	}
	return m
}

func (m *Metrics) observe(key int16, received time.Time, err error) {
	api := kmsg.NameForKey(key)
	m.requests.WithLabelValues(api).Inc()
	m.latency.WithLabelValues(api).Observe(time.Since(received).Seconds())
	if err != nil {
		m.requestErrors.WithLabelValues(api).Inc()
	}
}

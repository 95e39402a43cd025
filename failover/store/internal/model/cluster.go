package model

// Health statuses, as Consul names them.
const (
	StatusPassing  = "passing"
	StatusWarning  = "warning"
	StatusCritical = "critical"
	StatusUnknown  = "unknown" // the backend does not check health (file store)
)

// ClusterRegistration announces a Kafka cluster to the store's service
// catalog so that its brokers are health-checked.
type ClusterRegistration struct {
	Cluster string            // the cluster's name in the topology
	Region  string            // optional
	Brokers []string          // host:port of every broker
	Meta    map[string]string // optional extra service metadata
}

// Health is a cluster's health as the store's checks see it.
type Health struct {
	Cluster string
	// Status aggregates the brokers: critical if any is critical, else
	// warning if any warns, else passing; unknown when nothing checks the
	// brokers (the file store, or a cluster never registered).
	Status  string
	Brokers []BrokerHealth // in registration order when known
}

// BrokerHealth is one broker's check.
type BrokerHealth struct {
	Address string
	Status  string
	Output  string // the check's last output, e.g. the dial error
}

// Aggregate computes Status from brokers as Health documents it.
func Aggregate(brokers []BrokerHealth) string {
	if len(brokers) == 0 {
		return StatusUnknown
	}
	status := StatusPassing
	for _, b := range brokers {
		switch b.Status {
		case StatusCritical:
			return StatusCritical
		case StatusWarning:
			status = StatusWarning
		case StatusPassing:
		default:
			if status == StatusPassing {
				status = StatusUnknown
			}
		}
	}
	return status
}

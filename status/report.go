package status

import "github.com/kdr-io/kdr/topology"

// Report is the state of one topology. Its JSON form is kdr status
// --output json, a scripting interface: keys are only ever added.
type Report struct {
	Topology string `json:"topology"`
	// Healthy: every cluster reachable with all its expected brokers, a
	// controller and no offline partitions, and every flow running (or
	// idle: nothing to mirror yet).
	Healthy bool `json:"healthy"`
	// ActiveCluster is the cluster producers and consumers should use.
	ActiveCluster string    `json:"active_cluster"`
	Clusters      []Cluster `json:"clusters"`
	Flows         []Flow    `json:"flows"`
}

// Cluster is one cluster.
type Cluster struct {
	Name      string   `json:"name"`
	Region    string   `json:"region"`
	Bootstrap []string `json:"bootstrap"`
	Reachable bool     `json:"reachable"`
	// Brokers are the expected brokers of a local cluster (up or not) plus
	// any other broker Metadata lists; for an existing cluster, those
	// Metadata lists.
	Brokers []Broker `json:"brokers"`
	// BrokersExpected is a local cluster's broker count; for an existing
	// cluster, the brokers Metadata lists (0 when unreachable).
	BrokersExpected int `json:"brokers_expected"`
	// ControllerID is the active controller's node id, -1 if none.
	ControllerID              int32 `json:"controller_id"`
	UnderReplicatedPartitions int   `json:"under_replicated_partitions"`
	OfflinePartitions         int   `json:"offline_partitions"`
	Healthy                   bool  `json:"healthy"`
	// Error says why the cluster is unreachable.
	Error string `json:"error,omitempty"`
}

// BrokersUp counts the brokers that are up.
func (c Cluster) BrokersUp() int {
	n := 0
	for _, b := range c.Brokers {
		if b.Up {
			n++
		}
	}
	return n
}

// Broker is one broker of a cluster.
type Broker struct {
	ID      int32  `json:"id"`
	Addr    string `json:"addr"`
	Up      bool   `json:"up"`
	Leaders int    `json:"leaders"` // partitions it leads
}

// Flow states: the workers' as topology.FlowWorkersState judges them, or
// unknown.
const (
	FlowRunning = topology.FlowRunning
	FlowStopped = topology.FlowStopped
	FlowIdle    = topology.FlowIdle
	FlowUnknown = "unknown" // the source cluster did not answer
)

// Flow is one replication flow.
type Flow struct {
	Name   string `json:"name"` // "east->west"
	Source string `json:"source"`
	Target string `json:"target"`
	State  string `json:"state"`
	// Workers is the member count of the workers' group.
	Workers int `json:"workers"`
	// LagRecords sums, over the mirrored source partitions, the high
	// watermark minus the workers' committed offset (or minus the log
	// start when nothing is committed); -1 when unknown.
	LagRecords int64 `json:"lag_records"`
	// ReplicationLatencyP99Seconds is the workers' replication latency
	// p99 over the last minute (the highest of their
	// kdr_mirror_replication_latency_recent_seconds), when their metrics
	// endpoints are known and they copied something in that minute;
	// workers without that summary give the p99 of their histogram since
	// they started.
	ReplicationLatencyP99Seconds *float64 `json:"replication_latency_p99_seconds,omitempty"`
	Healthy                      bool     `json:"healthy"`
	Error                        string   `json:"error,omitempty"`
}

package up

import (
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/kdr-io/kdr/internal/atomicfile"
)

// EndpointsFile is the name of the endpoints file in a state dir.
const EndpointsFile = "endpoints.json"

// Endpoints is endpoints.json: where a running (or the last) kdr up's
// clusters, metrics endpoints and processes are. kdr status and the
// Prometheus config generator read it. Keys are snake_case and only ever
// added. PIDs are 0 for a process that is not running.
type Endpoints struct {
	Topology string `json:"topology"`
	// File is the topology file ("" for the built-in demo).
	File     string    `json:"file,omitempty"`
	StateDir string    `json:"state_dir"`
	PID      int       `json:"pid"` // kdr up's own
	Started  time.Time `json:"started"`
	// Running is true while kdr up runs; Healthy once everything became
	// healthy (it stays true while children restart).
	Running bool `json:"running"`
	// MetricsURL is kdr up's own /metrics: the failover state and the last
	// drill ("" when it serves none).
	MetricsURL string             `json:"metrics_url,omitempty"`
	Healthy    bool               `json:"healthy"`
	Clusters   []ClusterEndpoints `json:"clusters"`
	Flows      []FlowEndpoints    `json:"flows"`
}

// ClusterEndpoints is one cluster of the topology.
type ClusterEndpoints struct {
	Name      string   `json:"name"`
	Local     bool     `json:"local"`
	Bootstrap []string `json:"bootstrap"`
	// Brokers are a local cluster's brokers (empty for existing ones).
	Brokers []BrokerEndpoints `json:"brokers,omitempty"`
}

// BrokerEndpoints is one local broker.
type BrokerEndpoints struct {
	ID         int    `json:"id"`
	Addr       string `json:"addr"`
	MetricsURL string `json:"metrics_url"`
	PID        int    `json:"pid"`
	DataDir    string `json:"data_dir"`
	Log        string `json:"log"`
}

// FlowEndpoints is one flow and its workers.
type FlowEndpoints struct {
	Name    string            `json:"name"` // "east->west"
	Source  string            `json:"source"`
	Target  string            `json:"target"`
	Group   string            `json:"group"` // the workers' consumer group on the source
	Workers []WorkerEndpoints `json:"workers"`
}

// WorkerEndpoints is one mirror worker process.
type WorkerEndpoints struct {
	InstanceID string `json:"instance_id"`
	MetricsURL string `json:"metrics_url"`
	PID        int    `json:"pid"`
	Log        string `json:"log"`
}

// ReadEndpoints reads an endpoints file.
func ReadEndpoints(path string) (*Endpoints, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var e Endpoints
	if err := json.Unmarshal(b, &e); err != nil {
		return nil, fmt.Errorf("up: %s: %w", path, err)
	}
	return &e, nil
}

// WorkerMetrics maps each flow's name to its workers' metrics URLs.
func (e *Endpoints) WorkerMetrics() map[string][]string {
	out := map[string][]string{}
	for _, f := range e.Flows {
		for _, w := range f.Workers {
			if w.MetricsURL != "" {
				out[f.Name] = append(out[f.Name], w.MetricsURL)
			}
		}
	}
	return out
}

// PIDs are every child's pid (0s omitted).
func (e *Endpoints) PIDs() []int {
	var out []int
	for _, c := range e.Clusters {
		for _, b := range c.Brokers {
			if b.PID > 0 {
				out = append(out, b.PID)
			}
		}
	}
	for _, f := range e.Flows {
		for _, w := range f.Workers {
			if w.PID > 0 {
				out = append(out, w.PID)
			}
		}
	}
	return out
}

func (e *Endpoints) write(path string) error {
	b, err := json.MarshalIndent(e, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(path, append(b, '\n'), 0o644)
}

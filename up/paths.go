package up

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/kdr-io/kdr/topology"
)

// DefaultStateDir is where kdr up keeps the state of topology name:
// $XDG_STATE_HOME/kdr/<name>, or ~/.local/state/kdr/<name>.
func DefaultStateDir(name string) (string, error) {
	if name == "" {
		return "", errors.New("up: the topology has no metadata.name to name its state dir")
	}
	if x := os.Getenv("XDG_STATE_HOME"); x != "" && filepath.IsAbs(x) {
		return filepath.Join(x, "kdr", name), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("up: no state dir (set XDG_STATE_HOME, HOME or --state-dir): %w", err)
	}
	return filepath.Join(home, ".local", "state", "kdr", name), nil
}

// Layout names every path under a state dir, in one place:
//
//	<state>/kdr-up.lock                                 flock held by the running kdr up (its pid inside)
//	<state>/endpoints.json                              Endpoints, rewritten when a child (re)starts
//	<state>/<dataDir or cluster>/broker-<id>/           a local broker's --data-dir
//	<state>/logs/<cluster>-broker-<id>.log              a broker's stdout and stderr
//	<state>/logs/mirror-<source>-<target>-<n>.log       mirror worker n's stdout and stderr
type Layout struct{ Dir string }

// Lock is the lock file.
func (l Layout) Lock() string { return filepath.Join(l.Dir, "kdr-up.lock") }

// Endpoints is endpoints.json.
func (l Layout) Endpoints() string { return filepath.Join(l.Dir, EndpointsFile) }

// Logs is the log directory.
func (l Layout) Logs() string { return filepath.Join(l.Dir, "logs") }

// BrokerData is the data dir of broker nodeID of local cluster c.
func (l Layout) BrokerData(c topology.Cluster, nodeID int) string {
	dir := c.Name
	if c.Local != nil && c.Local.DataDir != "" {
		dir = c.Local.DataDir
	}
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(l.Dir, dir)
	}
	return filepath.Join(dir, fmt.Sprintf("broker-%d", nodeID))
}

// BrokerLog is the log file of broker nodeID of cluster.
func (l Layout) BrokerLog(cluster string, nodeID int) string {
	return filepath.Join(l.Logs(), fmt.Sprintf("%s-broker-%d.log", cluster, nodeID))
}

// WorkerLog is the log file of worker n (0-based) of flow source->target.
func (l Layout) WorkerLog(source, target string, n int) string {
	return filepath.Join(l.Logs(), fmt.Sprintf("mirror-%s-%s-%d.log", source, target, n))
}

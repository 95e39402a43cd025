package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/kdr-io/kdr/failover/store/consulstore"
	"github.com/kdr-io/kdr/failover/store/filestore"
	"github.com/kdr-io/kdr/topology"
)

var (
	_ Store = (*filestore.Store)(nil)
	_ Store = (*consulstore.Store)(nil)
)

// Open returns the store t.Failover.Coordination selects:
//
//   - backend "file" (or empty): filestore at FilePath(t, stateDir);
//   - backend "consul": consulstore at coordination.consul.address (default
//     127.0.0.1:8500) with the token from token or the environment
//     variable tokenEnv, and the key prefix keyPrefix (default
//     "kdr/<topology name>").
//
// Open does not contact Consul; the first call does.
func Open(t *topology.Topology, stateDir string) (Store, error) {
	name := t.Metadata.Name
	if name == "" {
		return nil, errors.New("store: the topology has no metadata.name; the failover state is kept per topology name")
	}
	c := t.Failover.Coordination
	switch c.Backend {
	case "", topology.BackendFile:
		return filestore.New(FilePath(t, stateDir), name)
	case topology.BackendConsul:
		token := c.Consul.Token
		if token == "" && c.Consul.TokenEnv != "" {
			token = os.Getenv(c.Consul.TokenEnv)
			if token == "" {
				return nil, fmt.Errorf("store: failover.coordination.consul.tokenEnv names %s, which is unset or empty", c.Consul.TokenEnv)
			}
		}
		return consulstore.New(consulstore.Config{Topology: name, Address: c.Consul.Address, Token: token, KeyPrefix: c.Consul.KeyPrefix})
	}
	return nil, fmt.Errorf("store: failover.coordination.backend %q is not %q or %q", c.Backend, topology.BackendFile, topology.BackendConsul)
}

// FilePath is the file backend's state file for t: coordination.path if it
// names a .json file, else <dir>/<topology name>.json where dir is
// coordination.path or <stateDir>/failover. A relative path is under
// stateDir, like a local cluster's dataDir.
func FilePath(t *topology.Topology, stateDir string) string {
	p := t.Failover.Coordination.Path
	if p == "" {
		p = "failover"
	}
	if !filepath.IsAbs(p) {
		p = filepath.Join(stateDir, p)
	}
	if strings.EqualFold(filepath.Ext(p), ".json") {
		return p
	}
	return filepath.Join(p, t.Metadata.Name+".json")
}

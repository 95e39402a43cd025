package store_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/kdr-io/kdr/failover/store"
	"github.com/kdr-io/kdr/failover/store/consulstore"
	"github.com/kdr-io/kdr/failover/store/filestore"
	"github.com/kdr-io/kdr/topology"
)

func topo(c topology.Coordination) *topology.Topology {
	return &topology.Topology{Metadata: topology.Metadata{Name: "demo"}, Failover: topology.FailoverPolicy{Coordination: c}}
}

func TestFailoverStoreOpenPicksBackend(t *testing.T) {
	state := t.TempDir()
	abs := filepath.Join(t.TempDir(), "elsewhere")
	for _, tc := range []struct {
		path string
		want string
	}{
		{"", filepath.Join(state, "failover", "demo.json")},
		{"coord", filepath.Join(state, "coord", "demo.json")},
		{abs, filepath.Join(abs, "demo.json")},
		{filepath.Join(abs, "x.json"), filepath.Join(abs, "x.json")},
	} {
		s, err := store.Open(topo(topology.Coordination{Path: tc.path}), state)
		if err != nil {
			t.Fatalf("path %q: %v", tc.path, err)
		}
		fs, ok := s.(*filestore.Store)
		if !ok || fs.Path() != tc.want {
			t.Fatalf("path %q: got %T at %v, want the file store at %s", tc.path, s, fs, tc.want)
		}
	}

	t.Setenv("KDR_TEST_CONSUL_TOKEN", "secret")
	s, err := store.Open(topo(topology.Coordination{Backend: topology.BackendConsul,
		Consul: topology.ConsulConfig{Address: "127.0.0.1:18500", TokenEnv: "KDR_TEST_CONSUL_TOKEN"}}), state)
	if err != nil {
		t.Fatal(err)
	}
	cfg := s.(*consulstore.Store).Config()
	if cfg.Address != "127.0.0.1:18500" || cfg.Token != "secret" || cfg.KeyPrefix != "kdr/demo" || cfg.Timeout != consulstore.DefaultTimeout {
		t.Fatalf("consul config = %+v", cfg)
	}

	for _, tc := range []struct {
		c    topology.Coordination
		want string
	}{
		{topology.Coordination{Backend: "etcd"}, `"etcd"`},
		{topology.Coordination{Backend: topology.BackendConsul, Consul: topology.ConsulConfig{TokenEnv: "KDR_TEST_UNSET_TOKEN"}}, "KDR_TEST_UNSET_TOKEN"},
	} {
		if _, err := store.Open(topo(tc.c), state); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("Open(%+v): %v, want an error naming %s", tc.c, err, tc.want)
		}
	}
	if _, err := store.Open(&topology.Topology{}, state); err == nil {
		t.Fatal("Open of a topology without a name succeeded")
	}
}

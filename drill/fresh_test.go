package drill

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kdr-io/kdr/failover/store"
	"github.com/kdr-io/kdr/internal/kdrtest"
	"github.com/kdr-io/kdr/up"
)

// TestDrillRefusesUsedStateDir: a drill rerun on the state dir of an
// earlier one (whose switchover left west active) is refused at once,
// before kdr up or any load starts, saying to use a fresh state dir; so is
// a state dir kdr up ran in.
func TestDrillRefusesUsedStateDir(t *testing.T) {
	bin := kdrtest.Binary(t)
	s, topo, err := LoadScenario("../scenarios/planned-switchover.yaml", "")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	switched := t.TempDir()
	st, err := store.Open(up.Normalize(topo), switched)
	if err != nil {
		t.Fatal(err)
	}
	_, err = st.CompareAndSwap(ctx, store.State{Topology: topo.Metadata.Name, Active: "west", Epoch: 1}, 0)
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	ranUp := t.TempDir()
	if err := os.WriteFile(filepath.Join(ranUp, up.EndpointsFile), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}

	for dir, want := range map[string]string{
		switched: "west is active at epoch 1",
		ranUp:    "kdr up ran there before",
	} {
		start := time.Now()
		rep, err := Run(ctx, Options{Scenario: s, Topology: topo, TopologyFile: s.TopologyPath(), StateDir: dir, Bin: bin,
			Out: testWriter{t}})
		if rep != nil || err == nil || !strings.Contains(err.Error(), want) ||
			!strings.Contains(err.Error(), "use another --state-dir") || !strings.Contains(err.Error(), "delete "+dir) {
			t.Errorf("drill on %s: report %v, error %v; want no report and an error saying %q and to use a fresh state dir", dir, rep != nil, err, want)
		}
		if _, serr := os.Stat(filepath.Join(dir, "logs", "drill-kdr-up.log")); serr == nil {
			t.Errorf("drill on %s started kdr up (after %s)", dir, time.Since(start).Round(time.Millisecond))
		}
	}
}

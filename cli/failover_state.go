package cli

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"time"

	"github.com/kdr-io/kdr/failover/store"
	"github.com/kdr-io/kdr/topology"
)

// readFailoverState reads t's failover state (the file store under
// stateDir or Consul, per failover.coordination), which kdr up follows to
// choose the flows' directions. With no state yet (no failover ever ran)
// it is the zero state, which failover.CurrentFlows reads as the
// topology's own directions. An error means the store could not be read:
// the caller says what it falls back to.
func readFailoverState(ctx context.Context, t *topology.Topology, stateDir string, timeout time.Duration) (store.State, error) {
	if b := t.Failover.Coordination.Backend; b == "" || b == topology.BackendFile {
		// Opening the file store creates its directory; a command that
		// only reads must leave a fresh estate (or a read-only home) as it
		// found it.
		if _, err := os.Stat(store.FilePath(t, stateDir)); errors.Is(err, fs.ErrNotExist) {
			return store.State{}, nil
		}
	}
	st, err := store.Open(t, stateDir)
	if err != nil {
		return store.State{}, err
	}
	defer st.Close()
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	v, err := st.Get(cctx)
	if err != nil {
		return store.State{}, err
	}
	return v.State, nil
}

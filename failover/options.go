package failover

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/kdr-io/kdr/failover/store"
	"github.com/kdr-io/kdr/topology"
)

// Operation kinds (store.Operation.Kind, StepEvent.Operation).
const (
	KindSwitchover = "switchover"
	KindPromote    = "promote"
	KindFailback   = "failback"

	// DefaultLockWait is Options.LockWait's default: a dead holder's
	// Consul session expires within twice its 15 s TTL, then the lock
	// delay passes; with a margin.
	DefaultLockWait = 45 * time.Second
)

// StepEvent states.
const (
	StepStarted  = "started"
	StepProgress = "progress" // a running step's intermediate report (drain's remaining lag)
	StepDone     = "done"
	StepSkipped  = "skipped"
	StepFailed   = "failed"
	StepAborted  = "aborted" // the timeline's event of an operation kdr failover abort dropped
)

// DefaultOffsetSyncTimeout is Timeouts.OffsetSync's default.
const DefaultOffsetSyncTimeout = 30 * time.Second

// Timeouts bound the steps. Zero fields take the topology's
// failover.timeouts (fence, drain, promote), then the defaults.
type Timeouts struct {
	// Fence bounds fencing the old primary (default 30 s).
	Fence time.Duration
	// Drain bounds waiting for the mirror to copy everything (default 2 m).
	Drain time.Duration
	// Promote bounds waiting for the reverse flow and the promoted
	// cluster (default 30 s).
	Promote time.Duration
	// OffsetSync bounds waiting for consumer groups to leave the old
	// primary before their offsets are translated (default 30 s).
	OffsetSync time.Duration
}

// Options configure every command of the package.
type Options struct {
	// Topology is the estate (validated, defaults applied).
	Topology *topology.Topology
	// StateDir is kdr up's state dir: the file store lives under it.
	StateDir string
	// Store is the coordination store; nil opens
	// store.Open(Topology, StateDir) (and closes it when done).
	Store  store.Store
	Logger *slog.Logger // nil: discard
	// Progress receives live progress; nil ignores it. It is called from
	// the command's goroutine.
	Progress func(StepEvent)
	// DryRun returns the plan without doing anything.
	DryRun bool
	// Holder names this orchestrator in the lock (default hostname:pid).
	Holder string
	// LockWait is how long a command waits while another orchestrator
	// holds the lock (default DefaultLockWait). It covers an orchestrator
	// that died holding a Consul session lock: Consul frees it once the
	// session expires (within twice its 15 s TTL) and the lock delay has
	// passed, so a rerun right after a crash waits instead of failing.
	// Negative: try once.
	LockWait time.Duration
	Timeouts
}

// StepEvent is one step's progress.
type StepEvent struct {
	Operation string    `json:"operation"` // KindSwitchover, KindPromote or KindFailback
	Step      string    `json:"step"`
	Index     int       `json:"index"` // 0-based
	Total     int       `json:"total"`
	State     string    `json:"state"` // started, progress, done, skipped or failed
	Message   string    `json:"message,omitempty"`
	At        time.Time `json:"at"`
}

// Result is what an operation did.
type Result struct {
	ID       string      `json:"id"`
	Kind     string      `json:"kind"`
	From     string      `json:"from"`
	To       string      `json:"to"`
	Epoch    int64       `json:"epoch"`
	Steps    []StepEvent `json:"steps"`
	Started  time.Time   `json:"started"`
	Finished time.Time   `json:"finished"`
	// LastReceived (promote): per source topic and partition, the offset
	// up to which the standby's copy reaches (the upstream offset it
	// covers). When the old primary was unreachable it is the standby's
	// own end offset of the remote partition; failback resolves the
	// upstream offset from the records once the old primary is back.
	LastReceived map[string]map[int32]int64 `json:"last_received,omitempty"`
	// Diverged (failback): the old primary's acknowledged records that
	// never reached the standby, now preserved in "<old primary>.diverged".
	Diverged []DivergedRecord `json:"diverged,omitempty"`
	// DryRun is set when only the plan was made; Steps then lists the
	// plan as skipped events.
	DryRun bool `json:"dry_run,omitempty"`
	// Dropped is set when the first step (a preflight) failed: nothing
	// was changed and the operation is no longer in progress.
	Dropped bool `json:"dropped,omitempty"`
}

// DivergedRecord is one record of the old primary that the standby never
// received.
type DivergedRecord struct {
	Topic     string    `json:"topic"`
	Partition int32     `json:"partition"`
	Offset    int64     `json:"offset"`
	Key       []byte    `json:"key"`
	Value     []byte    `json:"value"`
	Timestamp time.Time `json:"timestamp"`
}

// Status is the failover state of a topology.
type Status struct {
	Topology string `json:"topology"`
	// Primary and Standby are the active-passive pattern's clusters.
	Primary string `json:"primary"`
	Standby string `json:"standby"`
	Active  string `json:"active"`
	Epoch   int64  `json:"epoch"`
	// Fenced are the clusters that must stay fenced.
	Fenced          []string `json:"fenced"`
	ConsumerOffsets string   `json:"consumer_offsets"`
	// Operation is the operation in progress, nil when idle.
	Operation *OperationStatus `json:"operation,omitempty"`
	History   []store.Event    `json:"history"`
	// LastDrill is the last drill's report (opaque JSON), if any.
	LastDrill json.RawMessage `json:"last_drill,omitempty"`
	// Version is the state document's version (0: no document yet).
	Version uint64 `json:"version"`
}

// OperationStatus is an operation in progress.
type OperationStatus struct {
	ID        string    `json:"id"`
	Kind      string    `json:"kind"`
	From      string    `json:"from"`
	To        string    `json:"to"`
	Step      string    `json:"step"`
	StepIndex int       `json:"step_index"`
	Total     int       `json:"total"`
	Started   time.Time `json:"started"`
	// Resume is the command that resumes it.
	Resume string `json:"resume"`
}

// withDefaults fills in the defaults of o.
func (o Options) withDefaults() (Options, error) {
	if o.Topology == nil {
		return o, fmt.Errorf("failover: no topology")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Progress == nil {
		o.Progress = func(StepEvent) {}
	}
	if o.Holder == "" {
		host, _ := os.Hostname()
		o.Holder = fmt.Sprintf("%s:%d", host, os.Getpid())
	}
	t := o.Topology.Failover.Timeouts
	pick := func(d *time.Duration, topo, def time.Duration) {
		if *d <= 0 {
			*d = topo
		}
		if *d <= 0 {
			*d = def
		}
	}
	pick(&o.Fence, t.Fence, topology.DefaultFenceTimeout)
	pick(&o.Drain, t.Drain, topology.DefaultDrainTimeout)
	pick(&o.Promote, t.Promote, topology.DefaultPromoteTimeout)
	pick(&o.OffsetSync, 0, DefaultOffsetSyncTimeout)
	return o, nil
}

// openStore returns o.Store, or opens the topology's, with the function
// that closes what was opened.
func (o Options) openStore() (store.Store, func(), error) {
	if o.Store != nil {
		return o.Store, func() {}, nil
	}
	s, err := store.Open(o.Topology, o.StateDir)
	if err != nil {
		return nil, nil, err
	}
	return s, func() { s.Close() }, nil
}

// policy returns the topology's lag bounds with their defaults.
func (o Options) maxLag() (int64, time.Duration) {
	f := o.Topology.Failover
	n, d := f.MaxLagRecords, f.MaxLag
	if n <= 0 {
		n = topology.DefaultMaxLagRecords
	}
	if d <= 0 {
		d = topology.DefaultMaxLag
	}
	return n, d
}

package failover

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/kdr-io/kdr/failover/store"
)

// Sentinel errors; test with errors.Is.
var (
	// ErrInProgress: another operation is in progress (an
	// *InProgressError says which and how to resume it).
	ErrInProgress = errors.New("failover: another operation is in progress")
	// ErrLockLost: the store lock was lost while the operation ran.
	ErrLockLost = errors.New("failover: the coordination lock was lost")
	// ErrStepFailed is wrapped by every *StepError.
	ErrStepFailed = errors.New("failover: step failed")
)

// EnvCrashAfter is the testing aid that makes the process exit(3) right
// after it persisted the named step (see the package doc).
const EnvCrashAfter = "KDR_FAILOVER_CRASH_AFTER"

// InProgressError refuses a command while another operation is in
// progress.
type InProgressError struct {
	Operation store.Operation
	Total     int // the steps of Operation's kind
}

// inProgress is the refusal of a command while op is in progress.
func inProgress(op store.Operation) *InProgressError {
	return &InProgressError{Operation: op, Total: len(stepsFor(op.Kind))}
}

// Refuses returns the *InProgressError that refuses kind to to while
// another operation is in progress, nil if it would run or resume.
func (s *Status) Refuses(kind, to string) error {
	op := s.Operation
	if op == nil || (op.Kind == kind && op.To == to) {
		return nil
	}
	return inProgress(store.Operation{ID: op.ID, Kind: op.Kind, From: op.From, To: op.To, Step: op.Step, StepIndex: op.StepIndex, Started: op.Started})
}

func (e *InProgressError) Error() string {
	op := e.Operation
	drop := ""
	if abortable(op) {
		drop = " or drop it with `kdr failover abort` (it has changed nothing an abort cannot undo)"
	}
	return fmt.Sprintf("failover: %s %s (%s -> %s) is in progress at step %s (%d/%d); resume it with `%s`%s, then run this command again",
		op.Kind, op.ID, op.From, op.To, op.Step, op.StepIndex+1, e.Total, resumeCommand(op.Kind, op.To), drop)
}

// Is makes errors.Is(err, ErrInProgress) hold.
func (e *InProgressError) Is(target error) bool { return target == ErrInProgress }

// StepError is a failed step. The operation stays in progress in the
// state document, and rerunning the same command resumes it at this step,
// unless Dropped: a failed first step (a preflight) has changed nothing,
// so the operation is dropped rather than left to block every other
// command.
type StepError struct {
	Kind, Step, To string
	Err            error
	Dropped        bool
	// Abortable says kdr failover abort can drop the operation left in
	// progress (abortable), so the message only points there then.
	Abortable bool
}

func (e *StepError) Error() string {
	if e.Dropped {
		return fmt.Sprintf("%s step %q failed: %v; nothing was changed and no operation is left in progress: run `%s` again once this is fixed",
			e.Kind, e.Step, e.Err, resumeCommand(e.Kind, e.To))
	}
	msg := fmt.Sprintf("%s step %q failed: %v; the operation stays in progress: rerun `%s` to resume it from this step",
		e.Kind, e.Step, e.Err, resumeCommand(e.Kind, e.To))
	if e.Abortable {
		msg += ", or drop it with `kdr failover abort`"
	}
	return msg
}

// Unwrap gives the cause.
func (e *StepError) Unwrap() []error { return []error{ErrStepFailed, e.Err} }

// resumeCommand is the CLI command that runs (or resumes) kind to to.
func resumeCommand(kind, to string) string {
	cmd := "kdr failover " + kind + " --to " + to
	if kind == KindPromote {
		cmd += " --force"
	}
	return cmd
}

// stepOut is what a step reports: a message for the timeline, whether it
// was skipped, and the state changes to persist with its completion.
type stepOut struct {
	msg     string
	skipped bool
	apply   func(*store.State)
}

type step struct {
	name string
	run  func(o *opRun, ctx context.Context) (stepOut, error) // method expressions: (*opRun).fence
}

// opRun is one running operation.
type opRun struct {
	opts  Options
	st    store.Store
	cl    *clusters
	pat   Pattern
	log   *slog.Logger
	kind  string
	id    string
	from  string
	to    string
	steps []step

	state   store.State // as last persisted
	version uint64
	data    map[string]json.RawMessage // Operation.Data, persisted with every step
	res     *Result
}

func newID(kind string) string {
	var b [3]byte
	rand.Read(b[:])
	return kind[:2] + "-" + time.Now().UTC().Format("20060102T150405") + "-" + hex.EncodeToString(b[:])
}

// execute takes the lock, starts or resumes kind to to, and runs its steps.
func execute(ctx context.Context, opts Options, kind, to string) (*Result, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	st, closeStore, err := opts.openStore()
	if err != nil {
		return nil, err
	}
	defer closeStore()
	res := &Result{Kind: kind, To: to, Started: time.Now().UTC()}

	if opts.DryRun {
		return dryRun(ctx, opts, st, kind, to, res)
	}

	ctx, unlock, err := takeLock(ctx, opts, st)
	if err != nil {
		return nil, err
	}
	defer unlock()

	cl := newClusters(opts.Topology)
	defer cl.close()

	v, err := st.Get(ctx)
	if err != nil {
		return nil, fmt.Errorf("failover: reading the state: %w", err)
	}
	// A returning old primary is fenced before anything else.
	ensureFenced(ctx, opts, v.State, cl)

	o := &opRun{opts: opts, st: st, cl: cl, log: opts.Logger, kind: kind, to: to, res: res,
		state: v.State, version: v.Version}
	if v.Version == 0 {
		o.state = store.State{Topology: opts.Topology.Metadata.Name}
	}
	if op := o.state.Operation; op != nil {
		if op.Kind != kind || op.To != to {
			return nil, inProgress(*op)
		}
		if o.pat, err = ActivePassive(opts.Topology, op.From, op.To); err != nil {
			return nil, err
		}
		o.id, o.from, o.data = op.ID, op.From, op.Data
		o.steps = stepsFor(kind)
		if o.data == nil {
			o.data = map[string]json.RawMessage{}
		}
		o.log.Info("resuming failover operation", "kind", kind, "id", o.id, "step", op.Step)
		return o.runFrom(ctx, op.StepIndex)
	}
	if o.pat, err = patternFor(opts.Topology, o.state, to); err != nil {
		return nil, err
	}
	o.from = ActiveOf(o.pat, o.state)
	if o.state.Active == "" {
		o.state.Active = o.from
	}
	if err := validateStart(kind, o.pat, o.state, o.from, to); err != nil {
		return nil, err
	}
	o.id, o.steps, o.data = newID(kind), stepsFor(kind), map[string]json.RawMessage{}
	now := time.Now().UTC()
	next := o.state
	next.Operation = &store.Operation{ID: o.id, Kind: kind, From: o.from, To: to, Step: o.steps[0].name, StepIndex: 0, Started: now}
	next.Record(store.Event{At: now, Kind: kind, Step: "started", Epoch: next.Epoch,
		Message: fmt.Sprintf("%s %s: %s -> %s by %s", kind, o.id, o.from, to, opts.Holder)})
	ver, err := st.CompareAndSwap(ctx, next, o.version)
	if err != nil {
		return nil, fmt.Errorf("failover: recording the start of the %s: %w", kind, err)
	}
	o.state, o.version = next, ver
	return o.runFrom(ctx, 0)
}

// takeLock takes the store's lock for the rest of a command. The context
// it returns ends with ErrLockLost as its cause if the lock is lost; the
// function releases the lock.
func takeLock(ctx context.Context, opts Options, st store.Store) (context.Context, func(), error) {
	wait := opts.LockWait
	switch {
	case wait == 0:
		wait = DefaultLockWait
	case wait < 0:
		wait = 0
	}
	lock, err := store.AcquireLock(ctx, st, opts.Holder, store.LockOptions{Wait: wait})
	if err != nil {
		if errors.Is(err, store.ErrLocked) {
			return nil, nil, fmt.Errorf("failover: another orchestrator holds the lock, try again when it is done: %w", err)
		}
		return nil, nil, fmt.Errorf("failover: taking the coordination lock: %w", err)
	}
	lctx, cancel := context.WithCancelCause(ctx)
	go func() {
		select {
		case <-lock.Lost():
			cancel(ErrLockLost)
		case <-lctx.Done():
		}
	}()
	return lctx, func() {
		cancel(nil)
		rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer rcancel()
		lock.Release(rctx)
	}, nil
}

// validateStart refuses operations that make no sense from the state.
func validateStart(kind string, p Pattern, st store.State, from, to string) error {
	if from == to {
		return fmt.Errorf("failover: %s is already the active cluster (epoch %d); nothing to %s", to, st.Epoch, kind)
	}
	if kind == KindFailback {
		lr, err := decodeLastReceived(st.LastReceived)
		if err != nil {
			return err
		}
		if lr == nil || lr.From != to || lr.To != from {
			return fmt.Errorf("failover: failback --to %s needs a forced promotion away from %s (kdr failover promote --force) on record; "+
				"none is, so %s holds nothing that diverged: use `kdr failover switchover --to %s`", to, to, to, to)
		}
		if p.Spec.Flow.Naming != "identity" {
			return errFailbackNaming
		}
	}
	return nil
}

// errFailbackNaming explains why failback needs identity naming.
var errFailbackNaming = errors.New("failover: failback supports identity naming only: it copies the active cluster's topics " +
	"back into the old primary's topics of the same names and offsets, which under prefix naming are different topics " +
	"(orders vs west.orders) with their own consumers; resync such a cluster by hand and use switchover")

// dryRun validates kind to to against the current state and returns the
// plan as skipped steps.
func dryRun(ctx context.Context, opts Options, st store.Store, kind, to string, res *Result) (*Result, error) {
	v, err := st.Get(ctx)
	if err != nil {
		return nil, fmt.Errorf("failover: reading the state: %w", err)
	}
	steps := stepsFor(kind)
	res.DryRun = true
	if op := v.State.Operation; op != nil {
		if op.Kind != kind || op.To != to {
			return nil, inProgress(*op)
		}
		res.ID, res.From = op.ID, op.From
		for i, s := range steps {
			state, msg := StepSkipped, "dry run"
			if i < op.StepIndex {
				msg = "already done"
			}
			res.Steps = append(res.Steps, StepEvent{Operation: kind, Step: s.name, Index: i, Total: len(steps), State: state, Message: msg, At: time.Now().UTC()})
		}
		return res, nil
	}
	p, err := patternFor(opts.Topology, v.State, to)
	if err != nil {
		return nil, err
	}
	res.From = ActiveOf(p, v.State)
	if err := validateStart(kind, p, v.State, res.From, to); err != nil {
		return nil, err
	}
	for i, s := range steps {
		res.Steps = append(res.Steps, StepEvent{Operation: kind, Step: s.name, Index: i, Total: len(steps), State: StepSkipped, Message: "dry run", At: time.Now().UTC()})
	}
	res.Epoch = v.State.Epoch
	res.Finished = time.Now().UTC()
	return res, nil
}

// Transient failures of a step are retried this long before the step
// fails: a cluster that has just come back loads its group coordinator,
// a topic just created takes a moment to reach every broker's metadata.
const (
	transientRetryFor   = 30 * time.Second
	transientRetryEvery = 500 * time.Millisecond
)

// runStep runs step s, again while it fails with an error Kafka calls
// retriable (kerr), for up to transientRetryFor: every step is idempotent,
// since a resumed operation reruns the step it stopped in anyway.
func (o *opRun) runStep(ctx context.Context, i int, s step) (stepOut, error) {
	deadline := time.Now().Add(transientRetryFor)
	for {
		out, err := s.run(o, ctx)
		if err == nil || !kerr.IsRetriable(err) || time.Now().After(deadline) || ctx.Err() != nil {
			return out, err
		}
		o.emit(i, StepProgress, fmt.Sprintf("retrying after a transient error: %v", err))
		select {
		case <-ctx.Done():
			return out, err
		case <-time.After(transientRetryEvery):
		}
	}
}

// runFrom runs the steps from index i.
func (o *opRun) runFrom(ctx context.Context, i int) (*Result, error) {
	o.res.ID, o.res.From = o.id, o.from
	for ; i < len(o.steps); i++ {
		s := o.steps[i]
		o.emit(i, StepStarted, "")
		out, err := o.runStep(ctx, i, s)
		if err == nil && ctx.Err() != nil {
			err = context.Cause(ctx)
		}
		if err != nil {
			if cause := context.Cause(ctx); errors.Is(cause, ErrLockLost) {
				err = fmt.Errorf("%w (%v)", ErrLockLost, err)
			}
			o.emit(i, StepFailed, err.Error())
			// The first step is a preflight and changes nothing: drop
			// the operation, so that it does not block every other
			// command. Not when the lock was lost: another orchestrator
			// may be running this operation by now.
			dropped := i == 0 && !errors.Is(err, ErrLockLost) && o.drop(ctx, s.name, err)
			if !dropped {
				o.recordFailure(ctx, s.name, err)
			}
			o.res.Finished = time.Now().UTC()
			o.res.Epoch = o.state.Epoch
			o.res.Dropped = dropped
			return o.res, &StepError{Kind: o.kind, Step: s.name, To: o.to, Err: err, Dropped: dropped,
				Abortable: abortable(store.Operation{Kind: o.kind, StepIndex: i})}
		}
		next := "done"
		if i+1 < len(o.steps) {
			next = o.steps[i+1].name
		}
		err = o.persist(ctx, func(st *store.State) {
			if out.apply != nil {
				out.apply(st)
			}
			if st.Operation != nil {
				st.Operation.StepIndex, st.Operation.Step, st.Operation.Data = i+1, next, o.data
			}
			st.Record(store.Event{At: time.Now().UTC(), Kind: o.kind, Step: s.name, Message: out.msg, Epoch: st.Epoch})
		})
		if err != nil {
			o.emit(i, StepFailed, err.Error())
			o.res.Finished = time.Now().UTC()
			return o.res, &StepError{Kind: o.kind, Step: s.name, To: o.to, Err: fmt.Errorf("persisting the step: %w", err),
				Abortable: abortable(store.Operation{Kind: o.kind, StepIndex: i})}
		}
		state := StepDone
		if out.skipped {
			state = StepSkipped
		}
		o.emit(i, state, out.msg)
		if os.Getenv(EnvCrashAfter) == s.name {
			o.log.Warn("exiting after the step as " + EnvCrashAfter + " asks (testing aid)")
			os.Exit(3)
		}
	}
	o.res.Finished = time.Now().UTC()
	o.res.Epoch = o.state.Epoch
	if lr, _ := decodeLastReceived(o.state.LastReceived); lr != nil && o.kind == KindPromote {
		o.res.LastReceived = lr.flat()
	}
	if o.kind == KindFailback && o.res.Diverged == nil {
		if err := o.fillDiverged(ctx); err != nil {
			o.log.Warn("could not read back the preserved diverged records", "err", err)
		}
	}
	return o.res, nil
}

// emit reports progress.
func (o *opRun) emit(i int, state, msg string) {
	name := o.steps[i].name
	e := StepEvent{Operation: o.kind, Step: name, Index: i, Total: len(o.steps), State: state, Message: msg, At: time.Now().UTC()}
	if state != StepProgress && state != StepStarted {
		o.res.Steps = append(o.res.Steps, e)
	}
	o.opts.Progress(e)
	o.log.Debug("failover step", "kind", o.kind, "step", name, "state", state, "message", msg)
}

// progress reports a running step's intermediate state.
func (o *opRun) progress(step, msg string) {
	for i, s := range o.steps {
		if s.name == step {
			o.emit(i, StepProgress, msg)
			return
		}
	}
}

// persist applies change to the newest state document and writes it with
// compare-and-swap, retrying on conflicts with other writers (a drill
// recording its report). It stops if the document no longer holds this
// operation.
func (o *opRun) persist(ctx context.Context, change func(*store.State)) error {
	st, ver := cloneState(o.state), o.version
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			v, err := o.st.Get(ctx)
			if err != nil {
				return err
			}
			st, ver = v.State, v.Version
		}
		if st.Operation == nil || st.Operation.ID != o.id {
			return fmt.Errorf("the state document no longer holds operation %s (changed by someone else); stopping", o.id)
		}
		change(&st)
		nv, err := o.st.CompareAndSwap(ctx, st, ver)
		if errors.Is(err, store.ErrConflict) && attempt < 10 {
			continue
		}
		if err != nil {
			return err
		}
		o.state, o.version = st, nv
		return nil
	}
}

// recordFailure notes a failed step in the timeline (best effort).
func (o *opRun) recordFailure(ctx context.Context, name string, stepErr error) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := o.persist(rctx, func(st *store.State) {
		st.Record(store.Event{At: time.Now().UTC(), Kind: o.kind, Step: "failed", Epoch: st.Epoch,
			Message: fmt.Sprintf("%s: %v", name, stepErr)})
	}); err != nil {
		o.log.Warn("could not record the failed step in the state", "step", name, "err", err)
	}
}

// drop removes the operation from the state after its first step failed,
// noting why in the timeline, and reports whether it did.
func (o *opRun) drop(ctx context.Context, name string, stepErr error) bool {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := o.persist(rctx, func(st *store.State) {
		st.Operation = nil
		st.Record(store.Event{At: time.Now().UTC(), Kind: o.kind, Step: "failed", Epoch: st.Epoch,
			Message: fmt.Sprintf("%s: %v; nothing was changed, the operation is dropped", name, stepErr)})
	}); err != nil {
		o.log.Warn("could not drop the operation whose preflight failed; it stays in progress", "step", name, "err", err)
		return false
	}
	return true
}

// setData stores v under key in the operation's data (persisted with the
// step).
func (o *opRun) setData(key string, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("failover: encoding operation data %s: %v", key, err))
	}
	o.data[key] = b
}

// getData decodes key of the operation's data into v; it reports whether
// the key was there.
func (o *opRun) getData(key string, v any) (bool, error) {
	b, ok := o.data[key]
	if !ok {
		return false, nil
	}
	if err := json.Unmarshal(b, v); err != nil {
		return true, fmt.Errorf("operation data %s: %w", key, err)
	}
	return true, nil
}

// cloneState deep-copies s.
func cloneState(s store.State) store.State {
	b, err := json.Marshal(s)
	if err != nil {
		panic(fmt.Sprintf("failover: encoding the state: %v", err))
	}
	var out store.State
	if err := json.Unmarshal(b, &out); err != nil {
		panic(fmt.Sprintf("failover: decoding the state: %v", err))
	}
	return out
}

// withTimeout runs fn under a deadline and names the step's timeout when
// it is exceeded.
func withTimeout(ctx context.Context, d time.Duration, what string, fn func(context.Context) error) error {
	tctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	err := fn(tctx)
	if err != nil && ctx.Err() == nil && tctx.Err() != nil {
		return fmt.Errorf("%s: timed out after %s: %w", what, d, err)
	}
	return err
}

// poll calls cond every interval until it returns true or an error, or ctx
// ends (then it returns the last reason with ctx's error).
func poll(ctx context.Context, interval time.Duration, cond func() (bool, string, error)) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		ok, reason, err := cond()
		if err != nil || ok {
			return err
		}
		select {
		case <-ctx.Done():
			if reason == "" {
				return ctx.Err()
			}
			return fmt.Errorf("%s: %w", reason, ctx.Err())
		case <-t.C:
		}
	}
}

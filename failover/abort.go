package failover

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/kdr-io/kdr/failover/store"
)

// ErrNotAbortable is wrapped when the operation in progress is past the
// point an abort can undo.
var ErrNotAbortable = errors.New("failover: the operation in progress cannot be aborted")

// dataPreviousLastReceived is the Operation.Data key of the
// State.LastReceived a forced promotion replaced, for an abort to put
// back.
const dataPreviousLastReceived = "previous_last_received"

// Aborted is what Abort did.
type Aborted struct {
	// Operation is the operation dropped; nil when none was in progress.
	Operation *OperationStatus `json:"operation,omitempty"`
	// Undone lists what was put back, in order.
	Undone []string `json:"undone"`
	// Active is the active cluster afterwards (unchanged by the abort).
	Active string `json:"active"`
}

// abortLimit is the name of the last step at which an operation of kind
// can still be aborted (Operation.Step, the step it runs next or failed
// in): up to and including it, everything the operation did is undone by
// re-fencing and unfencing the pattern's clusters as the state says.
// Beyond it a switchover or promote has made the standby active, and a
// failback has begun deleting the old primary's topics to re-copy them.
func abortLimit(kind string) string {
	switch kind {
	case KindFailback:
		return "preserve"
	default:
		return "promote"
	}
}

// stepIndexOf is the index of step name in steps, -1 if absent.
func stepIndexOf(steps []step, name string) int {
	for i, s := range steps {
		if s.name == name {
			return i
		}
	}
	return -1
}

// abortable reports whether op can be aborted at its step.
func abortable(op store.Operation) bool {
	return op.StepIndex <= stepIndexOf(stepsFor(op.Kind), abortLimit(op.Kind))
}

// Abort drops the operation in progress if it has not changed anything
// irreversible yet, undoing what it did: a switchover that fenced the
// active cluster unfences it, an operation that reached its promote step
// (which unfences the standby first) fences the standby again, a forced
// promotion's record of what the standby received is put back as it was.
// The state's active cluster and epoch are left as they are: the next
// operation takes an epoch above the fences' (fixEpoch). A switchover or
// promote past its promotion, or a failback past preserve, is refused
// with an error wrapping ErrNotAbortable that says how far it got and
// what resuming it does. It takes the lock as every command does.
func Abort(ctx context.Context, opts Options) (*Aborted, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	st, closeStore, err := opts.openStore()
	if err != nil {
		return nil, err
	}
	defer closeStore()
	ctx, unlock, err := takeLock(ctx, opts, st)
	if err != nil {
		return nil, err
	}
	defer unlock()
	v, err := st.Get(ctx)
	if err != nil {
		return nil, fmt.Errorf("failover: reading the state: %w", err)
	}
	op := v.State.Operation
	if op == nil {
		res := &Aborted{Undone: []string{}, Active: v.State.Active}
		if p, err := ActivePassive(opts.Topology, v.State.Active, ""); err == nil {
			res.Active = ActiveOf(p, v.State)
		}
		return res, nil
	}
	steps := stepsFor(op.Kind)
	if !abortable(*op) {
		return nil, notAbortable(*op, v.State, steps)
	}
	cl := newClusters(opts.Topology)
	defer cl.close()
	o := &opRun{opts: opts, st: st, cl: cl, log: opts.Logger, kind: op.Kind, id: op.ID, from: op.From, to: op.To,
		steps: steps, state: v.State, version: v.Version, data: op.Data, res: &Result{}}
	if o.data == nil {
		o.data = map[string]json.RawMessage{}
	}
	undone, err := o.undo(ctx, op.StepIndex)
	if err != nil {
		return nil, fmt.Errorf("failover: aborting %s %s: %w; the operation stays in progress: fix that and run `kdr failover abort` again, or resume it with `%s`",
			op.Kind, op.ID, err, resumeCommand(op.Kind, op.To))
	}
	var previous json.RawMessage
	restore, err := o.getData(dataPreviousLastReceived, &previous)
	if err != nil {
		return nil, err
	}
	if restore {
		if string(previous) == "null" {
			previous = nil
		}
		undone = append(undone, "the record of what the standby had received at the last forced promotion is put back")
	}
	msg := fmt.Sprintf("%s %s (%s -> %s) aborted at step %s (%d/%d)", op.Kind, op.ID, op.From, op.To, op.Step, op.StepIndex+1, len(steps))
	if len(undone) > 0 {
		msg += ": " + strings.Join(undone, "; ")
	}
	err = o.persist(ctx, func(s *store.State) {
		if restore {
			s.LastReceived = previous
		}
		s.Operation = nil
		s.Record(store.Event{At: time.Now().UTC(), Kind: op.Kind, Step: StepAborted, Epoch: s.Epoch, Message: msg + " by " + opts.Holder})
	})
	if err != nil {
		return nil, fmt.Errorf("failover: recording the abort of %s %s: %w", op.Kind, op.ID, err)
	}
	return &Aborted{Operation: operationStatus(*op), Undone: undone, Active: op.From}, nil
}

// undo puts the pattern's fences back as the state says (op.From active,
// op.To fenced) for an operation that stopped at step index next: the
// standby first, so that at no moment both clusters take writes.
func (o *opRun) undo(ctx context.Context, next int) ([]string, error) {
	var undone []string
	epoch := o.epoch()
	if promote := stepIndexOf(o.steps, "promote"); promote >= 0 && next >= promote {
		// The promote step unfences the standby before the state names
		// it active: it may have done so.
		did, err := o.setFenceForAbort(ctx, o.to, true, epoch)
		if err != nil {
			return nil, fmt.Errorf("fencing %s again: %w", o.to, err)
		}
		if did {
			undone = append(undone, fmt.Sprintf("%s fenced again at epoch %d", o.to, epoch))
		}
	}
	skipped, _ := o.getData("fence_skipped", new(bool))
	if fence := stepIndexOf(o.steps, "fence"); fence >= 0 && next >= fence && !skipped {
		did, err := o.setFenceForAbort(ctx, o.from, false, epoch)
		if err != nil {
			return nil, fmt.Errorf("unfencing %s: %w", o.from, err)
		}
		if did {
			undone = append(undone, fmt.Sprintf("%s unfenced at epoch %d: clients can produce there again", o.from, epoch))
		}
	}
	if o.kind == KindFailback && next == stepIndexOf(o.steps, "preserve") {
		undone = append(undone, fmt.Sprintf("diverged records already copied to %s on %s stay there (a later failback does not copy them twice)",
			DivergedTopic(o.to), o.from))
	}
	return undone, nil
}

// setFenceForAbort sets cluster c's fence to fenced at epoch and reports
// whether that changed it. A cluster without kdr's fence has nothing to
// undo.
func (o *opRun) setFenceForAbort(ctx context.Context, c string, fenced bool, epoch int64) (bool, error) {
	adm, err := o.cl.admin(c)
	if err != nil {
		return false, err
	}
	var did bool
	err = withTimeout(ctx, o.opts.Fence, "setting the fence of "+c, func(ctx context.Context) error {
		cur, err := readFence(ctx, adm)
		if err != nil {
			return err
		}
		if !cur.Supported || cur.Fenced == fenced {
			return nil
		}
		did = true
		return setFenceRetrying(ctx, adm, fenced, epoch, fmt.Sprintf("abort of %s %s: %s stays active", o.kind, o.id, o.from))
	})
	return did, err
}

// notAbortable says how far op got, why an abort cannot undo it, and what
// resuming it does.
func notAbortable(op store.Operation, s store.State, steps []step) error {
	var left []string
	for _, st := range steps[min(op.StepIndex, len(steps)):] {
		left = append(left, st.name)
	}
	var done, back string
	switch {
	case op.Kind == KindFailback && op.StepIndex <= stepIndexOf(steps, "switchover:promote"):
		done = fmt.Sprintf("it has begun %s: %s's mirrored topics are being deleted and re-copied from %s", StepResync, op.To, op.From)
	default:
		done = fmt.Sprintf("it has promoted %s (active at epoch %d, %s fenced)", s.Active, s.Epoch, op.From)
		back = fmt.Sprintf("; to make %s active again afterwards, run `kdr failover switchover --to %s`", op.From, op.From)
		if op.Kind == KindPromote {
			back = fmt.Sprintf("; to return to %s once it is back, run `kdr failover failback --to %s`", op.From, op.From)
		}
	}
	return fmt.Errorf("%w: %s %s (%s -> %s) is at step %s (%d/%d) and %s, which an abort cannot undo. Resume it with `%s`: it runs %s%s",
		ErrNotAbortable, op.Kind, op.ID, op.From, op.To, op.Step, op.StepIndex+1, len(steps), done,
		resumeCommand(op.Kind, op.To), strings.Join(left, ", "), back)
}

// operationStatus is op as GetStatus reports it.
func operationStatus(op store.Operation) *OperationStatus {
	return &OperationStatus{ID: op.ID, Kind: op.Kind, From: op.From, To: op.To, Step: op.Step,
		StepIndex: op.StepIndex, Total: len(stepsFor(op.Kind)), Started: op.Started, Resume: resumeCommand(op.Kind, op.To)}
}

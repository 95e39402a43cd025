package mirror

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// A worker's partitions are its group's, and the group lives on the source.
// When the source is unreachable for about the session timeout, its group
// coordinator may drop the worker: the partitions then go to their next
// owner, which copies from the last commit. A worker copying in the moment
// between the source coming back and franz-go's next heartbeat telling it
// so would copy what the next owner (often the same worker, rejoined)
// copies again: every record appended during the outage, twice on the
// target. So after such an outage the worker copies nothing until the
// coordinator says it still is the member it was, or a rebalance gives it
// its partitions afresh.

// membershipDoubt is how long fetches from the source must have failed for
// the worker to doubt its membership: half the session timeout, as the
// coordinator counts from the last heartbeat it had, which may be older
// than the first fetch that failed.
func (w *Worker) membershipDoubt() time.Duration { return w.flow.SessionTimeout / 2 }

// doubtMembership stops copying and asks the coordinator. Called with mu
// held, when a fetch works again after failing for membershipDoubt.
func (w *Worker) doubtMembership(ctx context.Context, outage time.Duration) {
	if w.unsure {
		return
	}
	w.unsure = true
	w.doubts++
	w.log.Warn("the source was unreachable long enough for its group coordinator to drop this worker: copying waits until the group confirms its partitions",
		"outage", outage.Round(time.Millisecond), "session_timeout", w.flow.SessionTimeout)
	go w.confirmMembership(ctx)
}

// trustMembership lets copying go on: the coordinator confirmed the member,
// or a rebalance settled who owns what.
func (w *Worker) trustMembership(why string) {
	w.mu.Lock()
	was := w.unsure
	w.unsure = false
	w.mu.Unlock()
	if !was {
		return
	}
	w.log.Info("group membership confirmed: copying goes on", "by", why)
	select {
	case w.fetched <- struct{}{}: // wakes the copy loop
	default:
	}
}

// confirmMembership sends heartbeats of the worker's own, as the member and
// generation franz-go holds, until the coordinator knows the member or a
// rebalance ended the doubt. A member the coordinator dropped is one
// franz-go learns of at its own next heartbeat: it gives the partitions up
// (onLost) and rejoins, and the callbacks end the doubt; a rebalance in
// progress ends with a generation the next heartbeat here is answered for.
func (w *Worker) confirmMembership(ctx context.Context) {
	backoff := 100 * time.Millisecond
	var said error
	for ctx.Err() == nil {
		w.mu.Lock()
		unsure := w.unsure
		w.mu.Unlock()
		if !unsure {
			return
		}
		member, generation := w.consumer.GroupMetadata()
		req := kmsg.NewPtrHeartbeatRequest()
		req.Group, req.MemberID, req.Generation = w.flow.Group(), member, generation
		if w.flow.InstanceID != "" {
			req.InstanceID = &w.flow.InstanceID
		}
		resp, err := req.RequestWith(ctx, w.consumer)
		if err == nil {
			err = kerr.ErrorForCode(resp.ErrorCode)
		}
		if err == nil {
			w.trustMembership("heartbeat")
			return
		}
		if said == nil || !errors.Is(err, said) {
			said = err
			w.log.Info("group membership not confirmed yet: copying waits", "member", member, "generation", generation, "reason", err)
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
		backoff = min(2*backoff, 2*time.Second)
	}
}

// groupHook reports why the consumer fell out of the workers' group or could
// not join it, which franz-go otherwise only retries (a worker that never
// joined copied nothing while its health said ok).
type groupHook struct{ w *Worker }

func (h groupHook) OnGroupManageError(err error) {
	if errors.Is(err, context.Canceled) {
		return // stopping
	}
	err = h.w.explainGroupErr(err)
	h.w.noteErr(KindSource, err)
	h.w.mu.Lock()
	h.w.groupErr.note(time.Now(), err)
	h.w.mu.Unlock()
}

// explainGroupErr names the setting behind a group error a worker's own
// configuration causes.
func (w *Worker) explainGroupErr(err error) error {
	group := w.flow.Group()
	switch {
	case errors.Is(err, kerr.InvalidSessionTimeout):
		return fmt.Errorf("joining group %s: the source's brokers refuse --session-timeout %v: it must lie within their group.min.session.timeout.ms and group.max.session.timeout.ms (Kafka's defaults: 6s and 30m): %w", group, w.flow.SessionTimeout, err)
	case errors.Is(err, kerr.FencedInstanceID):
		return fmt.Errorf("group %s: another worker joined with --instance-id %q: give each worker its own: %w", group, w.flow.InstanceID, err)
	case errors.Is(err, kerr.GroupAuthorizationFailed):
		return fmt.Errorf("group %s: the source refuses this principal the group (the workers need READ on it): %w", group, err)
	}
	return fmt.Errorf("group %s: %w", group, err)
}

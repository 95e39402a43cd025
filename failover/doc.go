// Package failover orchestrates switchover, forced promotion and failback
// of a topology's active-passive pattern (`kdr failover`).
//
// # State
//
// The coordination store's state document (failover/store) is the single
// source of truth: Active, Epoch (bumped on every promotion), Fenced, the
// Operation in progress, ConsumerOffsets (the cluster whose group offsets
// clients use), LastReceived (what the standby held at the last forced
// promotion) and the History timeline. Every command takes the store's lock
// first (ErrLocked names the holder) and holds it to the end, stopping if it
// is lost. The operation is persisted with compare-and-swap after every
// step (Operation.Step is the next step, StepIndex its index), so a crashed
// command resumes where it stopped when the same command (same kind and
// --to) runs again; any other command is refused with an *InProgressError
// saying how to resume. Steps are idempotent. With no document yet, the
// pattern's primary is active and the first command creates it (version 0).
//
// An operation whose first step (its preflight, which changes nothing)
// fails is dropped at once (StepError.Dropped). Abort drops one that got
// further, undoing its fences, until a switchover or promote has made the
// standby active or a failback has begun truncate-and-resync; past that it
// refuses with ErrNotAbortable (abortLimit).
//
// The epoch an operation fences and promotes at is fixed in its preflight
// (Operation.Data "epoch"): one above the state's and above every fence
// epoch the clusters carry, which is ahead of the state after a new or
// reset store (fixEpoch).
//
// # Steps
//
// switchover (planned; both clusters up):
//
//	preflight     both clusters reachable with all brokers, the flow from→to running, lag within
//	              failover.maxLagRecords and failover.maxLag
//	fence         the old primary refuses client produce at the operation's epoch (a non-kdr cluster: skipped,
//	              "discovery-based only")
//	drain         the flow's committed position equals the high watermark on every mirrored partition
//	promote       Active=to, Epoch=the operation's epoch, from added to Fenced (to unfenced first if it was fenced)
//	sync-offsets  waits for the selected groups to leave from, translates their offsets exactly
//	              (mirror/offsets.Translator) and commits them on to, never backwards; ConsumerOffsets=to
//	reverse       waits for the reverse flow to→from to run (kdr up starts it from the state)
//	verify        to answers, from is still fenced
//	done          Operation cleared
//
// promote --force (the active cluster is down): preflight-standby,
// record-last-received (the standby's end offsets, and the flow's positions
// if the old primary answers, into State.LastReceived), promote (also
// ConsumerOffsets=to: the checkpointer kept the groups synced),
// fence-when-reachable (else pending: EnsureFenced, run by every command and
// by kdr up, fences the old primary when it is back), done.
//
// failback --to X (X is the fenced old primary, back again): preflight,
// find-diverged (X's records after the last one the active cluster received,
// found by content, minus the reverse flow's copies), preserve (to
// "X.diverged" on the active cluster, headers kdr-diverged-topic,
// -partition, -offset), truncate-and-resync (X's mirrored topics deleted and
// re-copied from the active cluster by a plain copier with client id
// kdr-mirror-resync; both flows positioned after the copy; kdr up runs no
// flow into X during this step), then the switchover steps (named
// "switchover:<step>") back to X, done. Identity naming only: under prefix
// naming X's own topics and the mirrored ones are different topics.
//
// # Testing aid
//
// With KDR_FAILOVER_CRASH_AFTER=<step name> in the environment, the process
// exits with status 3 right after it persisted that step, so crash tests can
// check that a rerun resumes. It is not in the CLI's help.
package failover

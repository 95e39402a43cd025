package broker

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/kdr-io/kdr/broker/cluster"
	"github.com/kdr-io/kdr/internal/atomicfile"
	"github.com/kdr-io/kdr/mirror/mm2"
)

// Write fencing: a failover orchestrator makes the old primary cluster
// read-only for clients (cluster.SetFence, set through the kdr.fenced,
// kdr.fence.epoch and kdr.fence.reason broker configs). While the cluster is
// fenced every broker answers Produce, per partition, with POLICY_VIOLATION
// and a message naming the epoch and reason.
//
// Why POLICY_VIOLATION (44): it is not retriable in any mainstream client,
// so producers fail fast instead of retrying until their delivery timeout,
// and it fails only the batch: franz-go fails the partition's buffered
// records and keeps its sequence numbers; sarama returns it as a
// non-retriable error; librdkafka treats it as a permanent produce error;
// Java raises PolicyViolationException. The alternatives are worse:
// NOT_LEADER_OR_FOLLOWER, KAFKA_STORAGE_ERROR and NOT_ENOUGH_REPLICAS are
// retried until the delivery timeout (the producer hangs instead of
// repointing), and the authorization errors put Java's idempotent producer
// into a fatal state (it must be recreated even after an unfence) and read
// as a misconfigured ACL. The fenced batch is refused before the log sees
// it, so producer-id sequences stay valid and the same producer works again
// after an unfence.
//
// Exceptions, deliberately narrow, so a fenced old primary can still be the
// source and the target of the reverse mirror flow after a failover:
//   - clients whose client.id starts with "kdr-mirror-" (every client kdr's
//     mirror opens, see mirror.Worker) may produce to any topic: the reverse
//     flow writes the new primary's topics into the old one;
//   - the mirror's and MM2's internal topics, from any client: heartbeats,
//     mm2-offset-syncs.<alias>.internal, <alias>.checkpoints.internal, and
//     __consumer_offsets.
//
// Group offset commits are not Produce requests and stay allowed, so
// consumers can drain and commit before they move; replication between
// brokers (followers fetch) is not affected either. Every allowed produce
// while fenced is counted in kdr_broker_fenced_produce_allowed_total.
//
// # The sticky local copy
//
// A broker restarted in a replicated cluster rebuilds its metadata by
// replaying the raft log once the quorum is back; partway through the replay
// it can know a topic and lead it before it has applied the fence that came
// later. So each broker also keeps the last fence it saw in
// <data-dir>/__cluster_metadata/write-fence.json and enforces whichever of
// the two has the higher epoch (the metadata's on a tie). Fence epochs only
// grow, so the metadata overrides the local copy as soon as it has caught up.

const (
	configFenced      = "kdr.fenced"
	configFenceEpoch  = "kdr.fence.epoch"
	configFenceReason = "kdr.fence.reason"

	// mirrorClientPrefix starts the client.id of every client kdr's
	// mirror opens.
	mirrorClientPrefix = "kdr-mirror-"
	fenceFile          = "write-fence.json"
)

// fenceState is the broker's view of the fence: the metadata's plus the
// sticky local copy.
type fenceState struct {
	path string

	mu sync.Mutex // guards the fields below and the file
	// local is the persisted copy; lastSeen the metadata's fence as of
	// the last syncFence.
	local, lastSeen cluster.Fence
}

// loadFence reads the sticky copy; a missing file is no fence.
func (b *Broker) loadFence() error {
	b.fence.path = filepath.Join(b.cfg.DataDir, "__cluster_metadata", fenceFile)
	raw, err := os.ReadFile(b.fence.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err == nil {
		err = json.Unmarshal(raw, &b.fence.local)
	}
	if err != nil {
		return fmt.Errorf("write fence %s: %w (delete it only if the cluster's fence is known to be lifted)", b.fence.path, err)
	}
	return nil
}

// currentFence is the fence this broker enforces.
func (b *Broker) currentFence() cluster.Fence {
	b.fence.mu.Lock()
	local := b.fence.local
	b.fence.mu.Unlock()
	return effectiveFence(b.meta.State().Fence, local)
}

func effectiveFence(meta, local cluster.Fence) cluster.Fence {
	if local.Epoch > meta.Epoch {
		return local
	}
	return meta
}

// syncFence follows the metadata's fence: it persists it as the sticky copy
// when it is at least as new, and logs changes of the enforced fence. It
// reads the current state under the lock, so concurrent calls leave the
// newest fence behind.
func (b *Broker) syncFence() {
	b.fence.mu.Lock()
	defer b.fence.mu.Unlock()
	meta := b.meta.State().Fence
	before := effectiveFence(b.fence.lastSeen, b.fence.local)
	b.fence.lastSeen = meta
	if meta.Epoch >= b.fence.local.Epoch && meta != b.fence.local {
		raw, err := json.Marshal(meta)
		if err == nil {
			err = atomicfile.Write(b.fence.path, raw, 0o644)
		}
		if err != nil {
			// The metadata still holds the fence; only the restart
			// window is unprotected.
			b.log.Error("persisting the write fence", "path", b.fence.path, "err", err)
		} else {
			b.fence.local = meta
		}
	}
	after := effectiveFence(meta, b.fence.local)
	switch {
	case after == before:
	case after.Fenced:
		b.log.Warn("cluster fenced: refusing client produce requests", "fence_epoch", after.Epoch, "reason", after.Reason, "previous_epoch", before.Epoch)
	default:
		b.log.Info("cluster unfenced: accepting produce requests", "fence_epoch", after.Epoch, "reason", after.Reason, "previous_epoch", before.Epoch)
	}
}

// fenceInternalTopic reports whether topic is one of the internal topics
// that stay writable while fenced.
func fenceInternalTopic(topic string) bool {
	if topic == offsetsTopic || topic == mm2.HeartbeatsTopic {
		return true
	}
	_, syncs := mm2.IsOffsetSyncsTopic(topic)
	_, checkpoints := mm2.IsCheckpointsTopic(topic)
	return syncs || checkpoints
}

// fenceCheck decides a produce to topic from clientID under fence f: nil
// to allow it (counting the exception used), or the error to answer with.
func (b *Broker) fenceCheck(f cluster.Fence, clientID, topic string, partitions int) error {
	if !f.Fenced {
		return nil
	}
	switch {
	case strings.HasPrefix(clientID, mirrorClientPrefix):
		b.metrics.fencedAllowed.WithLabelValues("mirror_client").Add(float64(partitions))
		return nil
	case fenceInternalTopic(topic):
		b.metrics.fencedAllowed.WithLabelValues("internal_topic").Add(float64(partitions))
		return nil
	}
	b.metrics.fencedRejections.Add(float64(partitions))
	return &cluster.Error{Code: kerr.PolicyViolation,
		Message: fmt.Sprintf("cluster fenced by failover epoch %d: %s; produce to the active cluster", f.Epoch, f.Reason)}
}

package topology

import "github.com/kdr-io/kdr/mirror"

// The states of a flow's workers as seen on its source cluster; kdr status
// reports them and kdr topology plan flags a stopped flow.
const (
	FlowRunning = "running" // the workers' group on the source has members
	FlowStopped = "stopped" // it has none
	// FlowIdle: no members, but the source has no topic the flow mirrors
	// (workers join their group only once there is one). Healthy.
	FlowIdle = "idle"
)

// FlowWorkersState judges flow f's workers from what its source says: the
// member count of their group and the source's topic names. Workers with
// nothing to mirror are in no group, so an empty group is only a stopped
// flow when the source has a topic f mirrors, by the rules the workers
// select topics with (mirror.Flow.TopicRules).
func FlowWorkersState(f mirror.Flow, members int, sourceTopics []string) string {
	if members > 0 {
		return FlowRunning
	}
	rules := f.TopicRules()
	for _, name := range sourceTopics {
		if ok, _ := rules.ShouldReplicate(f.SourceAlias, f.TargetAlias, name); ok {
			return FlowStopped
		}
	}
	return FlowIdle
}

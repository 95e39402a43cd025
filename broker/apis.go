package broker

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kdr-io/kdr/broker/wire"
)

// registry is the one table of the Kafka APIs this broker implements, with
// the version ranges that are implemented and tested. ApiVersions answers
// from it. Minimum versions follow Kafka 4.0 (KIP-896) where older versions
// would need record down-conversion (Produce < 3, Fetch < 4).
func (b *Broker) registry() (*wire.Registry, error) {
	return wire.NewRegistry(
		// The log appends a copy of the batches (storage.Log.AppendAsLeader).
		wire.API{Key: kmsg.Produce.Int16(), MinVersion: 3, MaxVersion: 11, Handle: b.handleProduce, ReleasesBody: true},
		wire.API{Key: kmsg.Fetch.Int16(), MinVersion: 4, MaxVersion: 16, Handle: b.handleFetch},
		wire.API{Key: kmsg.ListOffsets.Int16(), MinVersion: 1, MaxVersion: 8, Handle: b.handleListOffsets},
		wire.API{Key: kmsg.Metadata.Int16(), MinVersion: 0, MaxVersion: 12, Handle: b.handleMetadata},
		wire.API{Key: kmsg.OffsetCommit.Int16(), MinVersion: 0, MaxVersion: 9, Handle: b.handleOffsetCommit},
		wire.API{Key: kmsg.OffsetFetch.Int16(), MinVersion: 0, MaxVersion: 9, Handle: b.handleOffsetFetch},
		wire.API{Key: kmsg.FindCoordinator.Int16(), MinVersion: 0, MaxVersion: 4, Handle: b.handleFindCoordinator},
		wire.API{Key: kmsg.JoinGroup.Int16(), MinVersion: 0, MaxVersion: 9, Handle: b.handleJoinGroup},
		wire.API{Key: kmsg.Heartbeat.Int16(), MinVersion: 0, MaxVersion: 4, Handle: b.handleHeartbeat},
		wire.API{Key: kmsg.LeaveGroup.Int16(), MinVersion: 0, MaxVersion: 5, Handle: b.handleLeaveGroup},
		wire.API{Key: kmsg.SyncGroup.Int16(), MinVersion: 0, MaxVersion: 5, Handle: b.handleSyncGroup},
		wire.API{Key: kmsg.DescribeGroups.Int16(), MinVersion: 0, MaxVersion: 5, Handle: b.handleDescribeGroups},
		wire.API{Key: kmsg.ListGroups.Int16(), MinVersion: 0, MaxVersion: 5, Handle: b.handleListGroups},
		wire.API{Key: kmsg.ApiVersions.Int16(), MinVersion: 0, MaxVersion: 3, Handle: b.handleApiVersions},
		wire.API{Key: kmsg.CreateTopics.Int16(), MinVersion: 0, MaxVersion: 7, Handle: b.handleCreateTopics},
		wire.API{Key: kmsg.DeleteTopics.Int16(), MinVersion: 0, MaxVersion: 6, Handle: b.handleDeleteTopics},
		wire.API{Key: kmsg.DeleteRecords.Int16(), MinVersion: 0, MaxVersion: 2, Handle: b.handleDeleteRecords},
		wire.API{Key: kmsg.InitProducerID.Int16(), MinVersion: 0, MaxVersion: 5, Handle: b.handleInitProducerID},
		wire.API{Key: kmsg.OffsetForLeaderEpoch.Int16(), MinVersion: 0, MaxVersion: 4, Handle: b.handleOffsetForLeaderEpoch},
		wire.API{Key: kmsg.DescribeConfigs.Int16(), MinVersion: 0, MaxVersion: 4, Handle: b.handleDescribeConfigs},
		wire.API{Key: kmsg.AlterConfigs.Int16(), MinVersion: 0, MaxVersion: 2, Handle: b.handleAlterConfigs},
		wire.API{Key: kmsg.CreatePartitions.Int16(), MinVersion: 0, MaxVersion: 3, Handle: b.handleCreatePartitions},
		wire.API{Key: kmsg.DeleteGroups.Int16(), MinVersion: 0, MaxVersion: 2, Handle: b.handleDeleteGroups},
		wire.API{Key: kmsg.IncrementalAlterConfigs.Int16(), MinVersion: 0, MaxVersion: 1, Handle: b.handleIncrementalAlterConfigs},
		wire.API{Key: kmsg.OffsetDelete.Int16(), MinVersion: 0, MaxVersion: 0, Handle: b.handleOffsetDelete},
		wire.API{Key: kmsg.DescribeCluster.Int16(), MinVersion: 0, MaxVersion: 1, Handle: b.handleDescribeCluster},
		wire.API{Key: kmsg.ElectLeaders.Int16(), MinVersion: 0, MaxVersion: 2, Handle: b.handleElectLeaders},
		wire.API{Key: kmsg.AlterPartitionAssignments.Int16(), MinVersion: 0, MaxVersion: 1, Handle: b.handleAlterPartitionReassignments},
		wire.API{Key: kmsg.ListPartitionReassignments.Int16(), MinVersion: 0, MaxVersion: 0, Handle: b.handleListPartitionReassignments},
	)
}

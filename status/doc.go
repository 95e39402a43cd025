// Package status gathers the state of a topology's estate through the Kafka
// protocol: per cluster the live brokers against the expected ones, the
// controller, leaders per broker, under-replicated and offline partitions;
// per flow whether its mirror workers run (their consumer group on the
// source has members), the lag in records and, from the workers' metrics,
// the p99 replication latency. Every call is bounded in time so that a dead
// cluster reads as unreachable instead of hanging.
package status

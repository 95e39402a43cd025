// Package broker is a Kafka-compatible broker: it owns the partition logs on
// this node (broker/storage), the cluster metadata (broker/cluster), the group
// coordinator (broker/group) and the Kafka API handlers, which the wire
// package dispatches to.
//
// Each Kafka API lives in its own file (api_<name>.go) and is registered once,
// in apis.go, with the version range that is implemented and tested; the
// ApiVersions answer is derived from that table.
//
// Lock order, where locks nest: Broker.mu (partition map) → partition.mu
// (fetch waiters). The storage log and the group coordinator lock internally
// and never call back into the broker.
package broker

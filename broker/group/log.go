package group

import "context"

// Record is one record of the offsets topic; a nil Value is a tombstone.
type Record struct{ Key, Value []byte }

// Log is where the coordinator persists group metadata and committed
// offsets: the partitions of __consumer_offsets.
//
// Append must return only once the records are durable to the degree the
// broker acknowledges produce requests; an error means nothing was stored
// and is mapped to a Kafka code (a *kerr.Error inside it is used as is).
// Replay calls fn for every record of a partition in offset order. Both may
// be called concurrently for different partitions.
type Log interface {
	Append(ctx context.Context, partition int32, records []Record) error
	Replay(partition int32, fn func(Record) error) error
}

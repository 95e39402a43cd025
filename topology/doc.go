// Package topology is kdr's declarative description of an estate: which
// Kafka clusters exist (existing ones by bootstrap servers, or "local" ones
// kdr runs itself), which replication patterns join them, and how failover
// behaves. A document is YAML with apiVersion kdr.io/v1 and kind Topology;
// Load reads and validates one, naming the file, line and field of every
// problem; Flows expands the patterns into the mirror flows that run.
package topology

// Package compat holds the client-compatibility suite: real Kafka clients —
// franz-go, sarama, segmentio/kafka-go, kcat (librdkafka) and kafkajs —
// against a kdr broker started as a separate process. The tests live in
// package compat_test; `make test` installs kcat and kafkajs first, and a
// test whose client is missing is skipped, never passed.
package compat

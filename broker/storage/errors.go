package storage

import (
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
)

// Sentinel errors. Each wraps the Kafka error the broker answers with, so
// errors.Is(err, ErrX) and errors.As(err, &*kerr.Error) both work on the
// detailed errors the Log returns (which wrap these).
var (
	// ErrCorruptMessage: a batch with a bad length, CRC, magic, record
	// count or codec.
	ErrCorruptMessage = fmt.Errorf("storage: corrupt message: %w", kerr.CorruptMessage)
	// ErrMessageTooLarge: a batch larger than max.message.bytes.
	ErrMessageTooLarge = fmt.Errorf("storage: message too large: %w", kerr.MessageTooLarge)
	// ErrOffsetOutOfRange: an offset outside [log start offset, log end
	// offset], or a follower batch that does not continue the log.
	ErrOffsetOutOfRange = fmt.Errorf("storage: offset out of range: %w", kerr.OffsetOutOfRange)
	// ErrOutOfOrderSequence: an idempotent batch whose sequence does not
	// follow the producer's last one.
	ErrOutOfOrderSequence = fmt.Errorf("storage: out of order sequence: %w", kerr.OutOfOrderSequenceNumber)
	// ErrInvalidProducerEpoch: a batch from an older producer epoch.
	ErrInvalidProducerEpoch = fmt.Errorf("storage: invalid producer epoch: %w", kerr.InvalidProducerEpoch)
	// ErrInvalidRecord: a well-formed batch the topic cannot take, such as
	// a null key on a compacted topic.
	ErrInvalidRecord = fmt.Errorf("storage: invalid record: %w", kerr.InvalidRecord)
	// ErrInvalidTimestamp is reserved for message.timestamp.*.ms checks,
	// which kdr does not implement yet.
	ErrInvalidTimestamp = fmt.Errorf("storage: invalid timestamp: %w", kerr.InvalidTimestamp)
	// ErrClosed: the Log was closed (broker shutdown or topic deletion);
	// clients are told to refresh their metadata.
	ErrClosed = fmt.Errorf("storage: log closed: %w", kerr.NotLeaderForPartition)
)

// KafkaError returns the Kafka error err maps to: nil for nil, the wrapped
// kerr error when there is one, else UNKNOWN_SERVER_ERROR (I/O failures).
func KafkaError(err error) *kerr.Error {
	if err == nil {
		return nil
	}
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke
	}
	return kerr.UnknownServerError
}

func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrCorruptMessage}, args...)...)
}

package broker

import (
	"context"
	"errors"
	"io/fs"

	"github.com/twmb/franz-go/pkg/kerr"
)

// errorCode maps an error to the Kafka error code to answer with. Errors that
// carry a kerr code (directly or wrapped: storage sentinels, cluster.Error,
// configError) keep it; a cancelled request is REQUEST_TIMED_OUT; a failed
// read or write of a log file (disk full, I/O error: the os package's
// *fs.PathError) is KAFKA_STORAGE_ERROR, as Kafka answers for a failed log
// directory, which clients retry; anything else is UNKNOWN_SERVER_ERROR.
// Both of the last two are worth a log line at the call site
// (logWorthy).
func errorCode(err error) int16 {
	if err == nil {
		return 0
	}
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke.Code
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return kerr.RequestTimedOut.Code
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return kerr.KafkaStorageError.Code
	}
	return kerr.UnknownServerError.Code
}

// logWorthy reports whether an answer's error code says the broker itself
// failed, which the client cannot explain to the operator.
func logWorthy(code int16) bool {
	return code == kerr.UnknownServerError.Code || code == kerr.KafkaStorageError.Code
}

// partitionError is the code to answer for a partition whose append or
// read failed (what: "append", "fetch read"): the broker's own failures are
// logged, and its log files' failures counted in
// kdr_broker_storage_errors_total.
func (b *Broker) partitionError(what, topic string, partition int32, err error) int16 {
	code := errorCode(err)
	if logWorthy(code) {
		b.log.Error(what+" failed", "topic", topic, "partition", partition, "err", err)
	}
	if code == kerr.KafkaStorageError.Code {
		b.metrics.storageErrors.Inc()
	}
	return code
}

// errorMessage is the message for responses that carry one (v5+ of many
// admin APIs), so a client sees why, not just a code.
func errorMessage(err error) *string {
	if err == nil {
		return nil
	}
	s := err.Error()
	return &s
}

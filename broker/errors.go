package broker

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
)

// errorCode maps an error to the Kafka error code to answer with. Errors that
// carry a kerr code (directly or wrapped: storage sentinels, cluster.Error,
// configError) keep it; a cancelled request is REQUEST_TIMED_OUT; anything
// else is UNKNOWN_SERVER_ERROR and is worth a log line at the call site.
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
	return kerr.UnknownServerError.Code
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

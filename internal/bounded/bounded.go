// Package bounded waits for a call no longer than its context allows.
// franz-go bounds a dial by its dial timeout and waits for the answer to a
// request it has sent until the connection's read timeout, whatever the
// request's context: a caller that must return when its context ends (a
// status probe of a dead cluster, a stopping mirror worker) runs the call
// through Call.
package bounded

import (
	"context"
	"fmt"
)

// Call runs fn and returns its result, or an error wrapping ctx's cause as
// soon as ctx ends; fn then finishes in the background, so it must not
// touch what the caller frees on return.
func Call[T any](ctx context.Context, fn func() (T, error)) (T, error) {
	type result struct {
		v   T
		err error
	}
	ch := make(chan result, 1)
	go func() {
		v, err := fn()
		ch <- result{v, err}
	}()
	select {
	case r := <-ch:
		return r.v, r.err
	case <-ctx.Done():
		var zero T
		return zero, fmt.Errorf("no answer: %w", context.Cause(ctx))
	}
}

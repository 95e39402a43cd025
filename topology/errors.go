package topology

import (
	"fmt"
	"strings"

	"github.com/kdr-io/kdr/internal/yamlschema"
)

// ErrInvalid is wrapped by every *Error, so that errors.Is(err, ErrInvalid)
// tells an invalid document from a file that could not be read.
var ErrInvalid = yamlschema.ErrInvalid

// Error is one problem in a topology document:
// "FILE:LINE:COL: FIELD: PROBLEM (fix: HINT)". Load and Parse join all of a
// document's problems (errors.Join); errors.As finds the first, Problems
// lists them all.
type Error = yamlschema.Error

// Problems returns every *Error in err, which may be a single *Error or a
// join of them (as Load returns); nil if there are none.
func Problems(err error) []*Error { return yamlschema.Problems(err) }

// quoteList renders names for hints: "east", "west".
func quoteList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", n)
	}
	return strings.Join(q, ", ")
}

package topology

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// ErrInvalid is wrapped by every *Error, so that errors.Is(err, ErrInvalid)
// tells an invalid document from a file that could not be read.
var ErrInvalid = errors.New("topology: invalid")

// Error is one problem in a topology document. Load and Parse join all of a
// document's problems (errors.Join); errors.As finds the first, Problems
// lists them all.
type Error struct {
	// File is the document's path ("" for a topology built in code).
	File string
	// Line and Column (1-based) locate the problem: the offending value, or
	// for a missing field the mapping that should hold it. 0 when unknown.
	Line, Column int
	// Field is the YAML path of the problem: "clusters[1].local.basePort",
	// "replication[0].mirror.refreshInterval"; "" for the whole document.
	Field string
	// Problem says what is wrong, quoting the value.
	Problem string
	// Hint says how to fix it; may be empty.
	Hint string
}

// Error formats e as "FILE:LINE:COL: FIELD: PROBLEM (fix: HINT)", leaving
// out the parts that are unknown or empty.
func (e *Error) Error() string {
	var b strings.Builder
	file := e.File
	if file == "" {
		file = "topology"
	}
	b.WriteString(file)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
		if e.Column > 0 {
			fmt.Fprintf(&b, ":%d", e.Column)
		}
	}
	b.WriteString(": ")
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Problem)
	if e.Hint != "" {
		b.WriteString(" (fix: ")
		b.WriteString(e.Hint)
		b.WriteString(")")
	}
	return b.String()
}

// Unwrap makes errors.Is(err, ErrInvalid) hold.
func (e *Error) Unwrap() error { return ErrInvalid }

// Problems returns every *Error in err, which may be a single *Error or a
// join of them (as Load returns); nil if there are none.
func Problems(err error) []*Error {
	var out []*Error
	var walk func(error)
	walk = func(err error) {
		if err == nil {
			return
		}
		if e, ok := err.(*Error); ok {
			out = append(out, e)
			return
		}
		switch u := err.(type) {
		case interface{ Unwrap() []error }:
			for _, inner := range u.Unwrap() {
				walk(inner)
			}
		case interface{ Unwrap() error }:
			walk(u.Unwrap())
		}
	}
	walk(err)
	return out
}

// joinProblems sorts problems by position, drops exact repeats (a setting
// shared by several flows is reported once) and joins them; nil if none.
func joinProblems(problems []*Error) error {
	slices.SortStableFunc(problems, func(a, b *Error) int {
		return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(a.Column, b.Column))
	})
	seen := map[string]bool{}
	var errs []error
	for _, p := range problems {
		s := p.Error()
		if seen[s] {
			continue
		}
		seen[s] = true
		errs = append(errs, p)
	}
	return errors.Join(errs...)
}

// quoteList renders names for hints: "east", "west".
func quoteList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", n)
	}
	return strings.Join(q, ", ")
}

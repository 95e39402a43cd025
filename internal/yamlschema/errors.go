package yamlschema

import (
	"cmp"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// ErrInvalid is wrapped by every *Error, so that errors.Is(err, ErrInvalid)
// tells an invalid document from a file that could not be read.
var ErrInvalid = errors.New("invalid document")

// Error is one problem in a document, as the topology and scenario loaders
// report it. They join all of a document's problems (Join); errors.As finds
// the first, Problems lists them all.
type Error struct {
	// File is the document's path.
	File string
	// Line and Column (1-based) locate the problem: the offending value, or
	// for a missing field the mapping that should hold it. 0 when unknown.
	Line, Column int
	// Field is the YAML path of the problem: "clusters[1].local.basePort",
	// "steps[2].args.to"; "" for the whole document.
	Field string
	// Problem says what is wrong, quoting the value.
	Problem string
	// Hint says how to fix it; may be empty.
	Hint string
}

// Error formats e as "FILE:LINE:COL: FIELD: PROBLEM (fix: HINT)", leaving
// out the parts that are unknown or empty (a document built in code has no
// file and no positions).
func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			fmt.Fprintf(&b, ":%d", e.Line)
			if e.Column > 0 {
				fmt.Fprintf(&b, ":%d", e.Column)
			}
		}
		b.WriteString(": ")
	}
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

// Errors turns Check's problems into *Errors of file, and says whether one
// of them is fatal (the document cannot be decoded safely).
func Errors(file string, problems []Problem) (errs []*Error, fatal bool) {
	for _, p := range problems {
		errs = append(errs, &Error{File: file, Line: p.Line, Column: p.Column, Field: p.Field, Problem: p.Problem, Hint: p.Hint})
		fatal = fatal || p.Fatal
	}
	return errs, fatal
}

// Join sorts problems by position, drops exact repeats (a setting shared
// by several flows is reported once) and joins them; nil if none.
func Join(problems []*Error) error {
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

// Problems returns every *Error in err, which may be a single *Error or a
// join of them (as Join returns); nil if there are none.
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

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// SyntaxError turns a YAML parser error into an *Error of file with its
// line.
func SyntaxError(file string, err error) *Error {
	e := &Error{File: file, Problem: "YAML syntax: " + err.Error(),
		Hint: "indent with spaces, and quote values containing \": \" or starting with * & ! % @"}
	if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
		e.Line, _ = strconv.Atoi(m[1])
		e.Problem = "YAML syntax: " + m[2]
	}
	return e
}

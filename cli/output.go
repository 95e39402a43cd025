package cli

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/twmb/franz-go/pkg/kadm"
)

// outputFormat is the value of --output.
type outputFormat string

const (
	outputText outputFormat = "text"
	outputJSON outputFormat = "json"
)

func parseOutput(s string) (outputFormat, error) {
	switch f := outputFormat(strings.ToLower(strings.TrimSpace(s))); f {
	case outputText, outputJSON:
		return f, nil
	}
	return "", usageError{fmt.Errorf("--output %q: want text or json", s)}
}

// printResult prints one result: as JSON (the result type's json tags are
// its stable, snake_case schema) or with the type's text printer.
func printResult[T any](w io.Writer, f outputFormat, v T, text func(io.Writer, T) error) error {
	if f == outputJSON {
		return writeJSON(w, v)
	}
	return text(w, v)
}

// writeJSON writes v indented, with "east->west" as it is: JSON is read by
// people too, and nothing here goes into HTML.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// table writes tab-separated rows as aligned columns.
type table struct{ tw *tabwriter.Writer }

func newTable(w io.Writer, header ...string) *table {
	t := &table{tw: tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)}
	t.row(anySlice(header)...)
	return t
}

func (t *table) row(cells ...any) {
	for i, c := range cells {
		if i > 0 {
			fmt.Fprint(t.tw, "\t")
		}
		fmt.Fprint(t.tw, c)
	}
	fmt.Fprintln(t.tw)
}

func (t *table) flush() error { return t.tw.Flush() }

func anySlice(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// int32List formats broker or partition numbers as 1,2,3.
func int32List(ns []int32) string {
	parts := make([]string, len(ns))
	for i, n := range ns {
		parts[i] = strconv.Itoa(int(n))
	}
	return strings.Join(parts, ",")
}

// topicIDString formats a topic id as Kafka's tools do (URL-safe base64
// without padding); the zero id (brokers without topic ids) is empty.
func topicIDString(id kadm.TopicID) string {
	if id == (kadm.TopicID{}) {
		return ""
	}
	return base64.RawURLEncoding.EncodeToString(id[:])
}

// orDash shows an unknown value in a table.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// offsetString shows an offset, or "-" for none (-1).
func offsetString(o int64) string {
	if o < 0 {
		return "-"
	}
	return strconv.FormatInt(o, 10)
}

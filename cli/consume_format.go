package cli

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"
)

// defaultRecordFormat prints each record's value on its own line.
const defaultRecordFormat = `%v\n`

// recordFormatHelp documents --format.
const recordFormatHelp = `how to print each record: %t topic, %p partition, %o offset, %k key, %v value,
%T timestamp (Unix ms), %h headers (k=v,k=v), %% a percent sign; \n \t \r \\ escapes`

// recordFormat is a compiled --format: literal text and verbs.
type recordFormat []formatPart

type formatPart struct {
	literal string
	verb    byte // 0 for a literal
}

// parseRecordFormat compiles a --format string.
func parseRecordFormat(s string) (recordFormat, error) {
	var f recordFormat
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			f = append(f, formatPart{literal: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '%' && c != '\\' {
			lit.WriteByte(c)
			continue
		}
		if i+1 == len(s) {
			return nil, usageError{fmt.Errorf("--format %q ends in a lone %c; write %%%% for a percent sign and \\\\ for a backslash", s, c)}
		}
		i++
		next := s[i]
		if c == '\\' {
			esc := strings.IndexByte(`nrt\`, next)
			if esc < 0 {
				return nil, usageError{fmt.Errorf("--format %q: unknown escape \\%c; known: \\n \\t \\r \\\\", s, next)}
			}
			lit.WriteByte("\n\r\t\\"[esc])
			continue
		}
		switch next {
		case '%':
			lit.WriteByte('%')
		case 't', 'p', 'o', 'k', 'v', 'T', 'h':
			flush()
			f = append(f, formatPart{verb: next})
		default:
			return nil, usageError{fmt.Errorf("--format %q: unknown verb %%%c; known: %%t %%p %%o %%k %%v %%T %%h %%%%", s, next)}
		}
	}
	flush()
	return f, nil
}

// appendRecord appends r formatted by f to dst.
func (f recordFormat) appendRecord(dst []byte, r *kgo.Record) []byte {
	for _, p := range f {
		switch p.verb {
		case 0:
			dst = append(dst, p.literal...)
		case 't':
			dst = append(dst, r.Topic...)
		case 'p':
			dst = strconv.AppendInt(dst, int64(r.Partition), 10)
		case 'o':
			dst = strconv.AppendInt(dst, r.Offset, 10)
		case 'k':
			dst = append(dst, r.Key...)
		case 'v':
			dst = append(dst, r.Value...)
		case 'T':
			dst = strconv.AppendInt(dst, r.Timestamp.UnixMilli(), 10)
		case 'h':
			for i, h := range r.Headers {
				if i > 0 {
					dst = append(dst, ',')
				}
				dst = append(dst, h.Key...)
				dst = append(dst, '=')
				dst = append(dst, h.Value...)
			}
		}
	}
	return dst
}

// consumedRecord is one record of `kdr consume --output json`, printed as
// one JSON object per line. Key and value are null when absent; bytes that
// are not UTF-8 are replaced by U+FFFD.
type consumedRecord struct {
	Topic       string     `json:"topic"`
	Partition   int32      `json:"partition"`
	Offset      int64      `json:"offset"`
	TimestampMs int64      `json:"timestamp_ms"`
	Key         *string    `json:"key"`
	Value       *string    `json:"value"`
	Headers     []keyValue `json:"headers"`
}

// appendRecordJSON appends r as one line of JSON to dst.
func appendRecordJSON(dst []byte, r *kgo.Record) ([]byte, error) {
	c := consumedRecord{
		Topic:       r.Topic,
		Partition:   r.Partition,
		Offset:      r.Offset,
		TimestampMs: r.Timestamp.UnixMilli(),
		Key:         bytesPtr(r.Key),
		Value:       bytesPtr(r.Value),
		Headers:     []keyValue{},
	}
	for _, h := range r.Headers {
		c.Headers = append(c.Headers, keyValue{Key: h.Key, Value: string(h.Value)})
	}
	b, err := json.Marshal(c)
	if err != nil {
		return dst, err
	}
	return append(append(dst, b...), '\n'), nil
}

func bytesPtr(b []byte) *string {
	if b == nil {
		return nil
	}
	s := string(b)
	return &s
}

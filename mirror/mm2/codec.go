package mm2

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// Sentinel errors wrapped by *DecodeError and by Validate; test with
// errors.Is.
var (
	ErrTruncated          = errors.New("mm2: truncated")
	ErrNegativeLength     = errors.New("mm2: negative string length")
	ErrTrailingBytes      = errors.New("mm2: trailing bytes")
	ErrUnsupportedVersion = errors.New("mm2: unsupported version")
	ErrStringTooLong      = errors.New("mm2: string longer than 32767 bytes")
)

// MaxStringLen is the longest STRING, in bytes, the format can hold.
const MaxStringLen = math.MaxInt16

// valueVersion is the only value version MM2 has ever written.
const valueVersion int16 = 0

// DecodeError describes why a key or value could not be decoded.
type DecodeError struct {
	Record string // "OffsetSync", "Checkpoint" or "Heartbeat"
	Part   string // "key" or "value"
	Field  string // MM2's field name, e.g. "upstreamOffset"; empty for trailing bytes
	Offset int    // byte offset in the key or value where the field (or the trailing data) starts
	Err    error  // one of the sentinel errors
	Detail string // lengths or the version seen
}

func (e *DecodeError) Error() string {
	where := fmt.Sprintf("at offset %d", e.Offset)
	if e.Field != "" {
		where = fmt.Sprintf("field %q %s", e.Field, where)
	}
	return fmt.Sprintf("mm2: decode %s %s: %s: %s: %s", e.Record, e.Part, where, trimPrefix(e.Err), e.Detail)
}

func (e *DecodeError) Unwrap() error { return e.Err }

// trimPrefix drops the sentinel's "mm2: " so the message names the package
// once.
func trimPrefix(err error) string {
	s := err.Error()
	if len(s) > 5 && s[:5] == "mm2: " {
		return s[5:]
	}
	return s
}

// reader walks one key or value. The first error sticks: later reads return
// zero values and leave it in place.
type reader struct {
	record, part string
	b            []byte
	off          int
	err          error
}

func newReader(record, part string, b []byte) *reader {
	return &reader{record: record, part: part, b: b}
}

func (r *reader) fail(field string, at int, err error, format string, args ...any) {
	if r.err == nil {
		r.err = &DecodeError{Record: r.record, Part: r.part, Field: field, Offset: at, Err: err, Detail: fmt.Sprintf(format, args...)}
	}
}

// take returns the next n bytes of a field that started at offset at.
func (r *reader) take(field string, at, n int, what string) []byte {
	if r.err != nil {
		return nil
	}
	if rem := len(r.b) - r.off; rem < n {
		r.fail(field, at, ErrTruncated, "%s needs %d bytes, %d remain", what, n, rem)
		return nil
	}
	p := r.b[r.off : r.off+n]
	r.off += n
	return p
}

func (r *reader) int16(field string) int16 {
	p := r.take(field, r.off, 2, "INT16")
	if p == nil {
		return 0
	}
	return int16(binary.BigEndian.Uint16(p))
}

func (r *reader) int32(field string) int32 {
	p := r.take(field, r.off, 4, "INT32")
	if p == nil {
		return 0
	}
	return int32(binary.BigEndian.Uint32(p))
}

func (r *reader) int64(field string) int64 {
	p := r.take(field, r.off, 8, "INT64")
	if p == nil {
		return 0
	}
	return int64(binary.BigEndian.Uint64(p))
}

func (r *reader) string(field string) string {
	at := r.off
	lp := r.take(field, at, 2, "STRING length")
	if lp == nil {
		return ""
	}
	n := int(int16(binary.BigEndian.Uint16(lp)))
	if n < 0 {
		r.fail(field, at, ErrNegativeLength, "length %d", n)
		return ""
	}
	if rem := len(r.b) - r.off; rem < n {
		r.fail(field, at, ErrTruncated, "STRING of length %d needs %d bytes, %d remain", n, n, rem)
		return ""
	}
	s := string(r.b[r.off : r.off+n])
	r.off += n
	return s
}

// version reads a value's INT16 version and refuses anything but 0.
func (r *reader) version() {
	at := r.off
	if v := r.int16("version"); r.err == nil && v != valueVersion {
		r.fail("version", at, ErrUnsupportedVersion, "version %d, only %d is supported", v, valueVersion)
	}
}

// done reports the first error, or trailing bytes after the last field.
func (r *reader) done() error {
	if r.err == nil && r.off != len(r.b) {
		r.fail("", r.off, ErrTrailingBytes, "%d bytes after the last field", len(r.b)-r.off)
	}
	return r.err
}

// checkString reports a string too long for a STRING field.
func checkString(record, field, s string) error {
	if len(s) > MaxStringLen {
		return fmt.Errorf("%w: %s %s is %d bytes", ErrStringTooLong, record, field, len(s))
	}
	return nil
}

func appendString(b []byte, s string) []byte {
	if len(s) > MaxStringLen {
		// Key and Value document this panic; Validate reports it as an error.
		panic(fmt.Sprintf("mm2: string of %d bytes exceeds the STRING limit of %d; call Validate first", len(s), MaxStringLen))
	}
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}

func appendInt16(b []byte, v int16) []byte { return binary.BigEndian.AppendUint16(b, uint16(v)) }
func appendInt32(b []byte, v int32) []byte { return binary.BigEndian.AppendUint32(b, uint32(v)) }
func appendInt64(b []byte, v int64) []byte { return binary.BigEndian.AppendUint64(b, uint64(v)) }

package mm2

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

// checkEncoding compares an encoded key and value with the golden bytes.
func checkEncoding(t *testing.T, gotKey, gotValue, key, value []byte) {
	t.Helper()
	if !bytes.Equal(gotKey, key) {
		t.Errorf("Key() = % x, want % x", gotKey, key)
	}
	if !bytes.Equal(gotValue, value) {
		t.Errorf("Value() = % x, want % x", gotValue, value)
	}
}

func TestMM2OffsetSyncGolden(t *testing.T) {
	s := OffsetSync{Topic: "orders", Partition: 3, UpstreamOffset: 100, DownstreamOffset: 42}
	key := unhex(t, "00 06 6f 72 64 65 72 73 00 00 00 03")
	value := unhex(t, "00 00 00 00 00 00 00 64  00 00 00 00 00 00 00 2a")
	checkEncoding(t, s.Key(), s.Value(), key, value)
	got, err := DecodeOffsetSync(key, value)
	if err != nil || got != s {
		t.Errorf("DecodeOffsetSync = %+v, %v; want %+v", got, err, s)
	}
}

func TestMM2CheckpointGolden(t *testing.T) {
	c := Checkpoint{Group: "g1", Topic: "east.orders", Partition: 0, UpstreamOffset: 7, DownstreamOffset: 5, Metadata: "m"}
	key := unhex(t, "0002 6731  000b 656173742e6f7264657273  00000000")
	value := unhex(t, "0000  0000000000000007  0000000000000005  0001 6d")
	checkEncoding(t, c.Key(), c.Value(), key, value)
	got, err := DecodeCheckpoint(key, value)
	if err != nil || got != c {
		t.Errorf("DecodeCheckpoint = %+v, %v; want %+v", got, err, c)
	}
}

func TestMM2HeartbeatGolden(t *testing.T) {
	ts := time.UnixMilli(1700000000123).UTC()
	h := Heartbeat{SourceAlias: "east", TargetAlias: "west", Timestamp: ts.Add(456 * time.Microsecond)}
	key := unhex(t, "0004 65617374  0004 77657374")
	value := unhex(t, "0000  0000018bcfe5687b")
	checkEncoding(t, h.Key(), h.Value(), key, value)
	got, err := DecodeHeartbeat(key, value)
	if err != nil {
		t.Fatal(err)
	}
	if got.SourceAlias != "east" || got.TargetAlias != "west" || !got.Timestamp.Equal(ts) || got.Timestamp.Location() != time.UTC {
		t.Errorf("DecodeHeartbeat = %+v; want east/west at %v UTC (sub-ms dropped)", got, ts)
	}
}

func TestMM2RoundTrip(t *testing.T) {
	long := strings.Repeat("x", MaxStringLen)
	syncs := []OffsetSync{
		{},
		{Topic: "a", Partition: -1, UpstreamOffset: -1, DownstreamOffset: math.MaxInt64},
		{Topic: "west.east.orders", Partition: math.MaxInt32, UpstreamOffset: math.MinInt64},
		{Topic: long, Partition: 1},
		{Topic: "bad\xffutf8", Partition: 2},
	}
	for _, s := range syncs {
		got, err := DecodeOffsetSync(s.Key(), s.Value())
		if err != nil || got != s {
			t.Errorf("OffsetSync round trip of %.40q: %+v, %v", s.Topic, got, err)
		}
	}
	cps := []Checkpoint{
		{},
		{Group: "g", Topic: "t", Partition: 9, UpstreamOffset: 1, DownstreamOffset: 2, Metadata: ""},
		{Group: long, Topic: "t", Metadata: long},
		{Group: "ünïcödé", Topic: "east.t", Metadata: "\x00\xfe"},
	}
	for _, c := range cps {
		got, err := DecodeCheckpoint(c.Key(), c.Value())
		if err != nil || got != c {
			t.Errorf("Checkpoint round trip of %.40q: %+v, %v", c.Group, got, err)
		}
	}
	for _, ms := range []int64{0, 1, -1, 1700000000000, math.MaxInt64, math.MinInt64} {
		h := Heartbeat{SourceAlias: "s", TargetAlias: "t", Timestamp: time.UnixMilli(ms)}
		got, err := DecodeHeartbeat(h.Key(), h.Value())
		if err != nil || got.Timestamp.UnixMilli() != ms || got.SourceAlias != "s" || got.TargetAlias != "t" {
			t.Errorf("Heartbeat round trip of %d ms: %+v, %v", ms, got, err)
		}
	}
	var zero Heartbeat
	if got, err := DecodeHeartbeat(zero.Key(), zero.Value()); err != nil || !got.Timestamp.Equal(zero.Timestamp) {
		t.Errorf("zero Heartbeat round trip: %+v, %v", got, err)
	}
}

// decoder adapts the three decoders to one shape for table tests.
type decoder struct {
	name   string
	key    []byte
	value  []byte
	decode func(k, v []byte) error
}

func decoders() []decoder {
	s := OffsetSync{Topic: "orders", Partition: 3, UpstreamOffset: 100, DownstreamOffset: 42}
	c := Checkpoint{Group: "grp", Topic: "east.orders", Partition: 1, UpstreamOffset: 10, DownstreamOffset: 9, Metadata: "meta"}
	h := Heartbeat{SourceAlias: "east", TargetAlias: "west", Timestamp: time.UnixMilli(5)}
	return []decoder{
		{"OffsetSync", s.Key(), s.Value(), func(k, v []byte) error { _, err := DecodeOffsetSync(k, v); return err }},
		{"Checkpoint", c.Key(), c.Value(), func(k, v []byte) error { _, err := DecodeCheckpoint(k, v); return err }},
		{"Heartbeat", h.Key(), h.Value(), func(k, v []byte) error { _, err := DecodeHeartbeat(k, v); return err }},
	}
}

func TestMM2EveryTruncationRejected(t *testing.T) {
	for _, d := range decoders() {
		for n := 0; n < len(d.key); n++ {
			err := d.decode(d.key[:n], d.value)
			assertDecodeError(t, err, ErrTruncated, d.name, "key", n)
		}
		for n := 0; n < len(d.value); n++ {
			err := d.decode(d.key, d.value[:n])
			assertDecodeError(t, err, ErrTruncated, d.name, "value", n)
		}
		if err := d.decode(d.key, nil); !errors.Is(err, ErrTruncated) {
			t.Errorf("%s with nil value: %v, want ErrTruncated", d.name, err)
		}
	}
}

func TestMM2TrailingBytesRejected(t *testing.T) {
	for _, d := range decoders() {
		err := d.decode(append(bytes.Clone(d.key), 0), d.value)
		assertDecodeError(t, err, ErrTrailingBytes, d.name, "key", len(d.key)+1)
		var de *DecodeError
		if errors.As(err, &de) && (de.Offset != len(d.key) || de.Field != "") {
			t.Errorf("%s key trailing: offset %d field %q, want offset %d and no field", d.name, de.Offset, de.Field, len(d.key))
		}
		err = d.decode(d.key, append(bytes.Clone(d.value), 1, 2))
		assertDecodeError(t, err, ErrTrailingBytes, d.name, "value", len(d.value)+2)
	}
}

func assertDecodeError(t *testing.T, err, want error, record, part string, n int) {
	t.Helper()
	var de *DecodeError
	if !errors.Is(err, want) || !errors.As(err, &de) {
		t.Errorf("%s %s of %d bytes: err = %v, want %v", record, part, n, err, want)
		return
	}
	if de.Record != record || de.Part != part || de.Offset > n {
		t.Errorf("%s %s of %d bytes: error names %s %s offset %d", record, part, n, de.Record, de.Part, de.Offset)
	}
}

func TestMM2DecodeErrorsArePrecise(t *testing.T) {
	cases := []struct {
		name     string
		err      error
		want     error
		field    string
		offset   int
		contains string
	}{
		{
			name: "string length past the end",
			err:  second(DecodeOffsetSync(unhex(t, "0006 6f7264"), make([]byte, 16))),
			want: ErrTruncated, field: "topic", offset: 0,
			contains: `mm2: decode OffsetSync key: field "topic" at offset 0: truncated: STRING of length 6 needs 6 bytes, 3 remain`,
		},
		{
			name: "partition cut short",
			err:  second(DecodeOffsetSync(unhex(t, "0001 61 0000"), make([]byte, 16))),
			want: ErrTruncated, field: "partition", offset: 3,
			contains: "INT32 needs 4 bytes, 2 remain",
		},
		{
			name: "negative string length",
			err:  second(DecodeCheckpoint(unhex(t, "0001 67 ffff 00000000"), unhex(t, "0000"+strings.Repeat("00", 16)+"0000"))),
			want: ErrNegativeLength, field: "topic", offset: 3,
			contains: "length -1",
		},
		{
			name: "checkpoint version 1",
			err:  second(DecodeCheckpoint(unhex(t, "0000 0000 00000000"), unhex(t, "0001"+strings.Repeat("00", 16)+"0000"))),
			want: ErrUnsupportedVersion, field: "version", offset: 0,
			contains: "version 1, only 0 is supported",
		},
		{
			name: "heartbeat version -2",
			err:  second(DecodeHeartbeat(unhex(t, "0000 0000"), unhex(t, "fffe 0000000000000000"))),
			want: ErrUnsupportedVersion, field: "version", offset: 0,
			contains: "version -2",
		},
		{
			name: "metadata truncated",
			err:  second(DecodeCheckpoint(unhex(t, "0000 0000 00000000"), unhex(t, "0000"+strings.Repeat("00", 16)+"0005 6162"))),
			want: ErrTruncated, field: "metadata", offset: 18,
			contains: "STRING of length 5 needs 5 bytes, 2 remain",
		},
		{
			name: "heartbeat timestamp truncated",
			err:  second(DecodeHeartbeat(unhex(t, "0000 0000"), unhex(t, "0000 00000000"))),
			want: ErrTruncated, field: "timestamp", offset: 2,
			contains: "INT64 needs 8 bytes, 4 remain",
		},
	}
	for _, tc := range cases {
		var de *DecodeError
		if !errors.Is(tc.err, tc.want) || !errors.As(tc.err, &de) {
			t.Errorf("%s: err = %v, want %v", tc.name, tc.err, tc.want)
			continue
		}
		if de.Field != tc.field || de.Offset != tc.offset || !strings.Contains(de.Error(), tc.contains) {
			t.Errorf("%s: field %q offset %d message %q; want field %q offset %d containing %q",
				tc.name, de.Field, de.Offset, de.Error(), tc.field, tc.offset, tc.contains)
		}
	}
}

func second[T any](_ T, err error) error { return err }

func TestMM2ValidateAndPanicOnLongStrings(t *testing.T) {
	long := strings.Repeat("m", MaxStringLen+1)
	c := Checkpoint{Group: "g", Topic: "t", Metadata: long}
	err := c.Validate()
	if !errors.Is(err, ErrStringTooLong) || !strings.Contains(err.Error(), "metadata is 32768 bytes") {
		t.Fatalf("Validate() = %v", err)
	}
	if err := (OffsetSync{Topic: long}).Validate(); !errors.Is(err, ErrStringTooLong) {
		t.Errorf("OffsetSync.Validate() = %v", err)
	}
	if err := (Heartbeat{TargetAlias: long}).Validate(); !errors.Is(err, ErrStringTooLong) {
		t.Errorf("Heartbeat.Validate() = %v", err)
	}
	if err := (Checkpoint{Group: "g", Topic: "t"}).Validate(); err != nil {
		t.Errorf("Validate() of a short checkpoint = %v", err)
	}
	defer func() {
		if recover() == nil {
			t.Error("Value() of an over-long metadata did not panic")
		}
	}()
	_ = c.Value()
}

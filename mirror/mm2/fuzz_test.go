package mm2

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

// Every fuzz target checks: decoding never panics; a failure is a
// *DecodeError; a success re-encodes to exactly the bytes read (the format has
// one encoding per record) and decodes again to the same record.

func checkDecodeError(t *testing.T, err error) {
	t.Helper()
	var de *DecodeError
	if !errors.As(err, &de) {
		t.Fatalf("error %v (%T) is not a *DecodeError", err, err)
	}
}

func FuzzDecodeOffsetSync(f *testing.F) {
	s := OffsetSync{Topic: "orders", Partition: 3, UpstreamOffset: 100, DownstreamOffset: 42}
	f.Add(s.Key(), s.Value())
	f.Add([]byte{0xff, 0xff}, []byte{})
	f.Add([]byte{0, 0, 0, 0, 0, 0}, make([]byte, 17))
	f.Fuzz(func(t *testing.T, key, value []byte) {
		got, err := DecodeOffsetSync(key, value)
		if err != nil {
			checkDecodeError(t, err)
			return
		}
		if !bytes.Equal(got.Key(), key) || !bytes.Equal(got.Value(), value) {
			t.Fatalf("re-encoding %+v changed the bytes", got)
		}
		again, err := DecodeOffsetSync(got.Key(), got.Value())
		if err != nil || again != got {
			t.Fatalf("decode→encode→decode: %+v, %v; want %+v", again, err, got)
		}
	})
}

func FuzzDecodeCheckpoint(f *testing.F) {
	c := Checkpoint{Group: "g", Topic: "east.orders", Partition: 1, UpstreamOffset: 10, DownstreamOffset: 9, Metadata: "m"}
	f.Add(c.Key(), c.Value())
	f.Add(c.Key(), []byte{0, 1})
	f.Add([]byte{0, 1, 'g', 0x80, 0, 0, 0, 0, 0}, c.Value())
	f.Fuzz(func(t *testing.T, key, value []byte) {
		got, err := DecodeCheckpoint(key, value)
		if err != nil {
			checkDecodeError(t, err)
			return
		}
		if got.Validate() != nil {
			t.Fatalf("decoded %+v fails Validate", got)
		}
		if !bytes.Equal(got.Key(), key) || !bytes.Equal(got.Value(), value) {
			t.Fatalf("re-encoding %+v changed the bytes", got)
		}
		again, err := DecodeCheckpoint(got.Key(), got.Value())
		if err != nil || again != got {
			t.Fatalf("decode→encode→decode: %+v, %v; want %+v", again, err, got)
		}
	})
}

func FuzzDecodeHeartbeat(f *testing.F) {
	h := Heartbeat{SourceAlias: "east", TargetAlias: "west", Timestamp: time.UnixMilli(1700000000000)}
	f.Add(h.Key(), h.Value())
	f.Add([]byte{0, 0, 0, 0}, []byte{0x80, 0, 0x80, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{0, 0, 0, 0}, []byte{0, 0, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, key, value []byte) {
		got, err := DecodeHeartbeat(key, value)
		if err != nil {
			checkDecodeError(t, err)
			return
		}
		if !bytes.Equal(got.Key(), key) || !bytes.Equal(got.Value(), value) {
			t.Fatalf("re-encoding %+v changed the bytes", got)
		}
		again, err := DecodeHeartbeat(got.Key(), got.Value())
		if err != nil || again.SourceAlias != got.SourceAlias || again.TargetAlias != got.TargetAlias || !again.Timestamp.Equal(got.Timestamp) {
			t.Fatalf("decode→encode→decode: %+v, %v; want %+v", again, err, got)
		}
	})
}

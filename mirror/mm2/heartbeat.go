package mm2

import (
	"errors"
	"time"
)

// Heartbeat is emitted by a flow from SourceAlias to TargetAlias into the
// target's heartbeats topic; replicated onward, it traces the path records
// take. Timestamp is carried in milliseconds: Value drops anything finer, and
// DecodeHeartbeat returns it in UTC.
type Heartbeat struct {
	SourceAlias string
	TargetAlias string
	Timestamp   time.Time
}

// Validate reports an alias too long for a STRING.
func (h Heartbeat) Validate() error {
	return errors.Join(
		checkString("Heartbeat", "sourceClusterAlias", h.SourceAlias),
		checkString("Heartbeat", "targetClusterAlias", h.TargetAlias),
	)
}

// Key encodes sourceClusterAlias:STRING, targetClusterAlias:STRING. It panics
// if Validate fails.
func (h Heartbeat) Key() []byte {
	b := make([]byte, 0, 2+len(h.SourceAlias)+2+len(h.TargetAlias))
	b = appendString(b, h.SourceAlias)
	return appendString(b, h.TargetAlias)
}

// Value encodes version:INT16=0, timestamp:INT64 (Timestamp.UnixMilli, so the
// zero time.Time is written as -62135596800000, not 0).
func (h Heartbeat) Value() []byte {
	b := make([]byte, 0, 2+8)
	b = appendInt16(b, valueVersion)
	return appendInt64(b, h.Timestamp.UnixMilli())
}

// DecodeHeartbeat decodes a record of a heartbeats topic (or of a replicated
// <alias>.heartbeats). Errors are *DecodeError.
func DecodeHeartbeat(key, value []byte) (Heartbeat, error) {
	var h Heartbeat
	k := newReader("Heartbeat", "key", key)
	h.SourceAlias = k.string("sourceClusterAlias")
	h.TargetAlias = k.string("targetClusterAlias")
	if err := k.done(); err != nil {
		return Heartbeat{}, err
	}
	v := newReader("Heartbeat", "value", value)
	v.version()
	ms := v.int64("timestamp")
	if err := v.done(); err != nil {
		return Heartbeat{}, err
	}
	h.Timestamp = time.UnixMilli(ms).UTC()
	return h, nil
}

package mm2

import "errors"

// Checkpoint records a consumer group's committed offset translated to the
// target cluster. Topic is the target-side (renamed) topic; UpstreamOffset is
// the group's offset on the source, DownstreamOffset the translated one, and
// Metadata the commit metadata ("" when the group set none).
type Checkpoint struct {
	Group            string
	Topic            string
	Partition        int32
	UpstreamOffset   int64
	DownstreamOffset int64
	Metadata         string
}

// Validate reports a Group, Topic or Metadata too long for a STRING.
func (c Checkpoint) Validate() error {
	return errors.Join(
		checkString("Checkpoint", "group", c.Group),
		checkString("Checkpoint", "topic", c.Topic),
		checkString("Checkpoint", "metadata", c.Metadata),
	)
}

// Key encodes group:STRING, topic:STRING, partition:INT32. It panics if
// Validate fails.
func (c Checkpoint) Key() []byte {
	b := make([]byte, 0, 2+len(c.Group)+2+len(c.Topic)+4)
	b = appendString(b, c.Group)
	b = appendString(b, c.Topic)
	return appendInt32(b, c.Partition)
}

// Value encodes version:INT16=0, upstreamOffset:INT64, offset:INT64,
// metadata:STRING. It panics if Validate fails.
func (c Checkpoint) Value() []byte {
	b := make([]byte, 0, 2+8+8+2+len(c.Metadata))
	b = appendInt16(b, valueVersion)
	b = appendInt64(b, c.UpstreamOffset)
	b = appendInt64(b, c.DownstreamOffset)
	return appendString(b, c.Metadata)
}

// DecodeCheckpoint decodes a record of a <source>.checkpoints.internal topic.
// Errors are *DecodeError.
func DecodeCheckpoint(key, value []byte) (Checkpoint, error) {
	var c Checkpoint
	k := newReader("Checkpoint", "key", key)
	c.Group = k.string("group")
	c.Topic = k.string("topic")
	c.Partition = k.int32("partition")
	if err := k.done(); err != nil {
		return Checkpoint{}, err
	}
	v := newReader("Checkpoint", "value", value)
	v.version()
	c.UpstreamOffset = v.int64("upstreamOffset")
	c.DownstreamOffset = v.int64("offset")
	c.Metadata = v.string("metadata")
	if err := v.done(); err != nil {
		return Checkpoint{}, err
	}
	return c, nil
}

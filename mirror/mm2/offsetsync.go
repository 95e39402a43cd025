package mm2

// OffsetSync records that the record at UpstreamOffset in the source partition
// was written at DownstreamOffset in the target's remote topic. Topic is the
// source-side name.
type OffsetSync struct {
	Topic            string
	Partition        int32
	UpstreamOffset   int64
	DownstreamOffset int64
}

// Validate reports a Topic too long for a STRING.
func (s OffsetSync) Validate() error {
	return checkString("OffsetSync", "topic", s.Topic)
}

// Key encodes topic:STRING, partition:INT32. It panics if Validate fails.
func (s OffsetSync) Key() []byte {
	b := make([]byte, 0, 2+len(s.Topic)+4)
	b = appendString(b, s.Topic)
	return appendInt32(b, s.Partition)
}

// Value encodes upstreamOffset:INT64, offset:INT64 (no version).
func (s OffsetSync) Value() []byte {
	b := make([]byte, 0, 16)
	b = appendInt64(b, s.UpstreamOffset)
	return appendInt64(b, s.DownstreamOffset)
}

// DecodeOffsetSync decodes a record of an mm2-offset-syncs topic. Errors are
// *DecodeError.
func DecodeOffsetSync(key, value []byte) (OffsetSync, error) {
	var s OffsetSync
	k := newReader("OffsetSync", "key", key)
	s.Topic = k.string("topic")
	s.Partition = k.int32("partition")
	if err := k.done(); err != nil {
		return OffsetSync{}, err
	}
	v := newReader("OffsetSync", "value", value)
	s.UpstreamOffset = v.int64("upstreamOffset")
	s.DownstreamOffset = v.int64("offset")
	if err := v.done(); err != nil {
		return OffsetSync{}, err
	}
	return s, nil
}

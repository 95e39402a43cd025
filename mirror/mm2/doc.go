// Package mm2 reads and writes MirrorMaker 2's binary records — offset syncs,
// checkpoints and heartbeats — byte for byte as MM2 does, so MM2's own tools
// (RemoteClusterUtils, MirrorClient, the checkpoint connector) can read what
// kdr writes and kdr can take over from a running MM2. It also names MM2's
// internal topics.
//
// # Encoding
//
// All records use the Kafka protocol's Struct serialisation: fields in order,
// no tags, no framing, big-endian integers. A STRING is an INT16 byte length
// followed by that many bytes; MM2's strings are never null. Keys carry no
// version. Checkpoint and Heartbeat values start with an INT16 version, which
// is always 0; OffsetSync values have no version.
//
// OffsetSync — topic mm2-offset-syncs.<target>.internal, partition 0, on the
// source cluster. The key names the source partition; offset is downstream.
//
//	key    +--------+---------------+-----------+
//	       | len    | topic         | partition |
//	       | INT16  | len bytes     | INT32     |
//	       +--------+---------------+-----------+
//	       0        2               2+len       6+len
//	       "orders"/3: 00 06 6f 72 64 65 72 73 00 00 00 03
//
//	value  +----------------+----------------+
//	       | upstreamOffset | offset         |
//	       | INT64          | INT64          |
//	       +----------------+----------------+
//	       0                8                16
//
// Checkpoint — topic <source>.checkpoints.internal on the target cluster. The
// key's topic is the target-side (renamed) topic; offset is the translated
// offset on the target; metadata is the group's commit metadata.
//
//	key    +-------+-------+-------+-------+-----------+
//	       | glen  | group | tlen  | topic | partition |
//	       | INT16 | bytes | INT16 | bytes | INT32     |
//	       +-------+-------+-------+-------+-----------+
//
//	value  +---------+----------------+--------+-------+----------+
//	       | version | upstreamOffset | offset | mlen  | metadata |
//	       | INT16=0 | INT64          | INT64  | INT16 | bytes    |
//	       +---------+----------------+--------+-------+----------+
//	       0         2                10       18      20         20+mlen
//
// Heartbeat — topic heartbeats on the target cluster of the emitting flow.
//
//	key    +-------+--------------------+-------+--------------------+
//	       | slen  | sourceClusterAlias | tlen  | targetClusterAlias |
//	       | INT16 | bytes              | INT16 | bytes              |
//	       +-------+--------------------+-------+--------------------+
//
//	value  +---------+----------------------------+
//	       | version | timestamp (ms since epoch) |
//	       | INT16=0 | INT64                      |
//	       +---------+----------------------------+
//	       0         2                            10
//
// # Decoding rules, and where they differ from MM2
//
//   - Truncation is always an error (*DecodeError wrapping ErrTruncated), as it
//     is in MM2, naming the field and the byte offset where it starts.
//   - A negative string length is an error (ErrNegativeLength), as in MM2;
//     MM2 writes no null strings, so -1 is not read as null.
//   - Trailing bytes after the last field are an error (ErrTrailingBytes).
//     MM2 ignores them. kdr is stricter because these topics are compacted by
//     key: two keys that decode to the same sync but differ in trailing bytes
//     would both survive compaction, and decode→encode would not give back the
//     bytes that were read. MM2 never writes trailing bytes, so nothing MM2
//     wrote is refused.
//   - A value version other than 0 is an error (ErrUnsupportedVersion) that
//     names the version. MM2 only asserts version 0 with a Java assert, which
//     is off in production, and would read a future version as version 0;
//     refusing is safer than guessing at a layout.
//   - Strings that are not valid UTF-8 are accepted and kept byte for byte.
//     MM2 would turn bad sequences into U+FFFD; keeping the bytes makes
//     decode→encode exact and lets a key be looked up again verbatim.
//
// # Encoding limits
//
// A STRING holds at most 32767 bytes (MM2 refuses longer ones too). Topic
// names (≤ 249 bytes) and cluster aliases never come near; a group ID or
// commit metadata can. Validate reports such a record; Key and Value panic on
// one, so call Validate first wherever the strings come from outside.
package mm2

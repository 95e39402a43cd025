package wire

import (
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Request is one decoded request with the header fields handlers need.
type Request struct {
	Key           int16
	Version       int16
	CorrelationID int32
	ClientID      string
	Msg           kmsg.Request
	Remote        net.Addr
	Received      time.Time
}

// Errors that end a connection. They are logged and counted, never sent.
var (
	ErrFrameTooLarge      = errors.New("wire: request size over socket.request.max.bytes")
	ErrFrameInvalid       = errors.New("wire: negative or too small request size")
	ErrHeaderTruncated    = errors.New("wire: request header truncated")
	ErrUnknownAPI         = errors.New("wire: unknown API key")
	ErrUnsupportedVersion = errors.New("wire: unsupported API version")
	ErrBodyInvalid        = errors.New("wire: request body does not decode")
)

// minFrame is the smallest request a client can send: api key, api version and
// correlation id.
const minFrame = 8

// header is the fixed part of a request header: it is all we can trust before
// we know whether the API and version are ones we implement.
type header struct {
	key, version int16
	correlation  int32
}

func peekHeader(body []byte) (header, error) {
	if len(body) < minFrame {
		return header{}, ErrHeaderTruncated
	}
	r := kbin.Reader{Src: body}
	return header{key: r.Int16(), version: r.Int16(), correlation: r.Int32()}, nil
}

// decode parses the rest of the header (client id and, for flexible versions,
// tagged fields) and the body, for an API and version already known to be
// registered.
func decode(h header, body []byte) (clientID string, msg kmsg.Request, err error) {
	msg = kmsg.RequestForKey(h.key)
	msg.SetVersion(h.version)
	r := kbin.Reader{Src: body[minFrame:]}
	// Header v1+ carries a nullable client id; every API version we register
	// uses header v1 or v2 (v0 exists only for ControlledShutdown v0).
	if cid := r.NullableString(); cid != nil {
		clientID = *cid
	}
	if msg.IsFlexible() {
		skipTags(&r)
	}
	if err := r.Complete(); err != nil {
		return "", nil, fmt.Errorf("%w: %v", ErrHeaderTruncated, err)
	}
	if err := msg.ReadFrom(r.Src); err != nil {
		return "", nil, fmt.Errorf("%w: %s v%d: %v", ErrBodyInvalid, kmsg.NameForKey(h.key), h.version, err)
	}
	return clientID, msg, nil
}

// appendResponse frames resp: size, correlation id, the response header's
// tagged fields when the version is flexible (never for ApiVersions, whose
// response header is always v0 so that clients can parse it before they know
// what the broker supports), then the body.
func appendResponse(dst []byte, correlation int32, resp kmsg.Response) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	dst = kbin.AppendInt32(dst, correlation)
	if resp.IsFlexible() && resp.Key() != kmsg.ApiVersions.Int16() {
		dst = append(dst, 0)
	}
	dst = resp.AppendTo(dst)
	size := uint32(len(dst) - start - 4)
	dst[start], dst[start+1], dst[start+2], dst[start+3] = byte(size>>24), byte(size>>16), byte(size>>8), byte(size)
	return dst
}

// skipTags skips a tagged-field section. Unlike kmsg.SkipTags it stops as
// soon as the input runs out: every tag takes at least two bytes, so a count
// beyond that is garbage, and looping on it (up to 2^32 times) would burn
// seconds of CPU for a 15-byte request.
func skipTags(r *kbin.Reader) {
	num := r.Uvarint()
	if int64(num) > int64(len(r.Src)/2) {
		r.Src = nil // makes Complete fail: the header is invalid
		r.Uvarint()
		return
	}
	for ; num > 0 && r.Ok(); num-- {
		r.Uvarint()
		r.Span(int(r.Uvarint()))
	}
}

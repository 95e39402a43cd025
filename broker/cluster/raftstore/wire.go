package raftstore

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/kdr-io/kdr/broker/cluster"
)

// kdr RPC frames, after the connection's connRPC byte. Integers are big
// endian; one request is answered by one response before the next request on
// the same connection.
//
//	request:  | u32 length of the rest | u32 timeout ms | u8 len(kind) | kind | body |
//	response: | u32 length of the rest | u8 status | payload |
//
// status 0: payload is the handler's answer. status 1: payload is a JSON
// wireError.
const (
	maxFrame     = 64 << 20
	statusOK     = 0
	statusFailed = 1
)

// wireError is a failed request's answer.
type wireError struct {
	// Code is the Kafka error code of a *cluster.Error, 0 otherwise.
	Code    int16  `json:"code,omitempty"`
	Message string `json:"message"`
	// NotLeader means the receiver is not the leader; the request was not
	// handled and may be sent again to the leader.
	NotLeader bool `json:"not_leader,omitempty"`
	// OutcomeUnknown carries ErrOutcomeUnknown across.
	OutcomeUnknown bool `json:"outcome_unknown,omitempty"`
}

// RemoteError is a handler's failure on another node that carries no Kafka
// error code.
type RemoteError struct {
	Addr    string // the node that answered
	Kind    string // the request kind
	Message string
}

func (e *RemoteError) Error() string {
	return fmt.Sprintf("raftstore: %s on %s: %s", e.Kind, e.Addr, e.Message)
}

func toWireError(err error) wireError {
	we := wireError{Message: err.Error(), NotLeader: errors.Is(err, ErrNotLeader), OutcomeUnknown: errors.Is(err, ErrOutcomeUnknown)}
	var ce *cluster.Error
	if errors.As(err, &ce) && ce.Code != nil {
		we.Code = ce.Code.Code
		we.Message = ce.Message
	}
	return we
}

func (we wireError) err(addr, kind string) error {
	switch {
	case we.NotLeader:
		msg := strings.TrimPrefix(we.Message, ErrNotLeader.Error()+": ")
		return fmt.Errorf("%w (%s answered %s: %s)", ErrNotLeader, addr, kind, msg)
	case we.OutcomeUnknown:
		msg := strings.TrimPrefix(we.Message, ErrOutcomeUnknown.Error()+": ")
		return fmt.Errorf("%w (%s answered %s: %s)", ErrOutcomeUnknown, addr, kind, msg)
	case we.Code != 0:
		return kafkaError(we.Code, we.Message)
	default:
		return &RemoteError{Addr: addr, Kind: kind, Message: we.Message}
	}
}

// kafkaError rebuilds a *cluster.Error from its code and message.
func kafkaError(code int16, msg string) error {
	ke, ok := kerr.ErrorForCode(code).(*kerr.Error)
	if !ok {
		ke = kerr.UnknownServerError
	}
	return &cluster.Error{Code: ke, Message: msg}
}

func writeRequest(w io.Writer, timeout time.Duration, kind string, body []byte) error {
	if len(kind) == 0 || len(kind) > 255 {
		return fmt.Errorf("raftstore: request kind %q must be 1-255 bytes", kind)
	}
	n := 4 + 1 + len(kind) + len(body)
	if n > maxFrame {
		return fmt.Errorf("raftstore: %s request of %d bytes exceeds %d", kind, n, maxFrame)
	}
	buf := make([]byte, 0, 4+n)
	buf = binary.BigEndian.AppendUint32(buf, uint32(n))
	buf = binary.BigEndian.AppendUint32(buf, uint32(min(max(timeout.Milliseconds(), 1), 1<<31)))
	buf = append(buf, byte(len(kind)))
	buf = append(buf, kind...)
	buf = append(buf, body...)
	_, err := w.Write(buf)
	return err
}

func readRequest(r *bufio.Reader) (kind string, body []byte, timeout time.Duration, err error) {
	frame, _, err := readFrame(r)
	if err != nil {
		return "", nil, 0, err
	}
	if len(frame) < 5 || len(frame) < 5+int(frame[4]) {
		return "", nil, 0, fmt.Errorf("raftstore: short request frame (%d bytes)", len(frame))
	}
	timeout = time.Duration(binary.BigEndian.Uint32(frame)) * time.Millisecond
	kl := int(frame[4])
	return string(frame[5 : 5+kl]), frame[5+kl:], timeout, nil
}

func writeResponse(w io.Writer, body []byte, herr error) error {
	status := byte(statusOK)
	if herr != nil {
		status = statusFailed
		var err error
		if body, err = json.Marshal(toWireError(herr)); err != nil {
			return err
		}
	}
	n := 1 + len(body)
	if n > maxFrame {
		return writeResponse(w, nil, fmt.Errorf("raftstore: response of %d bytes exceeds %d", n, maxFrame))
	}
	buf := make([]byte, 0, 4+n)
	buf = binary.BigEndian.AppendUint32(buf, uint32(n))
	buf = append(buf, status)
	buf = append(buf, body...)
	_, err := w.Write(buf)
	return err
}

// readResponse returns the answer, or the remote failure as a wireError.
// started reports whether any byte of the response arrived, which tells a
// stale pooled connection (nothing came back) from a failure mid-answer.
func readResponse(r *bufio.Reader) (body []byte, we *wireError, started bool, err error) {
	frame, started, err := readFrame(r)
	if err != nil {
		return nil, nil, started, err
	}
	if len(frame) < 1 {
		return nil, nil, true, fmt.Errorf("raftstore: empty response frame")
	}
	switch frame[0] {
	case statusOK:
		return frame[1:], nil, true, nil
	case statusFailed:
		var e wireError
		if err := json.Unmarshal(frame[1:], &e); err != nil {
			return nil, nil, true, fmt.Errorf("raftstore: decoding error response: %w", err)
		}
		return nil, &e, true, nil
	default:
		return nil, nil, true, fmt.Errorf("raftstore: unknown response status %d", frame[0])
	}
}

func readFrame(r *bufio.Reader) (frame []byte, started bool, err error) {
	var hdr [4]byte
	n, err := io.ReadFull(r, hdr[:])
	if err != nil {
		return nil, n > 0, err
	}
	size := binary.BigEndian.Uint32(hdr[:])
	if size > maxFrame {
		return nil, true, fmt.Errorf("raftstore: frame of %d bytes exceeds %d", size, maxFrame)
	}
	frame = make([]byte, size)
	if _, err := io.ReadFull(r, frame); err != nil {
		return nil, true, err
	}
	return frame, true, nil
}

package wire

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime/debug"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// outgoing is one response waiting for the writer goroutine.
type outgoing struct {
	key         int16
	correlation int32
	resp        kmsg.Response
}

// serve runs one connection: this goroutine reads and handles requests in
// order; a second goroutine writes responses in the same order.
func (s *Server) serve(nc net.Conn) {
	defer s.untrack(nc)
	ctx, cancel := context.WithCancel(s.ctx)
	defer cancel()

	out := make(chan outgoing, s.cfg.MaxQueuedResponses)
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		if err := s.writeLoop(nc, out); err != nil && ctx.Err() == nil {
			s.log.Debug("connection write failed", "remote", nc.RemoteAddr(), "err", err)
		}
		// A dead socket must also stop the reader, which may be blocked
		// in a read; closing the conn unblocks it.
		nc.Close()
	}()

	err := s.readLoop(ctx, nc, out)
	close(out)
	<-writerDone
	nc.Close()
	switch {
	case err == nil || errors.Is(err, io.EOF) || ctx.Err() != nil || errors.Is(err, net.ErrClosed):
	default:
		s.metrics.connectionErrors.WithLabelValues(reasonLabel(err)).Inc()
		s.log.Info("closing connection", "remote", nc.RemoteAddr(), "err", err)
	}
}

// maxSpareBody bounds the buffer a connection keeps for its next request.
const maxSpareBody = 16 << 20

func (s *Server) readLoop(ctx context.Context, nc net.Conn, out chan<- outgoing) error {
	br := bufio.NewReaderSize(nc, 64<<10)
	var sizeBuf [4]byte
	// spare is the buffer of the last request whose API releases it
	// (Produce), free for the next one. A fresh buffer per produce request
	// was a busy broker's largest allocation: zeroed, and faulted in anew
	// after the collector returned the last ones' pages.
	var spare []byte
	for {
		if err := nc.SetReadDeadline(time.Now().Add(s.cfg.IdleTimeout)); err != nil {
			return err
		}
		if _, err := io.ReadFull(br, sizeBuf[:]); err != nil {
			return err
		}
		size := int32(binary.BigEndian.Uint32(sizeBuf[:]))
		switch {
		case size > s.cfg.MaxRequestBytes:
			return fmt.Errorf("%w: %d > %d", ErrFrameTooLarge, size, s.cfg.MaxRequestBytes)
		case size < minFrame:
			return fmt.Errorf("%w: %d", ErrFrameInvalid, size)
		}
		// A request gets its own buffer unless the last one released its
		// own: kmsg decodes byte fields as sub-slices, and handlers (group
		// member metadata) may keep them after returning.
		var body []byte
		if int(size) <= cap(spare) {
			body, spare = spare[:size], nil
		} else {
			body = make([]byte, size)
		}
		if _, err := io.ReadFull(br, body); err != nil {
			return fmt.Errorf("%w: %v", ErrHeaderTruncated, err)
		}
		received := time.Now()
		s.metrics.bytesIn.Add(float64(size + 4))

		h, err := peekHeader(body)
		if err != nil {
			return err
		}
		api, ok := s.reg.Lookup(h.key)
		if !ok {
			return fmt.Errorf("%w %d", ErrUnknownAPI, h.key)
		}
		if h.version < api.MinVersion || h.version > api.MaxVersion {
			if h.key == kmsg.ApiVersions.Int16() {
				// KIP-511: answer in v0 so any client can read it.
				out <- outgoing{key: h.key, correlation: h.correlation, resp: s.unsupportedApiVersions()}
				continue
			}
			return fmt.Errorf("%w: %s v%d (supported %d..%d)", ErrUnsupportedVersion, kmsg.NameForKey(h.key), h.version, api.MinVersion, api.MaxVersion)
		}
		clientID, msg, err := decode(h, body)
		if err != nil {
			return err
		}
		req := &Request{Key: h.key, Version: h.version, CorrelationID: h.correlation, ClientID: clientID, Msg: msg, Remote: nc.RemoteAddr(), Received: received}
		resp, err := s.handle(ctx, api, req)
		s.metrics.observe(h.key, received, err)
		if err != nil {
			return fmt.Errorf("%s v%d: %w", kmsg.NameForKey(h.key), h.version, err)
		}
		if api.ReleasesBody && cap(body) <= maxSpareBody {
			spare = body
		}
		if resp == nil {
			continue // acks=0 produce: Kafka sends nothing back
		}
		select {
		case out <- outgoing{key: h.key, correlation: h.correlation, resp: resp}:
		case <-ctx.Done():
			release(resp)
			return ctx.Err()
		}
	}
}

// ErrHandlerPanic ends a connection whose request crashed its handler; the
// broker keeps serving everyone else.
var ErrHandlerPanic = errors.New("wire: handler panicked")

func (s *Server) handle(ctx context.Context, api API, req *Request) (resp kmsg.Response, err error) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("handler panic", "api", kmsg.NameForKey(req.Key), "version", req.Version, "client_id", req.ClientID,
				"remote", req.Remote, "panic", r, "stack", string(debug.Stack()))
			resp, err = nil, fmt.Errorf("%w: %v", ErrHandlerPanic, r)
		}
	}()
	return api.Handle(ctx, req)
}

func (s *Server) unsupportedApiVersions() kmsg.Response {
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.Version = 0
	resp.ErrorCode = kerr.UnsupportedVersion.Code
	resp.ApiKeys = s.reg.Versions()
	return resp
}

func (s *Server) writeLoop(nc net.Conn, in <-chan outgoing) error {
	bw := bufio.NewWriterSize(nc, 64<<10)
	var buf []byte
	var werr error
	// After a write error keep draining: the reader may be blocked handing
	// us a response, and streamed responses hold files to release.
	for o := range in {
		if werr != nil {
			release(o.resp)
			continue
		}
		var n int
		if st, ok := o.resp.(Streamed); ok {
			n, werr = writeStreamed(bw, buf[:0], o.correlation, st)
			st.Release()
		} else {
			buf = appendResponse(buf[:0], o.correlation, o.resp)
			n, werr = bw.Write(buf)
			if cap(buf) > 4<<20 {
				buf = nil // do not pin one huge response per connection
			}
		}
		s.metrics.bytesOut.Add(float64(n))
		// Flush only when nothing else is queued, so pipelined responses
		// share a syscall.
		if werr == nil && len(in) == 0 {
			werr = bw.Flush()
		}
		if werr != nil {
			nc.Close() // unblock the reader
		}
	}
	if werr != nil {
		return werr
	}
	return bw.Flush()
}

func release(resp kmsg.Response) {
	if st, ok := resp.(Streamed); ok {
		st.Release()
	}
}

// reasonLabel turns a connection-ending error into a bounded metric label.
func reasonLabel(err error) string {
	for _, e := range []struct {
		err   error
		label string
	}{
		{ErrFrameTooLarge, "frame_too_large"},
		{ErrFrameInvalid, "frame_invalid"},
		{ErrHeaderTruncated, "truncated"},
		{ErrUnknownAPI, "unknown_api"},
		{ErrUnsupportedVersion, "unsupported_version"},
		{ErrBodyInvalid, "invalid_body"},
		{ErrHandlerPanic, "handler_panic"},
	} {
		if errors.Is(err, e.err) {
			return e.label
		}
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "idle_timeout"
	}
	return "other"
}

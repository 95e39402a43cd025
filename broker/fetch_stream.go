package broker

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kdr-io/kdr/broker/storage"
	"github.com/kdr-io/kdr/broker/wire"
)

// fetchStream is a Fetch response whose record batches go from the segment
// files to the socket with sendfile, never through the broker's memory.
//
// kmsg still encodes every field: each partition with data carries a
// 16-byte marker as its records — a per-broker random prefix plus the
// partition's index — and after encoding, each marker (with its length
// prefix) is replaced on the wire by the real length prefix and the file
// bytes. The prefix is never sent to anyone, so no field can contain it.
type fetchStream struct {
	*kmsg.FetchResponse
	marker [12]byte
	parts  []*kmsg.FetchResponseTopicPartition
	slices []*storage.FileSlice
}

var _ wire.Streamed = (*fetchStream)(nil)

const markerLen = 16

func newFetchMarker() (m [12]byte) {
	if _, err := rand.Read(m[:]); err != nil {
		panic(fmt.Sprintf("broker: crypto/rand failed: %v", err))
	}
	return m
}

// add registers a partition's file section; its records are sent from it.
func (f *fetchStream) add(p *kmsg.FetchResponseTopicPartition, s *storage.FileSlice) {
	f.parts = append(f.parts, p)
	f.slices = append(f.slices, s)
}

func (f *fetchStream) markerFor(i int) []byte {
	m := make([]byte, 0, markerLen)
	m = append(m, f.marker[:]...)
	return binary.BigEndian.AppendUint32(m, uint32(i))
}

// lengthPrefix encodes a records length the way this version does:
// compact nullable bytes (uvarint n+1) when flexible, int32 otherwise.
func (f *fetchStream) lengthPrefix(dst []byte, n int) []byte {
	if f.IsFlexible() {
		return kbin.AppendUvarint(dst, uint32(n)+1)
	}
	return kbin.AppendInt32(dst, int32(n))
}

// EncodeStream implements wire.Streamed.
func (f *fetchStream) EncodeStream() (int, func(*bufio.Writer) error) {
	for i, p := range f.parts {
		p.RecordBatches = f.markerFor(i)
	}
	body := f.FetchResponse.AppendTo(nil)
	// Split body at each marker. kmsg writes partitions in order, so each
	// marker is searched for after the previous one.
	type piece struct {
		bytes []byte
		slice *storage.FileSlice
	}
	pieces := make([]piece, 0, 2*len(f.parts)+1)
	size := 0
	rest := body
	for i, s := range f.slices {
		marked := f.lengthPrefix(nil, markerLen)
		marked = append(marked, f.markerFor(i)...)
		at := bytes.Index(rest, marked)
		if at < 0 {
			// Cannot happen unless kmsg changes how it encodes records;
			// fail the write (the client reconnects) rather than send
			// a corrupt frame.
			return 0, func(*bufio.Writer) error {
				return fmt.Errorf("broker: fetch response marker %d not found; kmsg encoding changed?", i)
			}
		}
		head := f.lengthPrefix(append([]byte(nil), rest[:at]...), s.Size())
		pieces = append(pieces, piece{bytes: head}, piece{slice: s})
		size += len(head) + s.Size()
		rest = rest[at+len(marked):]
	}
	pieces = append(pieces, piece{bytes: rest})
	size += len(rest)
	return size, func(w *bufio.Writer) error {
		for _, p := range pieces {
			if p.slice == nil {
				if _, err := w.Write(p.bytes); err != nil {
					return err
				}
				continue
			}
			// Flushing first lets bufio hand the copy to the
			// socket's ReadFrom, which uses sendfile.
			if err := w.Flush(); err != nil {
				return err
			}
			n, err := p.slice.WriteTo(w)
			if err != nil {
				return err
			}
			if n != int64(p.slice.Size()) {
				return fmt.Errorf("broker: fetch sent %d of %d record bytes: %w", n, p.slice.Size(), io.ErrShortWrite)
			}
		}
		return nil
	}
}

// Release implements wire.Streamed.
func (f *fetchStream) Release() {
	for _, s := range f.slices {
		s.Close()
	}
	f.slices = nil
}

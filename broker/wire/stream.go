package wire

import (
	"bufio"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Streamed is implemented by responses whose body is partly copied from
// files at write time instead of being encoded into memory first: Fetch
// responses send record batches from segment files with sendfile.
type Streamed interface {
	kmsg.Response
	// EncodeStream encodes the response and returns the body's length and
	// a function that writes exactly that many bytes to w. A file section
	// is written by flushing w and copying into it, which hands the
	// socket to sendfile.
	EncodeStream() (size int, write func(w *bufio.Writer) error)
	// Release frees the files of a response that will not be written
	// (the connection died first). Called at most once, after or instead
	// of the write.
	Release()
}

// writeStreamed frames and writes a Streamed response.
func writeStreamed(bw *bufio.Writer, hdr []byte, correlation int32, st Streamed) (int, error) {
	size, write := st.EncodeStream()
	hdr = hdr[:0]
	extra := 4
	if st.IsFlexible() && st.Key() != kmsg.ApiVersions.Int16() {
		extra++
	}
	total := uint32(extra + size)
	hdr = append(hdr, byte(total>>24), byte(total>>16), byte(total>>8), byte(total),
		byte(correlation>>24), byte(correlation>>16), byte(correlation>>8), byte(correlation))
	if extra == 5 {
		hdr = append(hdr, 0)
	}
	if _, err := bw.Write(hdr); err != nil {
		return 0, err
	}
	return len(hdr) + size, write(bw)
}

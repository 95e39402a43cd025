package mirror

import (
	"encoding/binary"
	"hash/crc32"
	"math/rand/v2"
	"testing"
)

// TestForwardStampCRC checks the CRC that stamp derives from the old one
// against a checksum of the whole stamped batch, for batches of many sizes
// stamped several times over (a retry after a new producer ID).
func TestForwardStampCRC(t *testing.T) {
	z := newCRCZeros()
	rng := rand.New(rand.NewPCG(3, 4))
	tab := crc32.MakeTable(crc32.Castagnoli)
	for _, n := range []int{0, 1, 7, 100, 4096, 65537, 1 << 20} {
		data := make([]byte, batchHeaderLen+n)
		for i := range data {
			data[i] = byte(rng.Uint32())
		}
		binary.BigEndian.PutUint32(data[offBatchCRC:], crc32.Checksum(data[offBatchAttrs:], tab))
		b := &rawBatch{data: data}
		for try := range 3 {
			b.stamp(rng.Int64(), int16(rng.Uint32()), int32(rng.Uint32()), z)
			want := crc32.Checksum(data[offBatchAttrs:], tab)
			if got := binary.BigEndian.Uint32(data[offBatchCRC:]); got != want {
				t.Fatalf("%d record bytes, stamp %d: CRC %08x, want %08x", n, try, got, want)
			}
		}
		// A batch damaged before the stamp stays damaged after it.
		data[len(data)-1] ^= 1
		b.stamp(1, 2, 3, z)
		if got := binary.BigEndian.Uint32(data[offBatchCRC:]); got == crc32.Checksum(data[offBatchAttrs:], tab) {
			t.Fatalf("%d record bytes: a damaged batch got a valid CRC", n)
		}
	}
}

package benchkit

import "time"

// MemmoveGBps is how fast this machine copies memory right now: 64 MiB
// copied eight times between two buffers touched beforehand, in GB/s
// (10^9 bytes). A bench prints it next to a copy's figures. The bench VM
// goes through stretches in which memory copies take twice as long, with
// the same binaries and nothing else running; copiers that move bytes
// (kdr's mirror, the brokers) lose more in them than ones that spend
// their CPU per record (the pipe), so a ratio between the two reads
// differently in such a stretch. This shows whether plain memory copies
// were slow at the time; a copy can still run dearer with it at its usual
// speed.
func MemmoveGBps() float64 {
	const size, rounds = 64 << 20, 8
	src, dst := make([]byte, size), make([]byte, size)
	for i := range src {
		src[i] = byte(i)
	}
	copy(dst, src) // fault dst's pages in before the clock starts
	start := time.Now()
	for range rounds {
		copy(dst, src)
	}
	return float64(size*rounds) / time.Since(start).Seconds() / 1e9
}

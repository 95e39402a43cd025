package mirror

import (
	"crypto/rand"
	"fmt"
	"testing"
	"time"
)

// TestMirrorMaxBytesPerSecond: a worker capped at 256 KiB/s copies 1.5 MiB
// of records no faster than the cap allows (its first second's burst and
// one fetch's overdraft aside), loses nothing, and counts the time it held
// back in kdr_mirror_throttle_seconds_total. Forwarding batches and
// copying records alike.
func TestMirrorMaxBytesPerSecond(t *testing.T) {
	for _, forward := range []bool{true, false} {
		t.Run(fmt.Sprintf("forward=%v", forward), func(t *testing.T) {
			east, west := startCluster(t), startCluster(t)
			const parts, n, rate = 2, 1536, 256 << 10
			east.createTopic("orders", parts)
			// Many small batches, so that no single batch holds much of
			// the total (a broker returns a first batch whole), of values
			// that do not compress (franz-go compresses by default).
			for i := 0; i < n; i += 32 {
				recs := seqRecords("orders", parts, i, 32)
				for _, r := range recs {
					pad := make([]byte, 1000)
					rand.Read(pad)
					r.Value = append(r.Value, pad...)
				}
				east.produce(recs...)
			}
			f := testFlow(east, west, "east", "west")
			f.ForwardBatches = forward
			f.MaxBytesPerSecond = rate
			start := time.Now()
			w := startWorker(t, f)
			waitCount(t, west, "east.orders", n, 60*time.Second)
			took := time.Since(start)
			checkFirstCopiesInOrder(t, west.readAll("east.orders"))
			// At least n KiB read at 256 KiB/s, less the first second's
			// burst, the last fetch's overdraft and a fetch the consumer
			// may hold ahead (each at most a second of bytes): 3 s at the
			// least. Uncapped this copy takes well under a second.
			if min := time.Duration(float64(n<<10-3*rate) / rate * float64(time.Second)); took < min {
				t.Fatalf("%d KiB copied in %v at a cap of %d KiB/s; want at least %v", n, took, rate>>10, min)
			}
			held := metricSum(t, w.reg, "kdr_mirror_throttle_seconds_total", map[string]string{"flow": "east->west"})
			if held < 1 {
				t.Fatalf("kdr_mirror_throttle_seconds_total %v after a throttled copy of %v", held, took)
			}
			t.Logf("%d KiB in %v (%.0f KiB/s), %.1f s held back", n, took.Round(time.Millisecond), float64(n)/took.Seconds(), held)
		})
	}
}

// TestMirrorMaxBytesPerSecondCountsStoredBytes: the cap counts what is read
// from the source, batches as stored: 1536 KiB of records that compress to
// about a tenth (franz-go's producer compresses with snappy by default) fit
// the first second's 256 KiB, so neither path holds back at all.
func TestMirrorMaxBytesPerSecondCountsStoredBytes(t *testing.T) {
	for _, forward := range []bool{true, false} {
		t.Run(fmt.Sprintf("forward=%v", forward), func(t *testing.T) {
			east, west := startCluster(t), startCluster(t)
			const parts, n = 2, 1536
			east.createTopic("orders", parts)
			for i := 0; i < n; i += 32 {
				recs := seqRecords("orders", parts, i, 32)
				for _, r := range recs {
					r.Value = append(r.Value, make([]byte, 1000)...)
				}
				east.produce(recs...)
			}
			f := testFlow(east, west, "east", "west")
			f.ForwardBatches = forward
			f.MaxBytesPerSecond = 256 << 10
			w := startWorker(t, f)
			waitCount(t, west, "east.orders", n, 30*time.Second)
			// Stopped, a wait in progress ends and is counted.
			w.stop()
			if held := metricSum(t, w.reg, "kdr_mirror_throttle_seconds_total", map[string]string{"flow": "east->west"}); held != 0 {
				t.Fatalf("kdr_mirror_throttle_seconds_total %v: the cap counted more than the compressed batches read", held)
			}
		})
	}
}

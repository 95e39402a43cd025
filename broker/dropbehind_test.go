package broker_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/kdr-io/kdr/broker"
	"github.com/kdr-io/kdr/internal/kdrtest"
)

// TestBrokerDropBehindKeepsOnlyTheTailCached produces 2 MiB to a broker
// with log.drop.behind.bytes=256 KiB: what lies further behind the log end
// leaves the page cache once on disk, the tail stays cached, and every
// record still reads back (the dropped ones from the disk).
func TestBrokerDropBehindKeepsOnlyTheTailCached(t *testing.T) {
	const every, behind = 64 << 10, 256 << 10
	b := kdrtest.StartBroker(t, kdrtest.WithConfig(func(c *broker.Config) {
		c.MetricsListen = "127.0.0.1:0"
		c.LogWritebackBytes = every
		c.LogDropBehindBytes = behind
	}))
	_, value := produceKeyed(t, b.Addr(), "db", 'd')
	var dropped, produced float64
	kdrtest.Eventually(t, 10*time.Second, func() (bool, string) {
		dropped = metricValue(t, b.MetricsAddr(), "kdr_broker_log_dropped_bytes_total", nil)
		produced = metricValue(t, b.MetricsAddr(), "kdr_topic_produced_bytes_total", map[string]string{"topic": "db"})
		return produced >= keyedRecords*16<<10 && dropped > produced-behind-every,
			fmt.Sprintf("dropped %.0f of %.0f produced bytes", dropped, produced)
	})
	if dropped > produced-behind {
		t.Fatalf("dropped %.0f bytes of %.0f: more than all but the last %d", dropped, produced, behind)
	}
	if f := metricValue(t, b.MetricsAddr(), "kdr_broker_log_writeback_failures_total", nil); f != 0 {
		t.Fatalf("kdr_broker_log_writeback_failures_total %v", f)
	}

	// The page cache: the head of the segment is out of it, the tail in.
	// tmpfs keeps its pages whatever the advice, so there only the figures
	// above are checked.
	seg := filepath.Join(b.Config().DataDir, "db-0", "00000000000000000000.log")
	var fs unix.Statfs_t
	if err := unix.Statfs(seg, &fs); err != nil {
		t.Fatal(err)
	}
	if fs.Type == unix.TMPFS_MAGIC {
		t.Log("data dir on tmpfs: page-cache residency not checked")
	} else {
		resident := residentPages(t, seg)
		page := os.Getpagesize()
		head := (int(dropped) - every) / page // pages dropped for certain (the last range may be partial)
		for i := range head {
			if resident[i] {
				t.Fatalf("page %d of %d (byte %d) is still cached; %0.f bytes were dropped", i, len(resident), i*page, dropped)
			}
		}
		tail := resident[len(resident)-behind/page/2:]
		for i, in := range tail {
			if !in {
				t.Fatalf("page %d from the end is not cached; the last %d bytes should stay", len(tail)-i, behind)
			}
		}
	}

	readKeyed(t, b.Addr(), "db", value)
}

// residentPages reports, page by page, whether path is in the page cache
// (mincore(2) on a mapping that is never touched).
func residentPages(t *testing.T, path string) []bool {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	m, err := unix.Mmap(int(f.Fd()), 0, int(st.Size()), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(m)
	page := os.Getpagesize()
	vec := make([]byte, (len(m)+page-1)/page)
	// x/sys has no wrapper for mincore.
	if _, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&vec[0]))); errno != 0 {
		t.Fatal(errno)
	}
	out := make([]bool, len(vec))
	for i, v := range vec {
		out[i] = v&1 == 1
	}
	return out
}

package storage

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/kdr-io/kdr/internal/atomicfile"
)

// epochEntry says leader epoch epoch wrote its first batch at start.
type epochEntry struct {
	epoch int32
	start int64
}

// epochCache is Kafka's LeaderEpochFileCache: the start offset of every
// leader epoch the log has batches from, epochs and offsets both ascending.
type epochCache struct {
	entries []epochEntry
}

func (c *epochCache) latest() int32 {
	if len(c.entries) == 0 {
		return -1
	}
	return c.entries[len(c.entries)-1].epoch
}

// assign records that epoch starts at start if it is newer than the latest
// epoch; it reports whether the cache changed.
func (c *epochCache) assign(epoch int32, start int64) bool {
	if epoch < 0 || epoch <= c.latest() {
		return false
	}
	c.entries = append(c.entries, epochEntry{epoch: epoch, start: start})
	return true
}

// truncateFromEnd drops the epochs starting at or after leo (TruncateTo).
func (c *epochCache) truncateFromEnd(leo int64) bool {
	i := len(c.entries)
	for i > 0 && c.entries[i-1].start >= leo {
		i--
	}
	changed := i < len(c.entries)
	c.entries = c.entries[:i]
	return changed
}

// truncateFromStart drops the epochs that ended before start and moves the
// start of the epoch holding start up to it (the log start offset moved).
func (c *epochCache) truncateFromStart(start int64) bool {
	i := 0
	for i+1 < len(c.entries) && c.entries[i+1].start <= start {
		i++
	}
	changed := i > 0
	c.entries = c.entries[i:]
	if len(c.entries) > 0 && c.entries[0].start < start {
		c.entries[0].start = start
		changed = true
	}
	return changed
}

// endOffsetFor answers OffsetForLeaderEpoch as Kafka's
// LeaderEpochFileCache.endOffsetFor: the largest epoch <= requested and the
// start offset of the first epoch after it (the log end offset if requested
// is the latest epoch); (-1, -1) when requested is newer than every epoch.
func (c *epochCache) endOffsetFor(requested int32, leo int64) (int32, int64) {
	if requested < 0 || len(c.entries) == 0 {
		return -1, -1
	}
	if requested == c.latest() {
		return requested, leo
	}
	// higher: the first entry with epoch > requested.
	higher := len(c.entries)
	for i, e := range c.entries {
		if e.epoch > requested {
			higher = i
			break
		}
	}
	switch {
	case higher == len(c.entries):
		return -1, -1
	case higher == 0: // requested is older than every epoch we have
		return requested, c.entries[0].start
	}
	return c.entries[higher-1].epoch, c.entries[higher].start
}

// encodeEpochs writes Kafka's leader-epoch-checkpoint format: a version
// line (0), a count line, then "epoch startOffset" lines.
//
//	0
//	2
//	0 0
//	3 150
func encodeEpochs(entries []epochEntry) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "0\n%d\n", len(entries))
	for _, e := range entries {
		fmt.Fprintf(&b, "%d %d\n", e.epoch, e.start)
	}
	return b.Bytes()
}

func decodeEpochs(raw []byte) ([]epochEntry, bool) {
	lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
	if len(lines) < 2 || strings.TrimSpace(lines[0]) != "0" {
		return nil, false
	}
	n, err := strconv.Atoi(strings.TrimSpace(lines[1]))
	if err != nil || n != len(lines)-2 {
		return nil, false
	}
	out := make([]epochEntry, 0, n)
	for _, line := range lines[2:] {
		f := strings.Fields(line)
		if len(f) != 2 {
			return nil, false
		}
		ep, err1 := strconv.ParseInt(f[0], 10, 32)
		st, err2 := strconv.ParseInt(f[1], 10, 64)
		if err1 != nil || err2 != nil || ep < 0 || st < 0 {
			return nil, false
		}
		if k := len(out); k > 0 && (int32(ep) <= out[k-1].epoch || st < out[k-1].start) {
			return nil, false
		}
		out = append(out, epochEntry{epoch: int32(ep), start: st})
	}
	return out, true
}

func writeEpochs(path string, entries []epochEntry) error {
	if err := atomicfile.Write(path, encodeEpochs(entries), 0o644); err != nil {
		return fmt.Errorf("storage: %w", err)
	}
	return nil
}

// readEpochs loads the checkpoint; ok is false when it is missing or
// malformed and the cache must be rebuilt from the batches.
func readEpochs(path string) ([]epochEntry, bool) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, false
	}
	return decodeEpochs(raw)
}

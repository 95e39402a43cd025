package storage

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/kdr-io/kdr/internal/atomicfile"
)

// Every path the package uses inside a partition directory is built here.
const (
	logSuffix       = ".log"
	indexSuffix     = ".index"
	timeIndexSuffix = ".timeindex"
	snapshotSuffix  = ".snapshot"
	cleanedSuffix   = ".cleaned" // compaction output, appended to one of the above

	cleanShutdownFile = ".kdr-clean-shutdown"
	logStartFile      = "log-start-offset"
	epochFile         = "leader-epoch-checkpoint"
	cleanerFile       = "cleaner-offset-checkpoint"
	recoveryPointFile = "recovery-point-offset"
)

// offsetName is Kafka's file name for an offset: 20 zero-padded digits.
func offsetName(dir string, offset int64, suffix string) string {
	return filepath.Join(dir, fmt.Sprintf("%020d%s", offset, suffix))
}

// listOffsets returns the offsets named by the files in dir ending in
// suffix, ascending.
func listOffsets(dir, suffix string) ([]int64, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	var out []int64
	for _, e := range entries {
		name := e.Name()
		digits, ok := strings.CutSuffix(name, suffix)
		if !ok || len(digits) != 20 || e.IsDir() {
			continue
		}
		if off, err := strconv.ParseInt(digits, 10, 64); err == nil && off >= 0 {
			out = append(out, off)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out, nil
}

// removeLeftovers deletes what an interrupted write leaves behind: the
// temporary files of atomic writes and compaction output that was never
// renamed into place. Only names this package creates are touched; the
// broker keeps its own files in the same directory.
func removeLeftovers(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("storage: %w", err)
	}
	for _, e := range entries {
		name := e.Name()
		ours := strings.HasSuffix(name, cleanedSuffix)
		for _, prefix := range []string{logStartFile, epochFile, cleanerFile, cleanShutdownFile, recoveryPointFile} {
			ours = ours || strings.HasPrefix(name, prefix+".tmp")
		}
		if strings.Contains(name, snapshotSuffix+".tmp") {
			ours = true
		}
		if ours {
			if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("storage: %w", err)
			}
		}
	}
	return nil
}

// writeOffsetFile atomically stores one offset as a decimal line.
func writeOffsetFile(path string, offset int64) error {
	return atomicfile.Write(path, []byte(strconv.FormatInt(offset, 10)+"\n"), 0o644)
}

// readOffsetFile reads a file written by writeOffsetFile; ok is false when
// it is missing or unreadable, which callers treat as "no checkpoint".
func readOffsetFile(path string) (int64, bool) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	off, err := strconv.ParseInt(strings.TrimSpace(string(raw)), 10, 64)
	if err != nil || off < 0 {
		return 0, false
	}
	return off, true
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// removeFiles deletes paths, ignoring ones already gone.
func removeFiles(paths ...string) error {
	var errs []error
	for _, p := range paths {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

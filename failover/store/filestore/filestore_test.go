package filestore_test

import (
	"bufio"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kdr-io/kdr/failover/store/filestore"
	"github.com/kdr-io/kdr/failover/store/internal/model"
)

// The helper process: when run with these variables set, the test binary
// takes the lock, says so on stdout and holds it until stdin closes.
const (
	envHelperPath   = "KDR_FILESTORE_HELPER_PATH"
	envHelperHolder = "KDR_FILESTORE_HELPER_HOLDER"
)

func TestMain(m *testing.M) {
	if path := os.Getenv(envHelperPath); path != "" {
		os.Exit(holdLock(path, os.Getenv(envHelperHolder)))
	}
	os.Exit(m.Run())
}

func holdLock(path, holder string) int {
	s, err := filestore.New(path, "demo")
	if err != nil {
		os.Stderr.WriteString(err.Error())
		return 1
	}
	l, err := s.Lock(context.Background(), holder)
	if err != nil {
		os.Stderr.WriteString(err.Error())
		return 1
	}
	os.Stdout.WriteString("locked\n")
	bufio.NewReader(os.Stdin).ReadString('\n') // until the parent closes stdin
	if err := l.Release(context.Background()); err != nil {
		os.Stderr.WriteString(err.Error())
		return 1
	}
	return 0
}

// startHolder runs the helper process and waits until it holds the lock.
func startHolder(t *testing.T, path, holder string) (*exec.Cmd, func()) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envHelperPath+"="+path, envHelperHolder+"="+holder)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "locked\n" {
		t.Fatalf("helper process did not lock: %q %v: %s", line, err, stderr.String())
	}
	return cmd, func() { stdin.Close() }
}

func TestFailoverFileStoreLockAcrossProcesses(t *testing.T) {
	path := filepath.Join(t.TempDir(), "demo.json")
	s, err := filestore.New(path, "demo")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	// Released by the other process: the lock is free again.
	cmd, release := startHolder(t, path, "other-process")
	_, err = s.Lock(ctx, "me")
	var locked *model.LockedError
	if !errors.As(err, &locked) || !errors.Is(err, model.ErrLocked) || locked.Holder != "other-process" {
		t.Fatalf("Lock while another process holds it: %v, want ErrLocked naming other-process", err)
	}
	release()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("helper: %v", err)
	}
	l, err := s.Lock(ctx, "me")
	if err != nil {
		t.Fatalf("Lock after the other process released it: %v", err)
	}
	if err := l.Release(ctx); err != nil {
		t.Fatal(err)
	}

	// Killed while holding it: the kernel drops the flock.
	cmd, _ = startHolder(t, path, "crashing-process")
	if _, err := s.Lock(ctx, "me"); !errors.Is(err, model.ErrLocked) {
		t.Fatalf("Lock while another process holds it: %v, want ErrLocked", err)
	}
	cmd.Process.Kill()
	cmd.Wait()
	l, err = s.Lock(ctx, "me")
	if err != nil {
		t.Fatalf("Lock after the holder was killed: %v", err)
	}
	l.Release(ctx)
}

func TestFailoverFileStoreWritesAtomically(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "demo.json")
	s, err := filestore.New(path, "demo")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	v := uint64(0)
	for i := range 20 {
		if v, err = s.CompareAndSwap(ctx, model.State{Topology: "demo", Active: "east", Epoch: int64(i)}, v); err != nil {
			t.Fatal(err)
		}
	}
	if v != 20 {
		t.Fatalf("version after 20 writes = %d, want 20", v)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if strings.Join(names, " ") != "demo.json demo.json.write.lock" {
		t.Fatalf("directory holds %v, want only the state file and its write lock (no temp files)", names)
	}
}

func TestFailoverFileStoreRejectsForeignFiles(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"garbage.json": "not json",
		"future.json":  `{"format": 99, "version": 3, "state": {}}`,
	} {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		s, err := filestore.New(path, "demo")
		if err != nil {
			t.Fatal(err)
		}
		_, err = s.Get(context.Background())
		if err == nil || errors.Is(err, model.ErrUnavailable) || !strings.Contains(err.Error(), path) {
			t.Fatalf("Get of %s: %v, want an error naming the file that is not ErrUnavailable", name, err)
		}
		if _, err := s.CompareAndSwap(context.Background(), model.State{}, 3); err == nil {
			t.Fatalf("CompareAndSwap over %s succeeded", name)
		}
	}
}

func TestFailoverFileStoreUnwritableDirIsUnavailable(t *testing.T) {
	// A path under a regular file fails even for root, who ignores modes.
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := filestore.New(filepath.Join(file, "failover", "demo.json"), "demo")
	if !errors.Is(err, model.ErrUnavailable) || !strings.Contains(err.Error(), "failover.coordination.path") {
		t.Fatalf("New under a regular file: %v, want ErrUnavailable pointing at failover.coordination.path", err)
	}
}

func TestFailoverFileStoreWatchPolls(t *testing.T) {
	path := filepath.Join(t.TempDir(), "demo.json")
	a, _ := filestore.New(path, "demo", filestore.WithPollInterval(10*time.Millisecond))
	b, _ := filestore.New(path, "demo")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan model.Versioned, 1)
	go func() {
		v, err := a.Watch(ctx, 0) // the file does not exist yet
		if err != nil {
			t.Error(err)
		}
		done <- v
	}()
	v, err := b.CompareAndSwap(ctx, model.State{Active: "east"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := <-done; got.Version != v || got.State.Active != "east" {
		t.Fatalf("Watch on a missing file woke with %+v, want version %d", got, v)
	}
}

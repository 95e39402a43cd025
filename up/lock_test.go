package up

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

func TestUpLockIsExclusive(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kdr-up.lock")
	l, err := AcquireLock(path)
	if err != nil {
		t.Fatal(err)
	}
	_, err = AcquireLock(path)
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "pid") {
		t.Fatalf("second lock: %v, want ErrLocked naming the holder's pid", err)
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	l, err = AcquireLock(path)
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	l.Release()
}

func TestUpDefaultStateDir(t *testing.T) {
	t.Setenv("XDG_STATE_HOME", "/xdg")
	if d, err := DefaultStateDir("demo"); err != nil || d != "/xdg/kdr/demo" {
		t.Fatalf("with XDG_STATE_HOME: %q, %v", d, err)
	}
	t.Setenv("XDG_STATE_HOME", "")
	t.Setenv("HOME", "/home/u")
	if d, err := DefaultStateDir("demo"); err != nil || d != "/home/u/.local/state/kdr/demo" {
		t.Fatalf("with HOME: %q, %v", d, err)
	}
	if _, err := DefaultStateDir(""); err == nil {
		t.Fatal("no name: want an error")
	}
}

package raftstore

import (
	"io"
	"log/slog"
	"testing"

	"github.com/hashicorp/raft"
)

// TestRaftLogReopensAfterTailTruncation: a follower that clears a
// conflicting log suffix (raft's DeleteRange of the tail) and is restarted
// reads its whole log again. raft-wal v0.4.0 marked the truncated segment
// sealed without writing its index, and the broker then panicked at every
// start ("sealed segment has no index block", hashicorp/raft-wal#31).
func TestRaftLogReopensAfterTailTruncation(t *testing.T) {
	dir := t.TempDir()
	logger := newHCLogger(slog.New(slog.NewTextHandler(io.Discard, nil)), "raft-wal")
	open := func() *raftLog {
		t.Helper()
		l, err := openLog(dir, logger)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	entry := func(i, term uint64) *raft.Log {
		return &raft.Log{Index: i, Term: term, Type: raft.LogCommand, Data: []byte{byte(i), byte(term)}}
	}
	l := open()
	for i := uint64(1); i <= 5; i++ {
		if err := l.StoreLog(entry(i, 1)); err != nil {
			t.Fatal(err)
		}
	}
	// A new leader's entries conflict from index 4 on.
	if err := l.DeleteRange(4, 5); err != nil {
		t.Fatal(err)
	}
	if err := l.StoreLogs([]*raft.Log{entry(4, 2), entry(5, 2)}); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	l = open()
	defer l.Close()
	for i := uint64(1); i <= 5; i++ {
		var got raft.Log
		if err := l.GetLog(i, &got); err != nil {
			t.Fatalf("after a restart, entry %d: %v", i, err)
		}
		want := uint64(1)
		if i >= 4 {
			want = 2
		}
		if got.Term != want || got.Data[0] != byte(i) || got.Data[1] != byte(want) {
			t.Fatalf("after a restart, entry %d is term %d %v, want term %d", i, got.Term, got.Data, want)
		}
	}
}

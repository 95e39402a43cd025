package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/kdr-io/kdr/failover/store"
	"github.com/kdr-io/kdr/failover/store/consulstore"
	"github.com/kdr-io/kdr/failover/store/filestore"
	"github.com/kdr-io/kdr/internal/consultest"
)

// opener returns two Stores on the same fresh backend state: what two
// orchestrators would hold.
type opener func(t *testing.T) (a, b store.Store)

// TestFailoverStoreContract runs the Store contract against every backend:
// the file store and a real Consul agent.
func TestFailoverStoreContract(t *testing.T) {
	t.Run("file", func(t *testing.T) {
		runContract(t, func(t *testing.T) (store.Store, store.Store) {
			path := filepath.Join(t.TempDir(), "failover", "demo.json")
			return openFile(t, path), openFile(t, path)
		})
	})
	t.Run("consul", func(t *testing.T) {
		agent := consultest.Start(t)
		n := 0
		runContract(t, func(t *testing.T) (store.Store, store.Store) {
			n++ // a topology per subtest keeps their keys apart
			cfg := consulstore.Config{Topology: fmt.Sprintf("contract%d", n), Address: agent.Addr()}
			return openConsul(t, cfg), openConsul(t, cfg)
		})
	})
}

func openFile(t *testing.T, path string) store.Store {
	t.Helper()
	s, err := filestore.New(path, "demo", filestore.WithPollInterval(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func openConsul(t *testing.T, cfg consulstore.Config) store.Store {
	t.Helper()
	s, err := consulstore.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func state(active string, epoch int64) store.State {
	return store.State{Topology: "demo", Active: active, Epoch: epoch, Fenced: []string{"west"},
		History:   []store.Event{{At: time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC), Kind: "promote", Message: "to " + active, Epoch: epoch}},
		LastDrill: json.RawMessage(`{"ok":true}`)}
}

func mustCAS(t *testing.T, s store.Store, st store.State, version uint64) uint64 {
	t.Helper()
	v, err := s.CompareAndSwap(ctxT(t), st, version)
	if err != nil {
		t.Fatalf("CompareAndSwap(version %d): %v", version, err)
	}
	if v <= version {
		t.Fatalf("CompareAndSwap(version %d) returned version %d, want a greater one", version, v)
	}
	return v
}

func mustGet(t *testing.T, s store.Store) store.Versioned {
	t.Helper()
	v, err := s.Get(ctxT(t))
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	return v
}

func sameState(t *testing.T, got, want store.State) {
	t.Helper()
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	if string(g) != string(w) {
		t.Fatalf("state\n got %s\nwant %s", g, w)
	}
}

func runContract(t *testing.T, open opener) {
	t.Run("GetAbsent", func(t *testing.T) {
		a, _ := open(t)
		v := mustGet(t, a)
		if v.Version != 0 || v.State.Active != "" || v.State.Epoch != 0 {
			t.Fatalf("Get on an empty store = %+v, want version 0 and a zero state", v)
		}
	})

	t.Run("CreateThenGet", func(t *testing.T) {
		a, b := open(t)
		want := state("east", 1)
		v1 := mustCAS(t, a, want, 0)
		got := mustGet(t, b)
		if got.Version != v1 {
			t.Fatalf("Get version = %d, want %d", got.Version, v1)
		}
		sameState(t, got.State, want)
		if _, err := b.CompareAndSwap(ctxT(t), state("west", 2), 0); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("create over an existing document: err = %v, want ErrConflict", err)
		}
		v2 := mustCAS(t, b, state("west", 2), v1)
		if got := mustGet(t, a); got.Version != v2 || got.State.Active != "west" {
			t.Fatalf("Get after the second write = version %d active %q, want %d west", got.Version, got.State.Active, v2)
		}
		if _, err := a.CompareAndSwap(ctxT(t), state("east", 3), v1); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("write from a stale version: err = %v, want ErrConflict", err)
		}
	})

	t.Run("TwoWritersOneWins", func(t *testing.T) {
		a, b := open(t)
		base := mustCAS(t, a, state("east", 1), 0)
		for round := range 5 {
			var wg sync.WaitGroup
			errs := make([]error, 2)
			versions := make([]uint64, 2)
			for i, s := range []store.Store{a, b} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					versions[i], errs[i] = s.CompareAndSwap(ctxT(t), state(fmt.Sprintf("writer%d", i), int64(round+2)), base)
				}()
			}
			wg.Wait()
			winner := -1
			for i, err := range errs {
				switch {
				case err == nil && winner == -1:
					winner = i
				case err == nil:
					t.Fatalf("round %d: both writers won from version %d", round, base)
				case !errors.Is(err, store.ErrConflict):
					t.Fatalf("round %d: writer %d: %v, want nil or ErrConflict", round, i, err)
				}
			}
			if winner == -1 {
				t.Fatalf("round %d: no writer won: %v", round, errs)
			}
			got := mustGet(t, a)
			if got.Version != versions[winner] || got.State.Active != fmt.Sprintf("writer%d", winner) {
				t.Fatalf("round %d: Get = version %d active %q, want the winner's %d writer%d", round, got.Version, got.State.Active, versions[winner], winner)
			}
			base = got.Version
		}
	})

	t.Run("HistoryKeepsTheLast200", func(t *testing.T) {
		a, _ := open(t)
		st := state("east", 1)
		st.History = nil
		for i := range 250 {
			st.History = append(st.History, store.Event{Kind: "step", Message: fmt.Sprint(i)})
		}
		mustCAS(t, a, st, 0)
		h := mustGet(t, a).State.History
		if len(h) != store.MaxHistory || h[0].Message != "50" || h[len(h)-1].Message != "249" {
			t.Fatalf("history has %d events from %q to %q, want 200 from 50 to 249", len(h), h[0].Message, h[len(h)-1].Message)
		}
	})

	t.Run("WatchWakesOnChange", func(t *testing.T) {
		a, b := open(t)
		v1 := mustCAS(t, a, state("east", 1), 0)
		if got, err := b.Watch(ctxT(t), 0); err != nil || got.Version != v1 {
			t.Fatalf("Watch(0) on an existing document = %d, %v; want %d at once", got.Version, err, v1)
		}
		type result struct {
			v   store.Versioned
			err error
		}
		done := make(chan result, 1)
		started := make(chan struct{})
		go func() {
			close(started)
			v, err := b.Watch(ctxT(t), v1)
			done <- result{v, err}
		}()
		<-started
		select {
		case r := <-done:
			t.Fatalf("Watch(%d) returned before any change: %+v, %v", v1, r.v, r.err)
		default:
		}
		v2 := mustCAS(t, a, state("west", 2), v1)
		select {
		case r := <-done:
			if r.err != nil || r.v.Version != v2 || r.v.State.Active != "west" {
				t.Fatalf("Watch woke with version %d active %q err %v; want %d west", r.v.Version, r.v.State.Active, r.err, v2)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Watch did not wake within 10s of a change")
		}

		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			v, err := b.Watch(ctx, v2)
			done <- result{v, err}
		}()
		cancel()
		select {
		case r := <-done:
			if !errors.Is(r.err, context.Canceled) {
				t.Fatalf("Watch after cancel: err = %v, want context.Canceled", r.err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Watch did not return within 10s of its context's cancellation")
		}
	})

	t.Run("WatchWakesOnCreate", func(t *testing.T) {
		a, b := open(t)
		done := make(chan store.Versioned, 1)
		go func() {
			v, err := b.Watch(ctxT(t), 0)
			if err != nil {
				t.Errorf("Watch(0) on an empty store: %v", err)
			}
			done <- v
		}()
		v1 := mustCAS(t, a, state("east", 1), 0)
		select {
		case got := <-done:
			if got.Version != v1 || got.State.Active != "east" {
				t.Fatalf("Watch woke with version %d active %q, want %d east", got.Version, got.State.Active, v1)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Watch(0) did not wake within 10s of the document's creation")
		}
	})

	t.Run("LockIsExclusive", func(t *testing.T) {
		a, b := open(t)
		l1, err := a.Lock(ctxT(t), "orchestrator-1")
		if err != nil {
			t.Fatalf("Lock: %v", err)
		}
		if l1.Holder() != "orchestrator-1" {
			t.Fatalf("Holder() = %q", l1.Holder())
		}
		for _, s := range []store.Store{b, a} {
			_, err := s.Lock(ctxT(t), "orchestrator-2")
			var locked *store.LockedError
			if !errors.Is(err, store.ErrLocked) || !errors.As(err, &locked) || locked.Holder != "orchestrator-1" {
				t.Fatalf("second Lock: err = %v, want ErrLocked naming orchestrator-1", err)
			}
		}
		if _, err := store.AcquireLock(ctxT(t), b, "orchestrator-2", store.LockOptions{Wait: 300 * time.Millisecond, Retry: 50 * time.Millisecond}); !errors.Is(err, store.ErrLocked) {
			t.Fatalf("AcquireLock while held: err = %v, want ErrLocked after the wait", err)
		}
		select {
		case <-l1.Lost():
			t.Fatal("Lost() closed while the lock is held")
		default:
		}
		if err := l1.Release(ctxT(t)); err != nil {
			t.Fatalf("Release: %v", err)
		}
		select {
		case <-l1.Lost():
		default:
			t.Fatal("Lost() still open after Release")
		}
		if err := l1.Release(ctxT(t)); err != nil {
			t.Fatalf("second Release: %v", err)
		}
		l2, err := b.Lock(ctxT(t), "orchestrator-2")
		if err != nil {
			t.Fatalf("Lock after Release: %v", err)
		}
		if err := l2.Release(ctxT(t)); err != nil {
			t.Fatalf("Release: %v", err)
		}
	})
}

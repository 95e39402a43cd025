package faultproxy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// meshConns starts n echo nodes and a mesh over them, and opens one
// connection along every ordered pair.
func meshConns(t *testing.T, n int) (*Mesh, [][]net.Conn) {
	t.Helper()
	addrs := make([]string, n)
	for i := range addrs {
		addrs[i] = startEcho(t).addr()
	}
	m, err := NewMesh(addrs)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	conns := make([][]net.Conn, n)
	for i := range conns {
		conns[i] = make([]net.Conn, n)
		for j := range conns[i] {
			if i != j {
				conns[i][j] = dial(t, m.Addr(i, j))
			}
		}
	}
	return m, conns
}

type path = [2]int

func msg(round string, p path) []byte { return []byte(fmt.Sprintf("%s:%d->%d;", round, p[0], p[1])) }

// exchange sends a message naming the pair along every path and checks
// that exactly the paths in cut stay silent for the silence window while
// every other path echoes its message (within a generous deadline, so a
// loaded machine does not fail the test). Messages on cut paths stay
// pending.
func exchange(t *testing.T, conns [][]net.Conn, round string, cut ...path) {
	t.Helper()
	isCut := map[path]bool{}
	for _, p := range cut {
		isCut[p] = true
	}
	errs := make(chan error)
	n := 0
	for i := range conns {
		for j := range conns[i] {
			if i == j {
				continue
			}
			p := path{i, j}
			send(t, conns[i][j], msg(round, p))
			n++
			go func(c net.Conn) {
				if isCut[p] {
					errs <- silentFor(c)
				} else {
					errs <- echoes(c, msg(round, p))
				}
			}(conns[i][j])
		}
	}
	for ; n > 0; n-- {
		if err := <-errs; err != nil {
			t.Errorf("round %s: %v", round, err)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
}

func silentFor(c net.Conn) error {
	c.SetReadDeadline(time.Now().Add(silence))
	var b [1]byte
	if n, err := c.Read(b[:]); n != 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
		return fmt.Errorf("cut path %s delivered %d bytes (err %v)", c.LocalAddr(), n, err)
	}
	return nil
}

func echoes(c net.Conn, want []byte) error {
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	got := make([]byte, len(want))
	if _, err := io.ReadFull(c, got); err != nil {
		return fmt.Errorf("path expecting %q: %v", want, err)
	}
	if !bytes.Equal(got, want) {
		return fmt.Errorf("echoed %q, want %q", got, want)
	}
	return nil
}

func TestFaultProxyMeshIsolateCutsEveryPathOfOneNode(t *testing.T) {
	m, conns := meshConns(t, 3)
	exchange(t, conns, "r0")
	m.Isolate(1)
	cut := []path{{0, 1}, {1, 0}, {1, 2}, {2, 1}}
	exchange(t, conns, "r1", cut...)
	m.HealAll()
	for _, p := range cut {
		expectRead(t, conns[p[0]][p[1]], msg("r1", p))
	}
	exchange(t, conns, "r2")

	m.IsolateRefuse(2)
	for _, p := range []path{{0, 2}, {2, 0}, {1, 2}, {2, 1}} {
		expectReset(t, conns[p[0]][p[1]])
	}
	expectRefused(t, m.Addr(0, 2))
	send(t, conns[0][1], []byte("still"))
	expectRead(t, conns[0][1], []byte("still"))
}

func TestFaultProxyMeshPartitionAndOneWayCut(t *testing.T) {
	m, conns := meshConns(t, 4)
	m.Partition([]int{0, 1}, []int{2, 3})
	var crossing []path
	for _, a := range []int{0, 1} {
		for _, b := range []int{2, 3} {
			crossing = append(crossing, path{a, b}, path{b, a})
		}
	}
	exchange(t, conns, "p", crossing...)
	m.HealAll()
	for _, p := range crossing {
		expectRead(t, conns[p[0]][p[1]], msg("p", p))
	}

	m.Cut(3, 0)
	exchange(t, conns, "c", path{3, 0})
	m.Heal(3, 0)
	expectRead(t, conns[3][0], msg("c", path{3, 0}))
	if got := m.Peers(2, "self"); len(got) != 4 || got[2] != "self" || got[0] != m.Addr(2, 0) {
		t.Fatalf("Peers(2) = %v", got)
	}
}

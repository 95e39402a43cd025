package faultproxy

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// silence is how long a test watches a cut path to see that nothing crosses
// it. It is an observation window, not a synchronisation.
const silence = 200 * time.Millisecond

// echoServer echoes every byte back and half-closes when the client does.
type echoServer struct {
	ln       net.Listener
	accepted atomic.Int64
	received atomic.Int64
	live     atomic.Int64
	wg       sync.WaitGroup
}

// eventually polls cond until it holds or timeout passes. It stands in for
// kdrtest.Eventually, which these tests cannot import: kdrtest imports
// faultproxy, so the import would be a cycle.
func eventually(t *testing.T, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, reason := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s: %s", timeout, reason)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func startEcho(t *testing.T) *echoServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &echoServer{ln: ln}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.accepted.Add(1)
			s.live.Add(1)
			s.wg.Add(1)
			go s.serve(c)
		}
	}()
	t.Cleanup(func() { ln.Close(); s.wg.Wait() })
	return s
}

func (s *echoServer) serve(c net.Conn) {
	defer s.wg.Done()
	defer s.live.Add(-1)
	defer c.Close()
	buf := make([]byte, 64<<10)
	for {
		n, err := c.Read(buf)
		s.received.Add(int64(n))
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if errors.Is(err, io.EOF) {
			c.(*net.TCPConn).CloseWrite()
			return
		}
		if err != nil {
			return
		}
	}
}

func (s *echoServer) addr() string { return s.ln.Addr().String() }

func newProxy(t *testing.T, upstream string) *Proxy {
	t.Helper()
	p, err := New(upstream)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func send(t *testing.T, c net.Conn, b []byte) {
	t.Helper()
	c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write(b); err != nil {
		t.Fatalf("write: %v", err)
	}
}

// expectRead reads exactly len(want) bytes and compares them.
func expectRead(t *testing.T, c net.Conn, want []byte) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	got := make([]byte, len(want))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("reading %d bytes: %v", len(want), err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("read %q, want %q", got, want)
	}
}

// expectSilence checks that nothing arrives on c for the silence window.
func expectSilence(t *testing.T, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(silence))
	var b [1]byte
	n, err := c.Read(b[:])
	if n != 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("cut path delivered %d bytes (err %v), want nothing", n, err)
	}
}

func expectReset(t *testing.T, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := io.Copy(io.Discard, c)
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("read after refuse: %v, want connection reset", err)
	}
}

// expectRefused dials addr and expects the connection to be reset, during
// the handshake or right after it.
func expectRefused(t *testing.T, addr string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		if !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("dial of a refusing proxy: %v, want connection reset", err)
		}
		return
	}
	defer c.Close()
	expectReset(t, c)
}

func TestFaultProxyForwardsExactBytesBothWays(t *testing.T) {
	echo := startEcho(t)
	p := newProxy(t, echo.addr())
	c := dial(t, p.Addr())
	data := make([]byte, 4<<20)
	rand.Read(data)
	errc := make(chan error, 1)
	go func() {
		_, err := c.Write(data)
		if err == nil {
			err = c.(*net.TCPConn).CloseWrite()
		}
		errc <- err
	}()
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	got, err := io.ReadAll(c) // ends at the echo server's FIN, relayed
	if err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("echoed %d bytes, not the %d sent", len(got), len(data))
	}
	if f := p.Forwarded(); f != 2*int64(len(data)) {
		t.Fatalf("proxy forwarded %d bytes, want %d", f, 2*len(data))
	}
}

func TestFaultProxyCutHoldsLiveAndNewConnectionsUntilHeal(t *testing.T) {
	echo := startEcho(t)
	p := newProxy(t, echo.addr())
	live := dial(t, p.Addr())
	send(t, live, []byte("before"))
	expectRead(t, live, []byte("before"))

	p.Cut()
	send(t, live, []byte("during"))
	fresh := dial(t, p.Addr()) // accepted, but not connected upstream
	send(t, fresh, []byte("new"))
	expectSilence(t, live)
	expectSilence(t, fresh)
	if got := echo.received.Load(); got != int64(len("before")) {
		t.Fatalf("upstream received %d bytes across the cut, want %d", got, len("before"))
	}
	if got := echo.accepted.Load(); got != 1 {
		t.Fatalf("upstream accepted %d connections during the cut, want 1", got)
	}
	eventually(t, 5*time.Second, func() (bool, string) {
		return p.Conns() == 2, fmt.Sprintf("proxy holds %d connections, want 2 (a cut closes nothing)", p.Conns())
	})

	p.Heal()
	expectRead(t, live, []byte("during"))
	expectRead(t, fresh, []byte("new"))
	if got := echo.accepted.Load(); got != 2 {
		t.Fatalf("upstream accepted %d connections after heal, want 2", got)
	}
}

func TestFaultProxyCutHoldsTheFINUntilHeal(t *testing.T) {
	echo := startEcho(t)
	p := newProxy(t, echo.addr())
	c := dial(t, p.Addr())
	send(t, c, []byte("x"))
	expectRead(t, c, []byte("x"))
	p.Cut()
	send(t, c, []byte("last"))
	c.(*net.TCPConn).CloseWrite()
	expectSilence(t, c)
	if echo.live.Load() != 1 {
		t.Fatal("the echo server saw the FIN through a cut path")
	}
	p.Heal()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	rest, err := io.ReadAll(c)
	if err != nil || string(rest) != "last" {
		t.Fatalf("after heal read %q, %v; want %q then EOF", rest, err, "last")
	}
	eventually(t, 5*time.Second, func() (bool, string) {
		return p.Conns() == 0, "proxy still holds the closed connection"
	})
}

// TestFaultProxyCutStopsForwardingWhenItReturns streams numbered words and
// checks that the proxy writes nothing after Cut returns, then that every
// word arrives in order after Heal.
func TestFaultProxyCutStopsForwardingWhenItReturns(t *testing.T) {
	echo := startEcho(t)
	p := newProxy(t, echo.addr())
	c := dial(t, p.Addr())
	const words = 200000
	var written atomic.Int64
	writerDone := make(chan error, 1)
	go func() {
		buf := make([]byte, 8)
		for i := uint64(0); i < words; i++ {
			binary.BigEndian.PutUint64(buf, i)
			if _, err := c.Write(buf); err != nil {
				writerDone <- err
				return
			}
			written.Add(1)
		}
		writerDone <- nil
	}()
	eventually(t, 10*time.Second, func() (bool, string) {
		return written.Load() > words/10, "writer has not started"
	})
	p.Cut()
	after := p.Forwarded()
	// Read the echoes that crossed before the cut until the path stays
	// silent for the window; every word must be the next one.
	next := uint64(0)
	var pending []byte // a word split across reads
	readWords := func(deadline func() time.Time, until uint64) error {
		buf := make([]byte, 4096)
		for next < until {
			c.SetReadDeadline(deadline())
			n, err := c.Read(buf)
			pending = append(pending, buf[:n]...)
			for len(pending) >= 8 {
				if got := binary.BigEndian.Uint64(pending); got != next {
					t.Fatalf("word %d arrived as %d", next, got)
				}
				pending = pending[8:]
				next++
			}
			if err != nil {
				return err
			}
		}
		return nil
	}
	err := readWords(func() time.Time { return time.Now().Add(silence) }, words)
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("reading through a cut: %v after %d words, want a timeout", err, next)
	}
	if f := p.Forwarded(); f != after {
		t.Fatalf("proxy forwarded %d bytes after Cut returned", f-after)
	}
	t.Logf("%d of %d words echoed before the cut", next, words)
	p.Heal()
	end := time.Now().Add(20 * time.Second)
	if err := readWords(func() time.Time { return end }, words); err != nil {
		t.Fatalf("after heal, word %d: %v", next, err)
	}
	if err := <-writerDone; err != nil {
		t.Fatal(err)
	}
}

func TestFaultProxyRefuseResetsLiveAndNewConnections(t *testing.T) {
	echo := startEcho(t)
	p := newProxy(t, echo.addr())
	live := dial(t, p.Addr())
	send(t, live, []byte("hi"))
	expectRead(t, live, []byte("hi"))

	p.Refuse()
	expectReset(t, live)
	eventually(t, 5*time.Second, func() (bool, string) {
		return echo.live.Load() == 0, "the upstream connection is still open"
	})
	expectRefused(t, p.Addr())
	if got := echo.accepted.Load(); got != 1 {
		t.Fatalf("upstream accepted %d connections, want 1", got)
	}

	p.Heal()
	again := dial(t, p.Addr())
	send(t, again, []byte("back"))
	expectRead(t, again, []byte("back"))
}

func TestFaultProxyRefuseResetsCutConnections(t *testing.T) {
	echo := startEcho(t)
	p := newProxy(t, echo.addr())
	c := dial(t, p.Addr())
	send(t, c, []byte("a"))
	expectRead(t, c, []byte("a"))
	p.Cut()
	pending := dial(t, p.Addr())
	send(t, pending, []byte("b"))
	p.Refuse()
	expectReset(t, c)
	expectReset(t, pending)
}

func TestFaultProxyLatencyDelaysEachDirection(t *testing.T) {
	echo := startEcho(t)
	p := newProxy(t, echo.addr())
	const d = 100 * time.Millisecond
	p.SetLatency(d)
	c := dial(t, p.Addr())
	start := time.Now()
	send(t, c, []byte("slow"))
	expectRead(t, c, []byte("slow"))
	if rtt := time.Since(start); rtt < 2*d {
		t.Fatalf("round trip took %s, want at least %s", rtt, 2*d)
	}
	p.SetLatency(0)
	send(t, c, []byte("fast"))
	expectRead(t, c, []byte("fast"))
}

func TestFaultProxySetUpstreamRetargetsNewConnections(t *testing.T) {
	first, second := startEcho(t), startEcho(t)
	p := newProxy(t, first.addr())
	old := dial(t, p.Addr())
	send(t, old, []byte("1"))
	expectRead(t, old, []byte("1"))
	p.SetUpstream(second.addr())
	c := dial(t, p.Addr())
	send(t, c, []byte("2"))
	expectRead(t, c, []byte("2"))
	send(t, old, []byte("3"))
	expectRead(t, old, []byte("3"))
	if first.received.Load() != 2 || second.received.Load() != 1 {
		t.Fatalf("first got %d bytes, second %d; want 2 and 1", first.received.Load(), second.received.Load())
	}
}

func TestFaultProxyCloseEndsCutAndLiveConnections(t *testing.T) {
	echo := startEcho(t)
	p, err := New(echo.addr())
	if err != nil {
		t.Fatal(err)
	}
	live := dial(t, p.Addr())
	send(t, live, []byte("x"))
	expectRead(t, live, []byte("x"))
	p.Cut()
	held := dial(t, p.Addr())
	send(t, held, []byte("y"))
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []net.Conn{live, held} {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if n, err := c.Read(make([]byte, 1)); n != 0 || err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("read after Close: %d bytes, %v; want the connection closed", n, err)
		}
	}
	if _, err := net.DialTimeout("tcp", p.Addr(), time.Second); err == nil {
		t.Fatal("closed proxy still accepts connections")
	}
}

package raftstore

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// The first byte a dialer writes on a connection says who it is for.
const (
	connRaft byte = 1 // hashicorp/raft's NetworkTransport
	connRPC  byte = 2 // kdr RPC (rpc.go)
)

// muxPreambleTimeout bounds how long an accepted connection may take to send
// its first byte.
const muxPreambleTimeout = 5 * time.Second

// mux accepts connections on the one raft listener and routes each by its
// first byte: raft connections go to the raft transport through Accept, RPC
// connections to serveRPC. It tracks every accepted connection so close can
// end them all.
type mux struct {
	ln       net.Listener
	adv      net.Addr
	serveRPC func(net.Conn)
	logger   *slog.Logger

	raftCh    chan net.Conn
	done      chan struct{}
	closeOnce sync.Once
	raftDone  chan struct{} // closed when raft's transport closes its layer
	raftOnce  sync.Once
	wg        sync.WaitGroup

	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

func newMux(ln net.Listener, adv net.Addr, logger *slog.Logger) *mux {
	return &mux{
		ln: ln, adv: adv, logger: logger,
		raftCh:   make(chan net.Conn),
		done:     make(chan struct{}),
		raftDone: make(chan struct{}),
		conns:    map[net.Conn]struct{}{},
	}
}

// start begins accepting; serveRPC handles each RPC connection until it
// returns, and the mux then closes the connection.
func (m *mux) start(serveRPC func(net.Conn)) {
	m.serveRPC = serveRPC
	m.wg.Add(1)
	go m.acceptLoop()
}

func (m *mux) acceptLoop() {
	defer m.wg.Done()
	var delay time.Duration
	for {
		conn, err := m.ln.Accept()
		if err != nil {
			select {
			case <-m.done:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				m.logger.Error("raftstore: raft listener closed unexpectedly", "err", err)
				return
			}
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			m.logger.Warn("raftstore: accept failed; retrying", "err", err, "delay", delay)
			select {
			case <-time.After(delay):
				continue
			case <-m.done:
				return
			}
		}
		delay = 0
		tc := &trackedConn{Conn: conn, m: m}
		if !m.track(tc) {
			_ = conn.Close()
			return
		}
		m.wg.Add(1)
		go m.route(tc)
	}
}

// route reads the connection's first byte and hands it on.
func (m *mux) route(c *trackedConn) {
	defer m.wg.Done()
	var b [1]byte
	_ = c.SetReadDeadline(time.Now().Add(muxPreambleTimeout))
	if _, err := io.ReadFull(c, b[:]); err != nil {
		_ = c.Close()
		return
	}
	_ = c.SetReadDeadline(time.Time{})
	switch b[0] {
	case connRaft:
		select {
		case m.raftCh <- c:
		case <-m.done:
			_ = c.Close()
		case <-m.raftDone:
			_ = c.Close()
		}
	case connRPC:
		m.serveRPC(c)
		_ = c.Close()
	default:
		m.logger.Warn("raftstore: dropping a connection with an unknown first byte", "remote", c.RemoteAddr().String(), "byte", b[0])
		_ = c.Close()
	}
}

func (m *mux) track(c net.Conn) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	select {
	case <-m.done:
		return false
	default:
	}
	m.conns[c] = struct{}{}
	return true
}

func (m *mux) untrack(c net.Conn) {
	m.mu.Lock()
	delete(m.conns, c)
	m.mu.Unlock()
}

// close stops accepting, closes every accepted connection and waits for the
// routing and RPC goroutines. Idempotent.
func (m *mux) close() {
	m.closeOnce.Do(func() {
		m.mu.Lock()
		close(m.done)
		conns := make([]net.Conn, 0, len(m.conns))
		for c := range m.conns {
			conns = append(conns, c)
		}
		m.mu.Unlock()
		_ = m.ln.Close()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	m.wg.Wait()
}

// trackedConn leaves the mux's set when closed.
type trackedConn struct {
	net.Conn
	m    *mux
	once sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() { c.m.untrack(c) })
	return c.Conn.Close()
}

// raftLayer is the raft.StreamLayer over the mux: raft's inbound connections
// come from the mux, outbound ones announce themselves with connRaft.
type raftLayer struct{ m *mux }

var _ raft.StreamLayer = raftLayer{}

func (l raftLayer) Accept() (net.Conn, error) {
	select {
	case c := <-l.m.raftCh:
		return c, nil
	case <-l.m.done:
		return nil, net.ErrClosed
	case <-l.m.raftDone:
		return nil, net.ErrClosed
	}
}

// Close is called by raft's transport on shutdown. The store closes the mux
// itself right after, so this only stops handing raft connections over.
func (l raftLayer) Close() error {
	l.m.raftOnce.Do(func() { close(l.m.raftDone) })
	return nil
}

func (l raftLayer) Addr() net.Addr { return l.m.adv }

func (l raftLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	return dialPreamble(string(address), timeout, connRaft)
}

// dialPreamble connects to a node's raft listener and writes the first byte.
func dialPreamble(addr string, timeout time.Duration, kind byte) (net.Conn, error) {
	d := net.Dialer{Timeout: timeout}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	_ = conn.SetWriteDeadline(time.Now().Add(timeout))
	if _, err := conn.Write([]byte{kind}); err != nil {
		_ = conn.Close()
		return nil, err
	}
	_ = conn.SetWriteDeadline(time.Time{})
	return conn, nil
}

// advertisedAddr is a net.Addr for a host:port that may be a name.
type advertisedAddr string

func (a advertisedAddr) Network() string { return "tcp" }
func (a advertisedAddr) String() string  { return string(a) }

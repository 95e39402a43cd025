package raftstore

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
)

// A dialer starts every connection with a preamble: a byte that says who
// the connection is for, then the dialer's cluster id (a length byte and
// the id). A node drops connections from other clusters: raft itself has no
// notion of a cluster, so a node of another cluster that took over a
// stopped voter's address (a port reused on a shared host) would otherwise
// take part in this cluster's elections and commits, as Kafka's
// INCONSISTENT_CLUSTER_ID guards against in KRaft.
const (
	connRaft byte = 1 // hashicorp/raft's NetworkTransport
	connRPC  byte = 2 // kdr RPC (rpc.go)
)

// MaxClusterIDLen is the longest cluster id a preamble carries (one length
// byte).
const MaxClusterIDLen = 255

// refusalLogEvery spaces out the warnings about refused connections: a node
// of another cluster retries several times a second.
const refusalLogEvery = 10 * time.Second

// muxPreambleTimeout bounds how long an accepted connection may take to send
// its first byte.
const muxPreambleTimeout = 5 * time.Second

// mux accepts connections on the one raft listener and routes each by its
// first byte: raft connections go to the raft transport through Accept, RPC
// connections to serveRPC. It tracks every accepted connection so close can
// end them all.
type mux struct {
	ln        net.Listener
	adv       net.Addr
	clusterID string
	serveRPC  func(net.Conn)
	logger    *slog.Logger
	refused   atomic.Uint64 // connections dropped for another cluster's id

	raftCh    chan net.Conn
	done      chan struct{}
	closeOnce sync.Once
	raftDone  chan struct{} // closed when raft's transport closes its layer
	raftOnce  sync.Once
	wg        sync.WaitGroup

	mu          sync.Mutex
	conns       map[net.Conn]struct{}
	lastRefusal time.Time // when a refusal was last logged
}

func newMux(ln net.Listener, adv net.Addr, clusterID string, logger *slog.Logger) *mux {
	return &mux{
		ln: ln, adv: adv, clusterID: clusterID, logger: logger,
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

// route reads the connection's preamble and hands it on.
func (m *mux) route(c *trackedConn) {
	defer m.wg.Done()
	var b [2]byte
	_ = c.SetReadDeadline(time.Now().Add(muxPreambleTimeout))
	if _, err := io.ReadFull(c, b[:]); err != nil {
		_ = c.Close()
		return
	}
	id := make([]byte, b[1])
	if _, err := io.ReadFull(c, id); err != nil {
		_ = c.Close()
		return
	}
	_ = c.SetReadDeadline(time.Time{})
	if string(id) != m.clusterID {
		m.refuse(c, string(id))
		return
	}
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

// refuse drops a connection from a node of cluster id.
func (m *mux) refuse(c net.Conn, id string) {
	defer c.Close() // after counting: the dialer sees the close
	m.refused.Add(1)
	m.mu.Lock()
	log := time.Since(m.lastRefusal) >= refusalLogEvery
	if log {
		m.lastRefusal = time.Now()
	}
	m.mu.Unlock()
	if log {
		m.logger.Warn("raftstore: refusing a connection from a node of another cluster (a voter's address in use by another cluster's node, or a --cluster-id that differs between this cluster's brokers)",
			"remote", c.RemoteAddr().String(), "remote_cluster_id", id, "cluster_id", m.clusterID, "refused_so_far", m.refused.Load())
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
// come from the mux, outbound ones announce themselves with connRaft and
// the cluster id.
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
	return dialPreamble(string(address), timeout, connRaft, l.m.clusterID)
}

// dialPreamble connects to a node's raft listener and writes the preamble.
func dialPreamble(addr string, timeout time.Duration, kind byte, clusterID string) (net.Conn, error) {
	d := net.Dialer{Timeout: timeout}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	_ = conn.SetWriteDeadline(time.Now().Add(timeout))
	if _, err := conn.Write(append([]byte{kind, byte(len(clusterID))}, clusterID...)); err != nil {
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

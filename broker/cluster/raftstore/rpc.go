package raftstore

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"
)

// Handler answers one application request on the leader. body and the
// answer are opaque to the store. Returning an error wrapping ErrNotLeader
// makes the caller retry on the new leader; a *cluster.Error reaches the
// caller with its Kafka code.
type Handler func(ctx context.Context, body []byte) ([]byte, error)

// Request kinds the store itself serves. Application kinds must not start
// with "kdr.".
const (
	kindPropose = "kdr.propose"
	kindJoin    = "kdr.join"
	kindRemove  = "kdr.remove"
	kindBarrier = "kdr.barrier"
)

const (
	rpcServerIdle    = 2 * time.Minute  // the server closes a connection idle this long
	rpcClientIdle    = 30 * time.Second // the pool drops connections idle this long
	rpcMaxIdle       = 4                // pooled connections per address
	leaderRetryDelay = 50 * time.Millisecond
)

// SetHandler registers h for requests of kind sent with RequestLeader; nil
// removes it. It panics on a kind reserved by the store ("kdr." prefix).
func (s *Store) SetHandler(kind string, h Handler) {
	if strings.HasPrefix(kind, "kdr.") || kind == "" || len(kind) > 255 {
		panic(fmt.Sprintf("raftstore: request kind %q is reserved or invalid", kind))
	}
	s.handlersMu.Lock()
	defer s.handlersMu.Unlock()
	if h == nil {
		delete(s.handlers, kind)
		return
	}
	s.handlers[kind] = h
}

// leaderHandler returns what the leader runs for kind, or nil.
func (s *Store) leaderHandler(kind string) Handler {
	switch kind {
	case kindPropose:
		return s.handlePropose
	case kindJoin:
		return s.handleJoin
	case kindRemove:
		return s.handleRemove
	case kindBarrier:
		return s.handleBarrier
	}
	s.handlersMu.RLock()
	defer s.handlersMu.RUnlock()
	return s.handlers[kind]
}

// RequestLeader sends body to kind's handler on the current leader (running
// it in process when this node leads) and returns its answer. It retries
// across leader elections and unreachable leaders until ctx ends, but never
// resends a request that may have reached a handler: a connection failing
// mid-request is returned as an error.
func (s *Store) RequestLeader(ctx context.Context, kind string, body []byte) ([]byte, error) {
	var lastErr error
	for {
		select {
		case <-s.closing:
			return nil, ErrClosed
		default:
		}
		changed := s.leaderChanged()
		if id, addr, ok := s.Leader(); ok {
			var (
				resp []byte
				err  error
			)
			if id == s.cfg.NodeID {
				h := s.leaderHandler(kind)
				switch {
				case h == nil:
					return nil, fmt.Errorf("raftstore: no handler for request kind %q", kind)
				case !s.IsLeader():
					err = ErrNotLeader
				default:
					resp, err = h(ctx, body)
				}
			} else {
				resp, err = s.pool.call(ctx, s.peers.dialAddr(id, addr), kind, body)
			}
			if err == nil {
				return resp, nil
			}
			if !errors.Is(err, ErrNotLeader) && !errors.Is(err, errNotSent) {
				return nil, err
			}
			lastErr = err
		}
		select {
		case <-changed:
		case <-time.After(leaderRetryDelay):
		case <-s.closing:
			return nil, ErrClosed
		case <-ctx.Done():
			if lastErr != nil {
				return nil, fmt.Errorf("raftstore: %s: %w: %w (last attempt: %v)", kind, ErrNoLeader, ctx.Err(), lastErr)
			}
			return nil, fmt.Errorf("raftstore: %s: %w: %w", kind, ErrNoLeader, ctx.Err())
		}
	}
}

// serveRPC answers requests on one connection, one at a time.
func (s *Store) serveRPC(conn net.Conn) {
	br := bufio.NewReader(conn)
	for {
		_ = conn.SetReadDeadline(time.Now().Add(rpcServerIdle))
		kind, body, timeout, err := readRequest(br)
		if err != nil {
			return
		}
		if timeout <= 0 {
			timeout = s.cfg.RPCTimeout
		}
		ctx, cancel := context.WithTimeout(s.ctx, timeout)
		resp, herr := s.dispatch(ctx, kind, body)
		cancel()
		_ = conn.SetWriteDeadline(time.Now().Add(s.cfg.RPCTimeout))
		if err := writeResponse(conn, resp, herr); err != nil {
			return
		}
	}
}

// dispatch runs a request received from another node.
func (s *Store) dispatch(ctx context.Context, kind string, body []byte) ([]byte, error) {
	if kind == kindJoin && !s.IsLeader() {
		// A joining node knows only its seeds; a seed passes it on.
		return s.RequestLeader(ctx, kind, body)
	}
	h := s.leaderHandler(kind)
	if h == nil {
		return nil, fmt.Errorf("raftstore: no handler for request kind %q on node %d", kind, s.cfg.NodeID)
	}
	if !s.IsLeader() {
		return nil, ErrNotLeader
	}
	return h(ctx, body)
}

// errNotSent marks a request that never reached the other node, so sending
// it again cannot run it twice.
var errNotSent = errors.New("raftstore: request not sent")

// pool keeps idle kdr RPC connections per address so frequent small
// requests (broker heartbeats) do not dial each time.
type pool struct {
	timeout   time.Duration // dial timeout and default request timeout
	clusterID string        // sent in every connection's preamble

	mu     sync.Mutex
	idle   map[string][]*poolConn
	closed bool
}

type poolConn struct {
	net.Conn
	br   *bufio.Reader
	used time.Time
}

func newPool(timeout time.Duration, clusterID string) *pool {
	return &pool{timeout: timeout, clusterID: clusterID, idle: map[string][]*poolConn{}}
}

func (p *pool) get(ctx context.Context, addr string) (c *poolConn, reused bool, err error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, false, fmt.Errorf("%w: %w", errNotSent, ErrClosed)
	}
	for cs := p.idle[addr]; len(cs) > 0; cs = p.idle[addr] {
		c = cs[len(cs)-1]
		p.idle[addr] = cs[:len(cs)-1]
		if time.Since(c.used) < rpcClientIdle {
			p.mu.Unlock()
			return c, true, nil
		}
		_ = c.Close()
	}
	p.mu.Unlock()
	timeout := p.timeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(dl))
	}
	if timeout <= 0 {
		return nil, false, fmt.Errorf("%w: %w", errNotSent, ctx.Err())
	}
	conn, err := dialPreamble(addr, timeout, connRPC, p.clusterID)
	if err != nil {
		return nil, false, fmt.Errorf("%w: dialing %s: %w", errNotSent, addr, err)
	}
	return &poolConn{Conn: conn, br: bufio.NewReader(conn)}, false, nil
}

func (p *pool) put(addr string, c *poolConn) {
	c.used = time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || len(p.idle[addr]) >= rpcMaxIdle {
		_ = c.Close()
		return
	}
	p.idle[addr] = append(p.idle[addr], c)
}

func (p *pool) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for addr, cs := range p.idle {
		for _, c := range cs {
			_ = c.Close()
		}
		delete(p.idle, addr)
	}
}

// call sends one request to addr and waits for its answer. A pooled
// connection the peer closed while idle (nothing came back) is replaced by a
// fresh one once.
func (p *pool) call(ctx context.Context, addr, kind string, body []byte) ([]byte, error) {
	for attempt := 0; ; attempt++ {
		c, reused, err := p.get(ctx, addr)
		if err != nil {
			return nil, err
		}
		resp, we, started, poolable, err := p.roundTrip(ctx, c, kind, body)
		if err != nil {
			_ = c.Close()
			if reused && !started && attempt == 0 && ctx.Err() == nil {
				continue
			}
			// The request may have been delivered and run.
			return nil, fmt.Errorf("raftstore: %s to %s: %w: %w", kind, addr, ErrOutcomeUnknown, err)
		}
		if poolable {
			p.put(addr, c)
		} else {
			_ = c.Close()
		}
		if we != nil {
			return nil, we.err(addr, kind)
		}
		return resp, nil
	}
}

// roundTrip writes one request and reads its answer within ctx. poolable is
// false when ctx ended during the exchange, since its deadline may then
// have been cut short under the answer.
func (p *pool) roundTrip(ctx context.Context, c *poolConn, kind string, body []byte) (resp []byte, we *wireError, started, poolable bool, err error) {
	deadline := time.Now().Add(p.timeout)
	if dl, ok := ctx.Deadline(); ok {
		deadline = dl
	}
	_ = c.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Unix(1, 0)) })
	if err := writeRequest(c, time.Until(deadline), kind, body); err != nil {
		stop()
		return nil, nil, false, false, err
	}
	resp, we, started, err = readResponse(c.br)
	poolable = stop()
	return resp, we, started, poolable, err
}

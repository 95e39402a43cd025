package wire

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"syscall"
	"time"
)

// Config holds the socket-level limits, named after the Kafka broker settings
// they mirror.
type Config struct {
	// MaxRequestBytes is socket.request.max.bytes: a larger size prefix closes
	// the connection before any of the body is read. Default 100 MiB.
	MaxRequestBytes int32
	// IdleTimeout is connections.max.idle.ms: a connection with no request for
	// this long is closed. Default 10 minutes.
	IdleTimeout time.Duration
	// MaxQueuedResponses bounds how many encoded-but-unwritten responses a
	// connection may hold before request processing waits for the socket.
	// Default 32.
	MaxQueuedResponses int
}

// DefaultConfig returns Kafka's defaults.
func DefaultConfig() Config {
	return Config{MaxRequestBytes: 100 << 20, IdleTimeout: 10 * time.Minute, MaxQueuedResponses: 32}
}

// Validate reports the first invalid field.
func (c Config) Validate() error {
	switch {
	case c.MaxRequestBytes < minFrame:
		return fmt.Errorf("socket.request.max.bytes=%d: must be at least %d", c.MaxRequestBytes, minFrame)
	case c.IdleTimeout <= 0:
		return fmt.Errorf("connections.max.idle.ms=%s: must be positive", c.IdleTimeout)
	case c.MaxQueuedResponses < 1:
		return fmt.Errorf("max queued responses=%d: must be at least 1", c.MaxQueuedResponses)
	}
	return nil
}

// Server accepts Kafka connections and serves them through a Registry.
type Server struct {
	cfg     Config
	reg     *Registry
	log     *slog.Logger
	metrics *Metrics

	ctx    context.Context
	cancel context.CancelFunc

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// NewServer returns a server; call Serve with a listener to start it.
func NewServer(cfg Config, reg *Registry, logger *slog.Logger, metrics *Metrics) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if metrics == nil {
		metrics = NewMetrics(nil)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Server{cfg: cfg, reg: reg, log: logger, metrics: metrics, ctx: ctx, cancel: cancel, conns: map[net.Conn]struct{}{}}, nil
}

// Serve accepts connections on ln until Close; it returns nil after Close.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ln.Close()
	}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()
	go func() { <-s.ctx.Done(); ln.Close() }()

	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscall.EMFILE) {
				// Out of file descriptors or a transient accept error:
				// back off instead of spinning, keep serving.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.log.Warn("accept failed, retrying", "err", err, "backoff", backoff)
				time.Sleep(backoff)
				continue
			}
			return fmt.Errorf("wire: accept on %s: %w", ln.Addr(), err)
		}
		backoff = 0
		if !s.track(nc) {
			nc.Close()
			return nil
		}
		go s.serve(nc)
	}
}

func (s *Server) track(nc net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[nc] = struct{}{}
	s.wg.Add(1)
	s.metrics.connections.Inc()
	return true
}

func (s *Server) untrack(nc net.Conn) {
	s.mu.Lock()
	delete(s.conns, nc)
	s.mu.Unlock()
	s.metrics.connections.Dec()
	s.wg.Done()
}

// Close stops accepting, closes every connection and waits for their
// goroutines to finish. In-flight handlers see their context cancelled.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.cancel()
	for nc := range s.conns {
		nc.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

package faultproxy

import (
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// mode is what a proxy does with traffic.
type mode int

const (
	modeOpen      mode = iota // forward
	modeBlackhole             // hold everything, close nothing
	modeRefuse                // reset everything
)

func (m mode) String() string {
	switch m {
	case modeOpen:
		return "open"
	case modeBlackhole:
		return "blackhole"
	default:
		return "refuse"
	}
}

// DialTimeout bounds how long a proxy waits to connect upstream; a failed
// dial resets the client's connection.
const DialTimeout = 5 * time.Second

// Proxy forwards TCP connections from a loopback listener to an upstream
// address, one upstream connection per accepted connection. All methods are
// safe for concurrent use.
//
// Lock order: gate → mu. Writers hold gate shared while they write, so Cut
// and Refuse can wait, by taking it exclusively, for in-flight writes to end.
type Proxy struct {
	ln   net.Listener
	done chan struct{} // closed by Close
	wg   sync.WaitGroup

	gate      sync.RWMutex
	forwarded atomic.Int64

	mu       sync.Mutex
	upstream string
	mode     mode
	latency  time.Duration
	changed  chan struct{} // closed and replaced on every change of mode
	links    map[*link]struct{}
	closed   bool
}

// New starts a proxy on a free 127.0.0.1 port that forwards to upstream.
// With upstream "" connections are reset until SetUpstream names one (for a
// server that must be told the proxy's address before it starts).
func New(upstream string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("faultproxy: listen: %w", err)
	}
	p := &Proxy{
		ln:       ln,
		done:     make(chan struct{}),
		upstream: upstream,
		changed:  make(chan struct{}),
		links:    map[*link]struct{}{},
	}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is the address clients dial instead of the upstream.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Upstream is the address the proxy forwards to.
func (p *Proxy) Upstream() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.upstream
}

// SetUpstream changes where new connections are forwarded (for a node that
// restarted on another port); live connections keep their upstream.
func (p *Proxy) SetUpstream(addr string) {
	p.mu.Lock()
	p.upstream = addr
	p.mu.Unlock()
}

// SetLatency delays every chunk of bytes by d in each direction, measured
// from when the proxy read it; 0 (the default) forwards at once.
func (p *Proxy) SetLatency(d time.Duration) {
	p.mu.Lock()
	p.latency = d
	p.mu.Unlock()
}

// Conns is the number of client connections the proxy holds open.
func (p *Proxy) Conns() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.links)
}

// Forwarded is the number of bytes the proxy has written to either end.
func (p *Proxy) Forwarded() int64 { return p.forwarded.Load() }

// Cut black-holes the proxy: see the package doc. It returns once no byte
// can be forwarded any more.
func (p *Proxy) Cut() { p.setMode(modeBlackhole) }

// Refuse resets every live connection and every new one: see the package
// doc. It returns once no byte can be forwarded any more.
func (p *Proxy) Refuse() { p.setMode(modeRefuse) }

// Heal makes the proxy forward again, including the bytes held while it was
// cut.
func (p *Proxy) Heal() { p.setMode(modeOpen) }

func (p *Proxy) setMode(m mode) {
	p.mu.Lock()
	if p.closed || p.mode == m {
		p.mu.Unlock()
		return
	}
	p.mode = m
	close(p.changed)
	p.changed = make(chan struct{})
	links := make([]*link, 0, len(p.links))
	for l := range p.links {
		links = append(links, l)
		if m != modeOpen {
			// Interrupts writes in progress; writers clear the deadline
			// under mu only while the mode is open.
			l.interruptWrites()
		}
	}
	p.mu.Unlock()
	if m == modeOpen {
		return
	}
	// Wait for writes that passed the mode check before the change: taking
	// the gate exclusively is the barrier.
	p.gate.Lock()
	p.gate.Unlock()
	if m == modeRefuse {
		for _, l := range links {
			l.reset()
		}
	}
}

// Close stops the listener, closes every connection and waits for the
// proxy's goroutines to end.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	close(p.done)
	links := make([]*link, 0, len(p.links))
	for l := range p.links {
		links = append(links, l)
	}
	p.mu.Unlock()
	err := p.ln.Close()
	for _, l := range links {
		l.close()
	}
	p.wg.Wait()
	return err
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		l := newLink(p, c)
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			c.Close()
			return
		}
		p.links[l] = struct{}{}
		p.wg.Add(1)
		p.mu.Unlock()
		go l.serve()
	}
}

// state returns the current mode and the channel closed on its next change.
func (p *Proxy) state() (mode, <-chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return modeRefuse, p.done
	}
	return p.mode, p.changed
}

// waitOpen blocks until the proxy forwards; false means the link must end
// (refused, closed, or the link itself closed).
func (p *Proxy) waitOpen(l *link) bool {
	for {
		m, changed := p.state()
		switch m {
		case modeOpen:
			return true
		case modeRefuse:
			return false
		}
		select {
		case <-changed:
		case <-l.done:
			return false
		}
	}
}

func (p *Proxy) remove(l *link) {
	p.mu.Lock()
	delete(p.links, l)
	p.mu.Unlock()
	p.wg.Done()
}

package faultproxy

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"time"
)

// chunkSize is the most a pump reads at once; chunkQueue is how many chunks
// it reads ahead of what it has written, so a cut path holds at most
// chunkSize*chunkQueue bytes per direction before TCP back-pressure stops
// the sender.
const (
	chunkSize  = 32 << 10
	chunkQueue = 16
)

// errStopped ends a pump whose proxy refuses or closed.
var errStopped = errors.New("faultproxy: link stopped")

// link is one client connection and the upstream connection made for it.
type link struct {
	p      *Proxy
	client net.Conn
	done   chan struct{} // closed by close

	mu       sync.Mutex
	upstream net.Conn
	closed   bool
}

func newLink(p *Proxy, client net.Conn) *link {
	return &link{p: p, client: client, done: make(chan struct{})}
}

// serve waits for the path to open, dials upstream and pumps both ways
// until both directions ended or the link was reset.
func (l *link) serve() {
	defer l.p.remove(l)
	defer l.close()
	// A black-holed path accepts but does not connect upstream: the SYN
	// would be lost on a partitioned network.
	if !l.p.waitOpen(l) {
		l.reset()
		return
	}
	up, err := net.DialTimeout("tcp", l.p.Upstream(), DialTimeout)
	if err != nil {
		l.reset()
		return
	}
	if !l.setUpstream(up) {
		up.Close()
		return
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); l.pump(l.client, up) }()
	go func() { defer wg.Done(); l.pump(up, l.client) }()
	wg.Wait()
}

func (l *link) setUpstream(up net.Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false
	}
	l.upstream = up
	return true
}

func (l *link) conns() []net.Conn {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.upstream == nil {
		return []net.Conn{l.client}
	}
	return []net.Conn{l.client, l.upstream}
}

// interruptWrites makes every write in progress on the link return. Called
// with p.mu held.
func (l *link) interruptWrites() {
	past := time.Unix(1, 0)
	for _, c := range l.conns() {
		c.SetWriteDeadline(past)
	}
}

// reset closes both connections with an RST instead of a FIN.
func (l *link) reset() {
	for _, c := range l.conns() {
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetLinger(0)
		}
	}
	l.close()
}

func (l *link) close() {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	l.closed = true
	close(l.done)
	up := l.upstream
	l.mu.Unlock()
	l.client.Close()
	if up != nil {
		up.Close()
	}
}

// chunk is bytes read from one end, or the way that end stopped sending.
type chunk struct {
	data  []byte
	at    time.Time
	eof   bool // clean end of stream: forward as a FIN
	abort bool // read error (reset): forward as an RST
}

// pump forwards src to dst: a reader goroutine queues chunks, this
// goroutine delays them by the proxy's latency and writes them while the
// path is open.
func (l *link) pump(src, dst net.Conn) {
	chunks := make(chan chunk, chunkQueue)
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		for {
			buf := make([]byte, chunkSize)
			n, err := src.Read(buf)
			c := chunk{data: buf[:n], at: time.Now()}
			if err != nil {
				c.eof, c.abort = errors.Is(err, io.EOF), !errors.Is(err, io.EOF)
			}
			if n > 0 || err != nil {
				select {
				case chunks <- c:
				case <-l.done:
					return
				}
			}
			if err != nil {
				return
			}
		}
	}()
	defer func() { <-readerDone }()
	for {
		var c chunk
		select {
		case c = <-chunks:
		case <-l.done:
			return
		}
		if !l.delay(c.at) {
			return
		}
		if len(c.data) > 0 {
			if err := l.write(dst, c.data); err != nil {
				l.reset()
				return
			}
		}
		switch {
		case c.abort:
			// Forward the reset once the path is open, as the network would.
			l.whenOpen(dst, func() error { return nil })
			l.reset()
			return
		case c.eof:
			if err := l.whenOpen(dst, func() error { return closeWrite(dst) }); err != nil {
				l.reset()
			}
			return
		}
	}
}

// delay waits until the proxy's latency has passed since at.
func (l *link) delay(at time.Time) bool {
	l.p.mu.Lock()
	d := l.p.latency
	l.p.mu.Unlock()
	wait := time.Until(at.Add(d))
	if d == 0 || wait <= 0 {
		return true
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-l.done:
		return false
	}
}

// write writes b to dst, pausing while the path is cut.
func (l *link) write(dst net.Conn, b []byte) error {
	for len(b) > 0 {
		var n int
		err := l.whenOpen(dst, func() error {
			var werr error
			n, werr = dst.Write(b)
			return werr
		})
		b = b[n:]
		l.p.forwarded.Add(int64(n))
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			return err
		}
	}
	return nil
}

// whenOpen runs op on dst once the path is open, such that a Cut or Refuse
// that returned before op started stops op: op runs with the gate held
// shared, and the mode check and the clearing of dst's write deadline
// happen under mu, the lock setMode changes the mode and sets deadlines
// under. op's deadline errors mean it was cut mid-way; the caller retries.
func (l *link) whenOpen(dst net.Conn, op func() error) error {
	p := l.p
	for {
		p.gate.RLock()
		p.mu.Lock()
		open := p.mode == modeOpen && !p.closed
		if open {
			dst.SetWriteDeadline(time.Time{})
		}
		p.mu.Unlock()
		if open {
			err := op()
			p.gate.RUnlock()
			return err
		}
		p.gate.RUnlock()
		if !p.waitOpen(l) {
			return errStopped
		}
	}
}

func closeWrite(c net.Conn) error {
	if tc, ok := c.(*net.TCPConn); ok {
		return tc.CloseWrite()
	}
	return c.Close()
}

package replica

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// maxResponse bounds a response a leader may send a follower.
const maxResponse = 256 << 20

// Dialer opens inter-broker connections; TLS or a fault proxy plug in here.
type Dialer func(ctx context.Context, addr string) (net.Conn, error)

func defaultDialer(ctx context.Context, addr string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, "tcp", addr)
}

// conn is one connection to a leader carrying one request at a time. Kafka
// requests are versioned: kdr brokers speak these fixed versions to each
// other (Fetch v12 carries ReplicaID, CurrentLeaderEpoch and flexible
// fields; OffsetForLeaderEpoch v4 carries ReplicaID).
type conn struct {
	clientID string
	dial     Dialer

	mu   sync.Mutex
	addr string
	nc   net.Conn
	br   *bufio.Reader
	corr int32
	buf  []byte
}

func newConn(clientID string, dial Dialer) *conn {
	if dial == nil {
		dial = defaultDialer
	}
	return &conn{clientID: clientID, dial: dial}
}

// request sends req to addr (reconnecting if the address changed or the
// last request failed) and decodes the answer into resp. Any error closes
// the connection.
func (c *conn) request(ctx context.Context, addr string, req kmsg.Request, resp kmsg.Response) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.nc != nil && c.addr != addr {
		c.closeLocked()
	}
	if c.nc == nil {
		nc, err := c.dial(ctx, addr)
		if err != nil {
			return fmt.Errorf("dialing leader %s: %w", addr, err)
		}
		c.nc, c.addr, c.br = nc, addr, bufio.NewReaderSize(nc, 64<<10)
	}
	err := c.roundTrip(ctx, req, resp)
	if err != nil {
		c.closeLocked()
	}
	return err
}

func (c *conn) roundTrip(ctx context.Context, req kmsg.Request, resp kmsg.Response) error {
	deadline := time.Now().Add(30 * time.Second)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	c.nc.SetDeadline(deadline)
	// A canceled ctx interrupts a blocked read or write.
	stop := context.AfterFunc(ctx, func() { c.nc.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	c.corr++
	b := c.buf[:0]
	b = append(b, 0, 0, 0, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(req.Key()))
	b = binary.BigEndian.AppendUint16(b, uint16(req.GetVersion()))
	b = binary.BigEndian.AppendUint32(b, uint32(c.corr))
	b = binary.BigEndian.AppendUint16(b, uint16(len(c.clientID)))
	b = append(b, c.clientID...)
	if req.IsFlexible() {
		b = append(b, 0) // no header tags
	}
	b = req.AppendTo(b)
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	c.buf = b
	if _, err := c.nc.Write(b); err != nil {
		return err
	}

	var size [4]byte
	if _, err := io.ReadFull(c.br, size[:]); err != nil {
		return err
	}
	n := binary.BigEndian.Uint32(size[:])
	if n < 4 || n > maxResponse {
		return fmt.Errorf("response of %d bytes from %s", n, c.addr)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(c.br, body); err != nil {
		return err
	}
	if got := int32(binary.BigEndian.Uint32(body)); got != c.corr {
		return fmt.Errorf("correlation id %d from %s, want %d", got, c.addr, c.corr)
	}
	body = body[4:]
	resp.SetVersion(req.GetVersion())
	if resp.IsFlexible() {
		r := kbin.Reader{Src: body}
		n := r.Uvarint()
		for i := uint32(0); i < n && r.Ok(); i++ {
			r.Uvarint()
			r.Span(int(r.Uvarint()))
		}
		if !r.Ok() {
			return fmt.Errorf("malformed response header from %s", c.addr)
		}
		body = r.Src
	}
	return resp.ReadFrom(body)
}

func (c *conn) closeLocked() {
	if c.nc != nil {
		c.nc.Close()
		c.nc, c.br = nil, nil
	}
}

func (c *conn) close() {
	c.mu.Lock()
	c.closeLocked()
	c.mu.Unlock()
}

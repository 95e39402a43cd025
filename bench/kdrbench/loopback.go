package main

import (
	"context"
	"io"
	"net"
	"time"
)

// loopbackGBps copies size bytes through one TCP connection over 127.0.0.1
// inside this process and returns GB/s (10^9 bytes): the most a single
// client connection could carry on this machine, broker or not.
func loopbackGBps(ctx context.Context, size int64) (float64, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()

	received := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			received <- err
			return
		}
		defer c.Close()
		_, err = io.Copy(io.Discard, c)
		received <- err
	}()

	c, err := (&net.Dialer{}).DialContext(ctx, "tcp", ln.Addr().String())
	if err != nil {
		return 0, err
	}
	buf := make([]byte, 256<<10)
	start := time.Now()
	for left := size; left > 0 && ctx.Err() == nil; {
		n := min(left, int64(len(buf)))
		if _, err := c.Write(buf[:n]); err != nil {
			c.Close()
			return 0, err
		}
		left -= n
	}
	c.Close()
	if err := <-received; err != nil {
		return 0, err
	}
	return float64(size) / time.Since(start).Seconds() / 1e9, ctx.Err()
}

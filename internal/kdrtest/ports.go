package kdrtest

import (
	"bytes"
	"net"
	"strconv"
	"sync"
)

// FreeAddr returns a loopback host:port that was free a moment ago.
func FreeAddr(t TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("kdrtest: %v", err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// ReserveAddr is FreeAddr for a test that also reserves ports with
// FreeBasePort: an address whose port is not in avoid, which it then adds
// it to. (A port FreeBasePort reserved is free until the cluster binds
// it, so FreeAddr alone may hand it out again.)
func ReserveAddr(t TB, avoid map[int]bool) string {
	t.Helper()
	for range 200 {
		addr := FreeAddr(t)
		p, err := strconv.Atoi(addr[len("127.0.0.1:"):])
		if err != nil {
			t.Fatalf("kdrtest: %v", err)
		}
		if !avoid[p] {
			avoid[p] = true
			return addr
		}
	}
	t.Fatalf("kdrtest: no free port outside the %d reserved", len(avoid))
	return ""
}

// FreeBasePort finds a base port p for a topology's local cluster of n
// brokers (topology.LocalCluster.LocalPorts): p+i, p+100+i and p+200+i free
// for every broker i and none of them in avoid, which it then adds them to,
// so that several clusters of one topology never share a port.
func FreeBasePort(t TB, n int, avoid map[int]bool) int {
	t.Helper()
	for range 200 {
		p, err := strconv.Atoi(FreeAddr(t)[len("127.0.0.1:"):])
		if err != nil {
			t.Fatalf("kdrtest: %v", err)
		}
		var ports []int
		for i := range n {
			ports = append(ports, p+i, p+100+i, p+200+i)
		}
		ok := p+200+n <= 65535
		for _, q := range ports {
			if !ok || avoid[q] {
				ok = false
				break
			}
			l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(q))
			if err != nil {
				ok = false
				break
			}
			l.Close()
		}
		if ok {
			for _, q := range ports {
				avoid[q] = true
			}
			return p
		}
	}
	t.Fatalf("kdrtest: no free base port for %d brokers", n)
	return 0
}

// Output collects a process's output for a test: safe to write from the
// process's copier and read from the test at once.
type Output struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (o *Output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.Write(p)
}

func (o *Output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.String()
}

// SilentAddr returns the address of a loopback listener that accepts
// connections and never answers, as a wedged process or a black-holed
// host does, until the test ends.
func SilentAddr(t TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("kdrtest: %v", err)
	}
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done // conns is the accept loop's until it has returned
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}

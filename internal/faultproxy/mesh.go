package faultproxy

import (
	"errors"
	"fmt"
)

// Mesh is a Proxy for every ordered pair of nodes: node i reaches node j
// through Addr(i, j), so the path from i to j can fail on its own. A pair's
// proxy carries the connections i opens to j, in both directions of bytes;
// Isolate and Partition cut both (i, j) and (j, i).
//
// Give each node the mesh addresses of its peers (its bootstrap or voter
// list) instead of their real addresses. Clients outside the mesh (test
// producers) dial nodes directly or through a Proxy of their own.
type Mesh struct {
	n       int
	proxies [][]*Proxy // proxies[from][to]; nil on the diagonal
}

// NewMesh starts n*(n-1) proxies, one per ordered pair of addrs.
func NewMesh(addrs []string) (*Mesh, error) {
	m := &Mesh{n: len(addrs), proxies: make([][]*Proxy, len(addrs))}
	for i := range addrs {
		m.proxies[i] = make([]*Proxy, len(addrs))
		for j, to := range addrs {
			if i == j {
				continue
			}
			p, err := New(to)
			if err != nil {
				m.Close()
				return nil, fmt.Errorf("faultproxy: mesh %d->%d: %w", i, j, err)
			}
			m.proxies[i][j] = p
		}
	}
	return m, nil
}

// Size is the number of nodes.
func (m *Mesh) Size() int { return m.n }

// Proxy is the proxy node from uses to reach node to. It panics if from ==
// to or either is out of range.
func (m *Mesh) Proxy(from, to int) *Proxy {
	if from == to {
		panic(fmt.Sprintf("faultproxy: no proxy from node %d to itself", from))
	}
	return m.proxies[from][to]
}

// Addr is the address node from dials to reach node to.
func (m *Mesh) Addr(from, to int) string { return m.Proxy(from, to).Addr() }

// Peers is the list of addresses node from uses for every node, with
// self at its own index (a node reaches itself directly).
func (m *Mesh) Peers(from int, self string) []string {
	out := make([]string, m.n)
	for to := range out {
		if to == from {
			out[to] = self
		} else {
			out[to] = m.Addr(from, to)
		}
	}
	return out
}

// SetAddr retargets every proxy towards node to at addr, for a node that
// restarted on another port. Live connections keep their old upstream.
func (m *Mesh) SetAddr(to int, addr string) {
	for from := range m.proxies {
		if from != to {
			m.proxies[from][to].SetUpstream(addr)
		}
	}
}

// Cut black-holes the path from one node to another (one direction of
// connection set-up; the reverse path keeps working).
func (m *Mesh) Cut(from, to int) { m.Proxy(from, to).Cut() }

// Heal restores the path from one node to another.
func (m *Mesh) Heal(from, to int) { m.Proxy(from, to).Heal() }

// Isolate black-holes every path into and out of node i.
func (m *Mesh) Isolate(i int) {
	m.each(func(from, to int, p *Proxy) {
		if from == i || to == i {
			p.Cut()
		}
	})
}

// IsolateRefuse resets every connection into and out of node i and keeps
// refusing new ones, as if its host's ports were closed.
func (m *Mesh) IsolateRefuse(i int) {
	m.each(func(from, to int, p *Proxy) {
		if from == i || to == i {
			p.Refuse()
		}
	})
}

// Partition black-holes every path between nodes of different groups; nodes
// in no group are cut off from every grouped node. Paths within a group
// are left as they are.
func (m *Mesh) Partition(groups ...[]int) {
	side := make([]int, m.n)
	for i := range side {
		side[i] = -1 - i // ungrouped: a group of its own
	}
	for g, nodes := range groups {
		for _, i := range nodes {
			side[i] = g
		}
	}
	m.each(func(from, to int, p *Proxy) {
		if side[from] != side[to] {
			p.Cut()
		}
	})
}

// HealAll restores every path.
func (m *Mesh) HealAll() { m.each(func(_, _ int, p *Proxy) { p.Heal() }) }

// Close closes every proxy.
func (m *Mesh) Close() error {
	var errs []error
	m.each(func(_, _ int, p *Proxy) {
		if p != nil {
			errs = append(errs, p.Close())
		}
	})
	return errors.Join(errs...)
}

func (m *Mesh) each(fn func(from, to int, p *Proxy)) {
	for from, row := range m.proxies {
		for to, p := range row {
			if from != to && p != nil {
				fn(from, to, p)
			}
		}
	}
}

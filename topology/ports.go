package topology

import (
	"fmt"
	"net"
	"strconv"

	"github.com/kdr-io/kdr/internal/yamlschema"
)

// PortRange is a run of ports a local cluster listens on, Lo to Hi
// inclusive.
type PortRange struct {
	Use    string // "kafka", "raft" or "metrics"
	Lo, Hi int
}

func (r PortRange) String() string {
	if r.Lo == r.Hi {
		return fmt.Sprintf("%s port %d", r.Use, r.Lo)
	}
	return fmt.Sprintf("%s ports %d-%d", r.Use, r.Lo, r.Hi)
}

// PortRanges are the ports every broker of the local cluster uses (see
// LocalPorts), by use.
func (l LocalCluster) PortRanges() []PortRange {
	n := l.Brokers
	k0, r0, m0 := l.LocalPorts(0)
	return []PortRange{{"kafka", k0, k0 + n - 1}, {"raft", r0, r0 + n - 1}, {"metrics", m0, m0 + n - 1}}
}

// verb agrees v with r's port or ports.
func verb(r PortRange, v string) string {
	if r.Lo == r.Hi {
		return v + "s"
	}
	return v
}

// overlap returns the first ports of a and b that coincide, if any.
func overlap(a, b []PortRange) (ra, rb PortRange, port int, ok bool) {
	for _, x := range a {
		for _, y := range b {
			if lo := max(x.Lo, y.Lo); lo <= min(x.Hi, y.Hi) {
				return x, y, lo, true
			}
		}
	}
	return PortRange{}, PortRange{}, 0, false
}

// sameHost reports whether listeners on hosts a and b can collide: the same
// address, or either one every address.
func sameHost(a, b string) bool {
	norm := func(h string) string {
		switch h {
		case "", "0.0.0.0", "::", "[::]":
			return "*"
		case "localhost", "::1":
			return "127.0.0.1"
		}
		return h
	}
	a, b = norm(a), norm(b)
	return a == "*" || b == "*" || a == b
}

// localOK reports whether a local cluster's ports are worth comparing
// (its own problems are reported elsewhere).
func localOK(l *LocalCluster) bool {
	return l != nil && l.Brokers >= 1 && l.Brokers <= 99 && l.BasePort >= 1024 && l.BasePort <= maxBasePort(l.Brokers)
}

// consulPort is the port of the Consul agent on host, if the failover
// coordination uses one there.
func consulPort(t *Topology, host string) (int, bool) {
	if t.Failover.Coordination.Backend != BackendConsul {
		return 0, false
	}
	h, p, err := net.SplitHostPort(t.Failover.Coordination.Consul.Address)
	if err != nil || !sameHost(h, host) {
		return 0, false
	}
	port, err := strconv.Atoi(p)
	return port, err == nil
}

// ports reports local clusters whose port ranges collide with each other
// or with the Consul agent.
func (c *checker) ports(t *Topology) {
	for j := range t.Clusters {
		lj := t.Clusters[j].Local
		if !localOK(lj) {
			continue
		}
		field := yamlschema.IndexPath("clusters", j) + ".local.basePort"
		for i := range j {
			li := t.Clusters[i].Local
			if !localOK(li) || !sameHost(li.Host, lj.Host) {
				continue
			}
			if rj, ri, port, ok := overlap(lj.PortRanges(), li.PortRanges()); ok {
				c.add(field, fmt.Sprintf("%s of %q %s the %s of %q (clusters[%d]) at %d",
					rj, t.Clusters[j].Name, verb(rj, "overlap"), ri, t.Clusters[i].Name, i, port), freePortHint(t, j))
			}
		}
		if port, ok := consulPort(t, lj.Host); ok {
			for _, r := range lj.PortRanges() {
				if port >= r.Lo && port <= r.Hi {
					c.add(field, fmt.Sprintf("%s of %q %s %d, the Consul agent's port (failover.coordination.consul.address)",
						r, t.Clusters[j].Name, verb(r, "include"), port), freePortHint(t, j))
				}
			}
		}
	}
}

// freePortHint suggests the nearest basePort above cluster j's that clashes
// with nothing.
func freePortHint(t *Topology, j int) string {
	const why = "broker i uses basePort+i for Kafka, basePort+100+i for raft and basePort+200+i for metrics"
	lj := *t.Clusters[j].Local
	for b := lj.BasePort + 1; b <= maxBasePort(lj.Brokers); b++ {
		lj.BasePort = b
		if free(t, j, lj) {
			return fmt.Sprintf("move basePort to %d or another free range (%s)", b, why)
		}
	}
	return "pick a basePort whose ranges are free (" + why + ")"
}

func free(t *Topology, j int, lj LocalCluster) bool {
	mine := lj.PortRanges()
	for i, cl := range t.Clusters {
		if i == j || !localOK(cl.Local) || !sameHost(cl.Local.Host, lj.Host) {
			continue
		}
		if _, _, _, ok := overlap(mine, cl.Local.PortRanges()); ok {
			return false
		}
	}
	if port, ok := consulPort(t, lj.Host); ok {
		for _, r := range mine {
			if port >= r.Lo && port <= r.Hi {
				return false
			}
		}
	}
	return true
}

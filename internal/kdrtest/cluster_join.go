package kdrtest

import (
	"slices"
	"strconv"
	"strings"
)

// AddBroker starts one more broker process, with the next node id, that
// joins the running cluster through --join rather than being a voter of the
// metadata quorum, and waits until Metadata lists it as live. Its flags are
// ClusterFlags then extra (the cluster's own extra flags are not repeated).
// It returns the new node id; the broker is c.Brokers[c.Index(id)], and
// Kill, Stop and Restart work on it as on the voters.
func (c *Cluster) AddBroker(extra ...string) int32 {
	c.t.Helper()
	id := int32(len(c.Brokers) + 1)
	ports := freePorts(c.t, 2)
	args := append(slices.Clone(ClusterFlags),
		"--cluster-id", c.id, "--node-id", strconv.Itoa(int(id)), "--listen", ports[0], "--raft-listen", ports[1],
		// Any member accepts a join; listing them all survives one being down.
		"--join", strings.Join(c.raft, ","),
		"--offsets-topic-replication-factor", strconv.Itoa(min(len(c.Brokers), 3)))
	args = append(args, extra...)
	c.Brokers = append(c.Brokers, StartProcess(c.t, c.Brokers[0].bin, args...))
	c.raft = append(c.raft, ports[1])
	c.WaitBrokers(len(c.Brokers))
	return id
}

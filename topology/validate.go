package topology

import (
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kdr-io/kdr/clientsec"
	"github.com/kdr-io/kdr/internal/yamlschema"
	"github.com/kdr-io/kdr/mirror/naming"
)

// checker collects the problems of one document. idx locates them; it is
// nil for a topology built in code.
type checker struct {
	file string
	idx  *yamlschema.Index
	errs []*Error
}

func (c *checker) addAt(p yamlschema.Position, field, problem, hint string) {
	c.errs = append(c.errs, &Error{File: c.file, Line: p.Line, Column: p.Column, Field: field, Problem: problem, Hint: hint})
}

// add reports a problem at field, located at field's value or, if the
// document does not have it, at the mapping that should.
func (c *checker) add(field, problem, hint string) { c.addAt(c.idx.Pos(field), field, problem, hint) }

// Validate checks t as Load would use it (zero values take their defaults,
// see ApplyDefaults) and returns every problem, each an *Error, joined.
// Load and Parse have already validated what they return; Validate is for
// topologies built in code, such as Demo. Its errors carry no positions.
func (t *Topology) Validate() error {
	cp := *t
	cp.Clusters = slices.Clone(t.Clusters)
	for i := range cp.Clusters {
		if l := cp.Clusters[i].Local; l != nil {
			l2 := *l
			cp.Clusters[i].Local = &l2
		}
	}
	cp.ApplyDefaults()
	c := &checker{file: t.File}
	c.validate(&cp)
	return yamlschema.Join(c.errs)
}

// validate runs every rule on a defaulted topology.
func (c *checker) validate(t *Topology) {
	c.header(t)
	c.clusters(t)
	c.ports(t)
	bad := c.patterns(t)
	c.mirrorBlocks(t)
	flows := t.Flows()
	c.flowSettings(t, flows)
	c.aliases(t, flows)
	var good []FlowSpec
	for _, f := range flows {
		if !bad[f.Pattern] {
			good = append(good, f)
		}
	}
	good = c.duplicateFlows(good)
	c.sharedSyncs(good)
	c.cycles(t, good)
	c.identityPaths(good)
	c.failover(t)
}

func (c *checker) header(t *Topology) {
	switch t.APIVersion {
	case APIVersion:
	case "":
		c.add("apiVersion", "required", fmt.Sprintf("add \"apiVersion: %s\" at the top", APIVersion))
	default:
		c.add("apiVersion", fmt.Sprintf("%q: want %q", t.APIVersion, APIVersion), fmt.Sprintf("write \"apiVersion: %s\"", APIVersion))
	}
	switch t.Kind {
	case Kind:
	case "":
		c.add("kind", "required", fmt.Sprintf("add \"kind: %s\" at the top", Kind))
	default:
		c.add("kind", fmt.Sprintf("%q: want %q", t.Kind, Kind), fmt.Sprintf("write \"kind: %s\"", Kind))
	}
	if strings.TrimSpace(t.Metadata.Name) == "" {
		c.add("metadata.name", "required", "name the topology (metadata: {name: prod}); it keys failover state")
	}
}

func (c *checker) clusters(t *Topology) {
	if len(t.Clusters) == 0 {
		c.add("clusters", "no clusters", "list at least one cluster, each with a name and either bootstrap or local")
		return
	}
	names := map[string]int{}
	dirs := map[string]int{}
	for i, cl := range t.Clusters {
		p := yamlschema.IndexPath("clusters", i)
		switch first, dup := names[cl.Name]; {
		case cl.Name == "":
			c.add(p+".name", "required", "give the cluster a short name such as east: it is the MM2 alias in east.orders")
		case dup:
			c.add(p+".name", fmt.Sprintf("%q is also the name of clusters[%d]", cl.Name, first), "cluster names must be unique")
		default:
			names[cl.Name] = i
		}
		switch {
		case cl.Local != nil && len(cl.Bootstrap) > 0:
			c.add(p, "both bootstrap and local are set",
				"keep bootstrap for an existing cluster kdr connects to, or local for one kdr runs itself, not both")
		case cl.Local == nil && len(cl.Bootstrap) == 0:
			c.add(p, "neither bootstrap nor local is set",
				"add bootstrap: [host:port, ...] for an existing cluster, or local: {basePort: N} for one kdr runs")
		}
		for j, b := range cl.Bootstrap {
			if err := checkHostPort(b); err != nil {
				c.add(yamlschema.IndexPath(p+".bootstrap", j), fmt.Sprintf("%q: %v", b, err), "write host:port, e.g. kafka1.example.com:9092")
			}
		}
		if cl.Local != nil {
			c.local(p+".local", cl.Local)
			if first, dup := dirs[cl.Local.DataDir]; dup && cl.Local.DataDir != "" {
				c.add(p+".local.dataDir", fmt.Sprintf("%q is also the data dir of clusters[%d]", cl.Local.DataDir, first),
					"give each local cluster its own dataDir (the default is the cluster's name)")
			} else {
				dirs[cl.Local.DataDir] = i
			}
			if cl.Security != (ClientSecurity{}) {
				c.add(p+".security", "kdr's own brokers do not speak TLS or SASL yet",
					"remove security from a local cluster; it applies to existing (bootstrap) clusters")
			}
		}
		c.security(p+".security", cl.Security)
	}
}

// maxBasePort is the highest basePort whose metrics ports still fit.
func maxBasePort(brokers int) int { return 65535 - (200 + brokers) }

func (c *checker) local(p string, l *LocalCluster) {
	brokersOK := l.Brokers >= 1 && l.Brokers <= 99
	if !brokersOK {
		c.add(p+".brokers", fmt.Sprintf("%d: want 1 to 99", l.Brokers), "")
	}
	switch {
	case l.BasePort == 0:
		c.add(p+".basePort", "required",
			"give broker 0's Kafka port, e.g. basePort: 9092; broker i listens on basePort+i, raft on basePort+100+i, metrics on basePort+200+i")
	case brokersOK && (l.BasePort < 1024 || l.BasePort > maxBasePort(l.Brokers)):
		c.add(p+".basePort", fmt.Sprintf("%d: want 1024 to %d for %d brokers", l.BasePort, maxBasePort(l.Brokers), l.Brokers),
			"ports below 1024 need root, and the metrics ports basePort+200+i must stay below 65536; below 32768 avoids Linux's ephemeral ports")
	}
	if len(l.Racks) > 0 && brokersOK && len(l.Racks) != l.Brokers {
		c.add(p+".racks", fmt.Sprintf("%d racks for %d brokers", len(l.Racks), l.Brokers),
			"give one rack per broker, in broker order (racks[i] is broker i's), or none")
	}
	for i, r := range l.Racks {
		if strings.TrimSpace(r) == "" {
			c.add(yamlschema.IndexPath(p+".racks", i), "empty rack", "name every broker's rack")
		}
	}
	switch {
	case l.ReplicationFactor < 0:
		c.add(p+".replicationFactor", fmt.Sprintf("%d: want 1 or more, or 0 for min(3, brokers)", l.ReplicationFactor), "")
	case brokersOK && l.ReplicationFactor > l.Brokers:
		c.add(p+".replicationFactor", fmt.Sprintf("%d exceeds the %d brokers", l.ReplicationFactor, l.Brokers),
			"a partition has at most one replica per broker: lower it or add brokers")
	}
	if l.Partitions < 0 {
		c.add(p+".partitions", fmt.Sprintf("%d: want 1 or more, or 0 for 3", l.Partitions), "")
	}
	rf := l.ReplicationFactor
	if rf == 0 {
		rf = min(3, l.Brokers)
	}
	switch {
	case l.MinInsyncReplicas < 0:
		c.add(p+".minInsyncReplicas", fmt.Sprintf("%d: want 1 or more, or 0 for min(2, replicationFactor)", l.MinInsyncReplicas), "")
	case rf > 0 && l.MinInsyncReplicas > rf:
		c.add(p+".minInsyncReplicas", fmt.Sprintf("%d exceeds the replication factor %d", l.MinInsyncReplicas, rf),
			"no write could ever be acknowledged with acks=all: lower it")
	}
	if l.GroupInitialRebalanceDelayMs < 0 {
		c.add(p+".groupInitialRebalanceDelayMs", fmt.Sprintf("%d: must not be negative", l.GroupInitialRebalanceDelayMs),
			"0 starts a group's first rebalance at once; Kafka's broker default is 3000")
	}
}

func (c *checker) security(p string, s ClientSecurity) {
	for _, pr := range s.Problems() {
		keys := make([]string, len(pr.Fields))
		for i, f := range pr.Fields {
			keys[i] = clientsec.Key(f)
		}
		at := p + "." + keys[0]
		if len(keys) > 1 {
			// Two settings that go together: name their common parent.
			at = p + "." + strings.SplitN(keys[0], ".", 2)[0]
		}
		c.add(at, pr.Problem, pr.Fix)
	}
}

func checkHostPort(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("not host:port")
	}
	if host == "" {
		return fmt.Errorf("no host")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("port %q: want 1 to 65535", port)
	}
	return nil
}

// patterns checks each pattern's type and cluster references; bad marks
// the patterns whose flows are too broken for the flow-level checks.
func (c *checker) patterns(t *Topology) (bad map[int]bool) {
	bad = map[int]bool{}
	var defined []string
	for _, cl := range t.Clusters {
		if cl.Name != "" {
			defined = append(defined, cl.Name)
		}
	}
	for i, p := range t.Replication {
		pp := yamlschema.IndexPath("replication", i)
		ref := func(field, name string) {
			switch {
			case name == "":
				c.add(field, "required", "name one of the clusters: "+quoteList(defined))
				bad[i] = true
			case t.ClusterByName(name) == nil:
				hint := "defined clusters: " + quoteList(defined)
				if s := yamlschema.DidYouMean(name, defined); s != "" {
					hint = fmt.Sprintf("did you mean %q? %s", s, hint)
				}
				c.add(field, fmt.Sprintf("unknown cluster %q", name), hint)
				bad[i] = true
			}
		}
		notFor := func(takes string, fields map[string]bool) {
			for _, f := range []string{"primary", "standby", "clusters", "hub", "spokes", "up", "down"} {
				if fields[f] {
					c.add(pp+"."+f, fmt.Sprintf("does not apply to %s", p.Type), fmt.Sprintf("%s takes %s; remove %s", p.Type, takes, f))
				}
			}
		}
		set := map[string]bool{
			"primary": p.Primary != "", "standby": p.Standby != "", "clusters": len(p.Clusters) > 0,
			"hub": p.Hub != "", "spokes": len(p.Spokes) > 0, "up": p.Up != nil, "down": p.Down != nil,
		}
		types := []string{ActivePassive, ActiveActive, HubAndSpoke}
		switch p.Type {
		case ActivePassive:
			ref(pp+".primary", p.Primary)
			ref(pp+".standby", p.Standby)
			if p.Primary != "" && p.Primary == p.Standby {
				c.add(pp+".standby", fmt.Sprintf("%q is also the primary", p.Standby), "the standby is another cluster, the one the primary mirrors to")
				bad[i] = true
			}
			set["primary"], set["standby"] = false, false
			notFor("primary and standby", set)
		case ActiveActive:
			seen := map[string]bool{}
			for k, n := range p.Clusters {
				f := yamlschema.IndexPath(pp+".clusters", k)
				ref(f, n)
				if seen[n] && n != "" {
					c.add(f, fmt.Sprintf("%q is listed twice", n), "list each cluster once")
				}
				seen[n] = true
			}
			if len(seen) < 2 {
				c.add(pp+".clusters", fmt.Sprintf("active-active needs at least two distinct clusters, got %d", len(seen)),
					"list two or more clusters; each mirrors to every other")
				bad[i] = true
			}
			set["clusters"] = false
			notFor("clusters", set)
		case HubAndSpoke:
			ref(pp+".hub", p.Hub)
			if len(p.Spokes) == 0 {
				c.add(pp+".spokes", "no spokes", "list the clusters that mirror to and from the hub")
				bad[i] = true
			}
			seen := map[string]bool{}
			for k, s := range p.Spokes {
				f := yamlschema.IndexPath(pp+".spokes", k)
				ref(f, s)
				switch {
				case s != "" && s == p.Hub:
					c.add(f, fmt.Sprintf("%q is the hub and also a spoke", s), "remove it from spokes: the hub is not its own spoke")
					bad[i] = true
				case seen[s] && s != "":
					c.add(f, fmt.Sprintf("%q is listed twice", s), "list each spoke once")
				}
				seen[s] = true
			}
			if p.Up == nil && p.Down == nil {
				c.add(pp, "neither up nor down is set, so the pattern has no flows",
					"add up: {topics: ...} for spokes→hub flows, down: {topics: ...} for hub→spokes flows, or both")
			}
			set["hub"], set["spokes"], set["up"], set["down"] = false, false, false, false
			notFor("hub, spokes, up and down", set)
		case "":
			c.add(pp+".type", "required", "one of "+strings.Join(types, ", "))
			bad[i] = true
		default:
			hint := "one of " + strings.Join(types, ", ")
			if s := yamlschema.DidYouMean(p.Type, types); s != "" {
				hint = fmt.Sprintf("did you mean %q? %s", s, hint)
			}
			c.add(pp+".type", fmt.Sprintf("unknown pattern type %q", p.Type), hint)
			bad[i] = true
		}
	}
	return bad
}

// aliases checks every cluster name as an MM2 alias under the naming
// policy of each flow it takes part in (its separator must not occur in
// the name), or under the default prefix policy if it is in no flow.
func (c *checker) aliases(t *Topology, flows []FlowSpec) {
	policies := map[string][]naming.Policy{}
	for _, f := range flows {
		p := f.Flow.Policy()
		for _, a := range []string{f.Flow.SourceAlias, f.Flow.TargetAlias} {
			if !slices.Contains(policies[a], p) {
				policies[a] = append(policies[a], p)
			}
		}
	}
	for i, cl := range t.Clusters {
		if cl.Name == "" {
			continue
		}
		ps := policies[cl.Name]
		if len(ps) == 0 {
			ps = []naming.Policy{naming.Prefix{}}
		}
		for _, p := range ps {
			if err := naming.ValidateAlias(p, cl.Name); err != nil {
				problem := strings.TrimPrefix(err.Error(), naming.ErrInvalidAlias.Error()+": ")
				c.add(yamlschema.IndexPath("clusters", i)+".name", "not a valid cluster alias: "+problem,
					"the name prefixes remote topics (east.orders): use letters, digits, '_' and '-', and not the flows' separator")
				break
			}
		}
	}
}

// duplicateFlows reports an ordered (source, target) pair that two
// patterns both produce, and returns the flows without the repeats.
func (c *checker) duplicateFlows(flows []FlowSpec) []FlowSpec {
	first := map[string]FlowSpec{}
	var out []FlowSpec
	for _, f := range flows {
		prev, dup := first[f.Name()]
		if !dup {
			first[f.Name()] = f
			out = append(out, f)
			continue
		}
		if prev.Pattern != f.Pattern { // within a pattern, the repeated name is reported
			c.add(yamlschema.IndexPath("replication", f.Pattern), fmt.Sprintf("flow %s is also produced by replication[%d]", f.Name(), prev.Pattern),
				"keep one flow per direction between two clusters: drop it from one pattern (widen the other's topics if needed)")
		}
	}
	return out
}

// sharedSyncs reports two flows that would write one offset-syncs topic on
// one cluster: a → b with its syncs on b and b → a with its syncs on b are
// both mm2-offset-syncs.a.internal there (mixed locations between patterns).
func (c *checker) sharedSyncs(flows []FlowSpec) {
	first := map[[2]string]FlowSpec{}
	for _, f := range flows {
		k := [2]string{f.Flow.SyncsCluster(), f.Flow.SyncsTopic()}
		prev, dup := first[k]
		if !dup {
			first[k] = f
			continue
		}
		c.add(yamlschema.IndexPath("replication", f.Pattern)+".mirror.offsetSyncsTopicLocation",
			fmt.Sprintf("flow %s would write its offset syncs to %s on %s, as flow %s of replication[%d] does", f.Name(), k[1], k[0], prev.Name(), prev.Pattern),
			"give both patterns the same offsetSyncsTopicLocation")
	}
}

func (c *checker) failover(t *Topology) {
	f := t.Failover
	co := f.Coordination
	switch co.Backend {
	case BackendFile:
	case BackendConsul:
		if err := checkHostPort(co.Consul.Address); err != nil {
			c.add("failover.coordination.consul.address", fmt.Sprintf("%q: %v", co.Consul.Address, err), "the Consul agent's HTTP address, e.g. 127.0.0.1:8500")
		}
		if co.Consul.Token != "" && co.Consul.TokenEnv != "" {
			c.add("failover.coordination.consul", "give at most one of token and tokenEnv", "prefer tokenEnv, naming an environment variable, so the file can be committed")
		}
	default:
		hint := fmt.Sprintf("use %q (a file under kdr's state dir) or %q", BackendFile, BackendConsul)
		if s := yamlschema.DidYouMean(co.Backend, []string{BackendFile, BackendConsul}); s != "" {
			hint = fmt.Sprintf("did you mean %q? %s", s, hint)
		}
		c.add("failover.coordination.backend", fmt.Sprintf("unknown backend %q", co.Backend), hint)
	}
	if f.MaxLagRecords < 0 {
		c.add("failover.maxLagRecords", fmt.Sprintf("%d: want 0 or more", f.MaxLagRecords), "")
	}
	for _, d := range []struct {
		path string
		v    time.Duration
	}{
		{"failover.maxLag", f.MaxLag},
		{"failover.timeouts.fence", f.Timeouts.Fence},
		{"failover.timeouts.drain", f.Timeouts.Drain},
		{"failover.timeouts.promote", f.Timeouts.Promote},
	} {
		if d.v <= 0 {
			c.add(d.path, fmt.Sprintf("%s: must be positive", d.v), `give a duration such as "30s" or "2m", or remove the key for the default`)
		}
	}
}

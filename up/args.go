package up

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/kdr-io/kdr/clientsec"
	"github.com/kdr-io/kdr/mirror"
	"github.com/kdr-io/kdr/topology"
)

// withDefaults returns l with the documented defaults filled in: 3
// brokers, host 127.0.0.1, replication factor min(3, brokers), 3
// partitions, min.insync.replicas min(2, RF).
func withDefaults(l topology.LocalCluster) topology.LocalCluster {
	if l.Brokers <= 0 {
		l.Brokers = 3
	}
	if l.Host == "" {
		l.Host = "127.0.0.1"
	}
	if l.ReplicationFactor <= 0 {
		l.ReplicationFactor = min(3, l.Brokers)
	}
	if l.Partitions <= 0 {
		l.Partitions = 3
	}
	if l.MinInsyncReplicas <= 0 {
		l.MinInsyncReplicas = min(2, l.ReplicationFactor)
	}
	return l
}

// Normalize returns a copy of t whose local clusters have every default
// filled in, so that BootstrapServers and Flows see the broker count kdr
// up runs.
func Normalize(t *topology.Topology) *topology.Topology {
	c := *t
	c.Clusters = make([]topology.Cluster, len(t.Clusters))
	for i, cl := range t.Clusters {
		if cl.Local != nil {
			l := withDefaults(*cl.Local)
			cl.Local = &l
		}
		c.Clusters[i] = cl
	}
	return &c
}

func hostPort(host string, port int) string { return host + ":" + strconv.Itoa(port) }

// BrokerArgs are the arguments of `kdr broker` for broker i (0-based, node
// id i+1) of local cluster c, keeping its data in dataDir.
func BrokerArgs(c topology.Cluster, i int, dataDir string) []string {
	l := withDefaults(*c.Local)
	kafka, raft, metrics := l.LocalPorts(i)
	voters := make([]string, l.Brokers)
	for j := range voters {
		_, r, _ := l.LocalPorts(j)
		voters[j] = fmt.Sprintf("%d@%s", j+1, hostPort(l.Host, r))
	}
	args := []string{"broker",
		"--node-id", strconv.Itoa(i + 1),
		"--cluster-id", c.Name,
		"--listen", hostPort(l.Host, kafka),
		"--raft-listen", hostPort(l.Host, raft),
		"--controller-quorum", strings.Join(voters, ","),
		"--data-dir", dataDir,
		"--metrics-listen", hostPort(l.Host, metrics),
		"--default-replication-factor", strconv.Itoa(l.ReplicationFactor),
		"--num-partitions", strconv.Itoa(l.Partitions),
		"--min-insync-replicas", strconv.Itoa(l.MinInsyncReplicas),
		"--offsets-topic-replication-factor", strconv.Itoa(min(3, l.Brokers)),
		"--group-initial-rebalance-delay-ms", strconv.Itoa(l.GroupInitialRebalanceDelayMs),
	}
	if len(l.Racks) > i && l.Racks[i] != "" {
		args = append(args, "--rack", l.Racks[i])
	}
	return args
}

// WorkerArgs are the arguments of `kdr mirror run` for one worker of f:
// every setting of f as a flag, the static member id instanceID and the
// metrics listener. A SASL password is never an argument, where process
// lists show it: a password given as such goes to the worker through the
// variable WorkerEnv sets, named by --source-sasl-password-env.
func WorkerArgs(f mirror.Flow, instanceID, metricsListen string) []string {
	str := func(flag, v string) string { return "--" + flag + "=" + v }
	b := func(flag string, v bool) string { return str(flag, strconv.FormatBool(v)) }
	d := func(flag string, v time.Duration) string { return str(flag, v.String()) }
	security := func(side string, c clientsec.Config) []string {
		if c.SASL.Password != "" {
			c.SASL.Password, c.SASL.PasswordEnv = "", passwordVar(side)
		}
		return c.Args(side+"-", true)
	}
	args := []string{"mirror", "run",
		str("source-alias", f.SourceAlias),
		str("target-alias", f.TargetAlias),
		str("source-brokers", strings.Join(f.Source.Brokers, ",")),
		str("target-brokers", strings.Join(f.Target.Brokers, ",")),
		str("topics", f.Topics),
		str("topics-exclude", f.TopicsExclude),
		str("groups", f.Groups),
		str("groups-exclude", f.GroupsExclude),
		str("naming", f.Naming),
		str("separator", f.Separator),
		b("local-records-only", f.LocalRecordsOnly),
		b("sync-topic-configs", f.SyncTopicConfigs),
		b("sync-topic-deletions", f.SyncTopicDeletions),
		b("sync-topic-acls", f.SyncTopicACLs),
		b("forward-batches", f.ForwardBatches),
		str("memory-limit-mib", strconv.Itoa(mirror.DefaultMemoryLimitMiB)),
		str("configs-exclude", f.ConfigsExclude),
		d("refresh-interval", f.RefreshInterval),
		str("replication-factor", strconv.Itoa(int(f.ReplicationFactor))),
		d("heartbeat-interval", f.HeartbeatInterval),
		str("group", f.WorkersGroup),
		str("instance-id", instanceID),
		d("session-timeout", f.SessionTimeout),
		str("batch-records", strconv.Itoa(f.BatchRecords)),
		str("max-bytes-per-second", strconv.FormatInt(f.MaxBytesPerSecond, 10)),
		d("commit-interval", f.CommitInterval),
		str("compression", f.Compression),
		d("delivery-timeout", f.DeliveryTimeout),
		d("offset-syncs-retention", f.OffsetSyncsRetention),
		str("offset-syncs-topic-location", f.OffsetSyncsLocation),
		d("checkpoint-interval", f.CheckpointInterval),
		b("sync-group-offsets", f.SyncGroupOffsets),
		str("metrics-listen", metricsListen),
	}
	args = append(args, security("source", f.Source.Security)...)
	return append(args, security("target", f.Target.Security)...)
}

// WorkerEnv is what WorkerArgs leaves out: the SASL passwords f gives as
// such (not through a variable), as NAME=value for the worker's
// environment.
func WorkerEnv(f mirror.Flow) []string {
	var env []string
	if p := f.Source.Security.SASL.Password; p != "" {
		env = append(env, passwordVar("source")+"="+p)
	}
	if p := f.Target.Security.SASL.Password; p != "" {
		env = append(env, passwordVar("target")+"="+p)
	}
	return env
}

// passwordVar is the variable WorkerEnv passes a side's password in.
func passwordVar(side string) string { return "KDR_UP_" + strings.ToUpper(side) + "_SASL_PASSWORD" }

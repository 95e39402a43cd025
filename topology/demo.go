package topology

// Demo is the topology kdr up runs without a file: clusters east (us-east)
// and west (us-west), three local brokers each, east replicating to west
// (active-passive) with identity naming, so that clients keep their topic
// names when they fail over. Ports, all on 127.0.0.1:
//
//	         Kafka        raft         metrics
//	east     9092-9094    9192-9194    9292-9294
//	west     19092-19094  19192-19194  19292-19294
//
// Defaults are applied (ApplyDefaults), as Load applies them to a file.
func Demo() *Topology {
	t := &Topology{
		APIVersion: APIVersion,
		Kind:       Kind,
		Metadata:   Metadata{Name: "demo"},
		Clusters: []Cluster{
			{Name: "east", Region: "us-east", Local: &LocalCluster{Brokers: 3, BasePort: 9092}},
			{Name: "west", Region: "us-west", Local: &LocalCluster{Brokers: 3, BasePort: 19092}},
		},
		Replication: []Pattern{{Type: ActivePassive, Primary: "east", Standby: "west",
			Mirror: MirrorSettings{Naming: "identity"}}},
		Failover: FailoverPolicy{Coordination: Coordination{Backend: BackendFile}},
	}
	t.ApplyDefaults()
	return t
}

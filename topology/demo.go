package topology

// Demo is the topology kdr up runs without a file: clusters east and west,
// three local brokers each (east on
// 127.0.0.1:9092-9094, west on 127.0.0.1:19092-19094), east replicating to west (active-passive, with
// identity naming so that clients keep their topic names on failover).
func Demo() *Topology {
	return &Topology{
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
}

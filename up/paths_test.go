package up

import (
	"testing"

	"github.com/kdr-io/kdr/topology"
)

func TestUpLayoutPaths(t *testing.T) {
	l := Layout{Dir: "/s"}
	east := topology.Cluster{Name: "east", Local: &topology.LocalCluster{}}
	rel := topology.Cluster{Name: "west", Local: &topology.LocalCluster{DataDir: "w-data"}}
	abs := topology.Cluster{Name: "north", Local: &topology.LocalCluster{DataDir: "/data/north"}}
	for _, c := range []struct{ got, want string }{
		{l.Lock(), "/s/kdr-up.lock"},
		{l.Endpoints(), "/s/endpoints.json"},
		{l.BrokerData(east, 2), "/s/east/broker-2"},
		{l.BrokerData(rel, 1), "/s/w-data/broker-1"},
		{l.BrokerData(abs, 3), "/data/north/broker-3"},
		{l.BrokerLog("east", 1), "/s/logs/east-broker-1.log"},
		{l.WorkerLog("east", "west", 0), "/s/logs/mirror-east-west-0.log"},
	} {
		if c.got != c.want {
			t.Errorf("got %s, want %s", c.got, c.want)
		}
	}
}

func TestUpBrokerArgsFollowTheLocalCluster(t *testing.T) {
	c := topology.Cluster{Name: "east", Local: &topology.LocalCluster{Brokers: 3, BasePort: 9092, Racks: []string{"r1", "r2", "r3"}}}
	got := BrokerArgs(c, 1, "/d")
	want := []string{"broker", "--node-id", "2", "--cluster-id", "east", "--listen", "127.0.0.1:9093",
		"--raft-listen", "127.0.0.1:9193", "--controller-quorum", "1@127.0.0.1:9192,2@127.0.0.1:9193,3@127.0.0.1:9194",
		"--data-dir", "/d", "--metrics-listen", "127.0.0.1:9293", "--default-replication-factor", "3",
		"--num-partitions", "3", "--min-insync-replicas", "2", "--offsets-topic-replication-factor", "3",
		"--group-initial-rebalance-delay-ms", "0", "--rack", "r2"}
	if len(got) != len(want) {
		t.Fatalf("got %q\nwant %q", got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("arg %d: got %q\nwant %q", i, got, want)
		}
	}
}

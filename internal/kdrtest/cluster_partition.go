package kdrtest

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kdr-io/kdr/internal/faultproxy"
)

// StartMeshCluster is StartCluster with every broker-to-broker path behind
// a fault proxy: broker i reaches broker j's raft listener through
// raft.Addr(i-1, j-1) and its Kafka listener (replication) through
// kafka.Addr(i-1, j-1) — mesh index i-1 is node id i. Every broker gets
// the same --controller-quorum of real raft addresses, as in production;
// --peer-raft-addresses and --peer-addresses route every dial by node id
// through the proxies, whatever address raft or the metadata reports. Clients (the test) use the brokers' real Kafka
// addresses, Bootstrap. Cut paths with the meshes or MeshFaults; Kill and
// Restart work as on StartCluster's brokers. A broker added with AddBroker
// is outside the meshes.
func StartMeshCluster(t TB, bin string, n int, extra ...string) (*Cluster, *faultproxy.Mesh, *faultproxy.Mesh) {
	t.Helper()
	// Hold the brokers' ports while the proxies bind theirs, so that no
	// proxy takes a port a broker is about to listen on.
	ports, release := reservePorts(t, 2*n)
	kafkaAddrs, raftAddrs := ports[:n], ports[n:]
	raftMesh, err := faultproxy.NewMesh(raftAddrs)
	if err != nil {
		release()
		t.Fatalf("kdrtest: raft mesh: %v", err)
	}
	t.Cleanup(func() { raftMesh.Close() })
	kafkaMesh, err := faultproxy.NewMesh(kafkaAddrs)
	if err != nil {
		release()
		t.Fatalf("kdrtest: kafka mesh: %v", err)
	}
	t.Cleanup(func() { kafkaMesh.Close() })
	release()

	c := &Cluster{t: t, id: newClusterID(), raft: raftAddrs}
	args := make([][]string, n)
	for i := range n {
		var quorum, peerRaft, peerKafka []string
		for j := range n {
			quorum = append(quorum, fmt.Sprintf("%d@%s", j+1, raftAddrs[j]))
			if j == i {
				continue
			}
			peerRaft = append(peerRaft, fmt.Sprintf("%d=%s", j+1, raftMesh.Addr(i, j)))
			peerKafka = append(peerKafka, fmt.Sprintf("%d=%s", j+1, kafkaMesh.Addr(i, j)))
		}
		args[i] = append(slices.Clone(ClusterFlags),
			"--cluster-id", c.id, "--node-id", strconv.Itoa(i+1), "--listen", kafkaAddrs[i], "--raft-listen", raftAddrs[i],
			"--controller-quorum", strings.Join(quorum, ","),
			"--peer-raft-addresses", strings.Join(peerRaft, ","), "--peer-addresses", strings.Join(peerKafka, ","),
			"--offsets-topic-replication-factor", strconv.Itoa(min(n, 3)))
		args[i] = append(args[i], extra...)
	}
	c.start(bin, args)
	return c, raftMesh, kafkaMesh
}

// reservePorts binds n loopback ports and returns their addresses and a
// func that releases them for the brokers to bind.
func reservePorts(t TB, n int) ([]string, func()) {
	t.Helper()
	lns := make([]net.Listener, 0, n)
	release := func() {
		for _, ln := range lns {
			ln.Close()
		}
	}
	var out []string
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			release()
			t.Fatalf("kdrtest: %v", err)
		}
		lns = append(lns, ln)
		out = append(out, ln.Addr().String())
	}
	return out, release
}

// MeshFaults cuts and heals the paths of a StartMeshCluster cluster by
// node id, on both meshes at once.
type MeshFaults struct {
	Raft, Kafka *faultproxy.Mesh
}

// IsolateBroker black-holes every path into and out of node id, raft and
// replication alike, as a network partition of its host does. Clients
// still reach it directly.
func (f MeshFaults) IsolateBroker(nodeID int32) {
	f.Raft.Isolate(int(nodeID) - 1)
	f.Kafka.Isolate(int(nodeID) - 1)
}

// HealAll restores every path. Bytes sent while cut are delivered then.
func (f MeshFaults) HealAll() {
	f.Raft.HealAll()
	f.Kafka.HealAll()
}

// PartitionFrom returns topic/p's metadata as node id itself reports it,
// over a connection of its own: the view of one side of a partition (a
// cut-off broker answers from its stale metadata).
func (c *Cluster) PartitionFrom(nodeID int32, topic string, p int32) (Partition, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	resp, err := BrokerRequest(ctx, c.Brokers[c.Index(nodeID)].Addr(), req)
	if err != nil {
		return Partition{}, err
	}
	for _, t := range resp.(*kmsg.MetadataResponse).Topics {
		if t.Topic == nil || *t.Topic != topic {
			continue
		}
		if t.ErrorCode != 0 {
			return Partition{}, fmt.Errorf("broker %d: topic %s: %v", nodeID, topic, kerr.ErrorForCode(t.ErrorCode))
		}
		for _, pd := range t.Partitions {
			if pd.Partition == p {
				return Partition{Leader: pd.Leader, LeaderEpoch: pd.LeaderEpoch, Replicas: pd.Replicas, ISR: pd.ISR}, nil
			}
		}
	}
	return Partition{}, fmt.Errorf("broker %d: %s-%d not in metadata", nodeID, topic, p)
}

// WaitISREverywhere waits until every broker reports topic/p with n
// members in the ISR and the same leader and leader epoch: a broker that
// was cut off has caught up with the metadata, not only the majority.
func (c *Cluster) WaitISREverywhere(topic string, p int32, n int) Partition {
	c.t.Helper()
	var first Partition
	Eventually(c.t, 60*time.Second, func() (bool, string) {
		for i := range c.Brokers {
			id := int32(i + 1)
			pd, err := c.PartitionFrom(id, topic, p)
			if err != nil {
				return false, err.Error()
			}
			if i == 0 {
				first = pd
			}
			if len(pd.ISR) != n || pd.Leader < 0 || pd.Leader != first.Leader || pd.LeaderEpoch != first.LeaderEpoch {
				return false, fmt.Sprintf("broker %d sees %s-%d leader %d epoch %d ISR %v; broker 1 sees leader %d epoch %d; want %d in sync",
					id, topic, p, pd.Leader, pd.LeaderEpoch, pd.ISR, first.Leader, first.LeaderEpoch, n)
			}
		}
		return true, ""
	})
	return first
}

// BrokerRequest sends req to the broker at addr over a new connection, at
// the highest version both sides support, and returns the response. Unlike
// a kgo client it never goes to another broker, so a test can ask a broker
// cut off from the rest.
func BrokerRequest(ctx context.Context, addr string, req kmsg.Request) (kmsg.Response, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	br := bufio.NewReader(conn)

	versions := kmsg.NewPtrApiVersionsRequest() // v0: understood by every broker
	vresp, err := roundTrip(conn, br, versions, 1)
	if err != nil {
		return nil, fmt.Errorf("ApiVersions to %s: %w", addr, err)
	}
	maxV := int16(-1)
	for _, k := range vresp.(*kmsg.ApiVersionsResponse).ApiKeys {
		if k.ApiKey == req.Key() {
			maxV = k.MaxVersion
		}
	}
	if maxV < 0 {
		return nil, fmt.Errorf("broker %s does not support %s", addr, kmsg.NameForKey(req.Key()))
	}
	req.SetVersion(min(maxV, req.MaxVersion()))
	resp, err := roundTrip(conn, br, req, 2)
	if err != nil {
		return nil, fmt.Errorf("%s to %s: %w", kmsg.NameForKey(req.Key()), addr, err)
	}
	return resp, nil
}

// roundTrip writes one framed request and reads and decodes its response.
func roundTrip(w io.Writer, r io.Reader, req kmsg.Request, corr int32) (kmsg.Response, error) {
	b := kbin.AppendInt32(nil, 0)
	b = kbin.AppendInt16(b, req.Key())
	b = kbin.AppendInt16(b, req.GetVersion())
	b = kbin.AppendInt32(b, corr)
	b = kbin.AppendNullableString(b, kmsg.StringPtr("kdrtest"))
	if req.IsFlexible() {
		b = append(b, 0) // no tagged fields
	}
	b = req.AppendTo(b)
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	if _, err := w.Write(b); err != nil {
		return nil, err
	}
	var size [4]byte
	if _, err := io.ReadFull(r, size[:]); err != nil {
		return nil, err
	}
	body := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, err
	}
	if len(body) < 4 || int32(binary.BigEndian.Uint32(body)) != corr {
		return nil, fmt.Errorf("response does not answer request %d", corr)
	}
	body = body[4:]
	// Flexible responses have a tagged-field header, except ApiVersions'.
	if req.IsFlexible() && req.Key() != kmsg.ApiVersions.Int16() {
		if len(body) == 0 {
			return nil, fmt.Errorf("truncated response header")
		}
		body = body[1:]
	}
	resp := req.ResponseKind()
	resp.SetVersion(req.GetVersion())
	if err := resp.ReadFrom(body); err != nil {
		return nil, fmt.Errorf("decoding the response: %w", err)
	}
	return resp, nil
}

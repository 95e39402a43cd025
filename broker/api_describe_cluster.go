package broker

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kdr-io/kdr/broker/wire"
)

func (b *Broker) handleDescribeCluster(_ context.Context, r *wire.Request) (kmsg.Response, error) {
	req := r.Msg.(*kmsg.DescribeClusterRequest)
	resp := req.ResponseKind().(*kmsg.DescribeClusterResponse)
	st := b.meta.State()
	resp.ClusterID = st.ClusterID
	resp.ControllerID = b.controllerID()
	resp.ClusterAuthorizedOperations = authorizedOpsOmitted
	for _, id := range st.BrokerIDs() {
		br := st.Brokers[id]
		if br.Fenced {
			continue // live brokers only, as Metadata
		}
		out := kmsg.NewDescribeClusterResponseBroker()
		out.NodeID, out.Host, out.Port, out.Rack = br.NodeID, br.Host, br.Port, br.Rack
		resp.Brokers = append(resp.Brokers, out)
	}
	return resp, nil
}

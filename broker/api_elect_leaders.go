package broker

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kdr-io/kdr/broker/cluster"
	"github.com/kdr-io/kdr/broker/wire"
)

// handleElectLeaders runs preferred (0, the only kind before v1) or unclean
// (1) leader elections (KIP-183, KIP-460): one metadata command per listed
// topic, or one for every partition when the topics are null. As in Kafka,
// the answer to a null list leaves out the partitions whose election was
// not needed, and a listed topic with no partitions gets no results.
func (b *Broker) handleElectLeaders(ctx context.Context, r *wire.Request) (kmsg.Response, error) {
	req := r.Msg.(*kmsg.ElectLeadersRequest)
	resp := req.ResponseKind().(*kmsg.ElectLeadersResponse)
	election := cluster.ElectionType(req.ElectionType)
	if election != cluster.ElectPreferred && election != cluster.ElectUnclean {
		resp.ErrorCode = kerr.InvalidRequest.Code
		return resp, nil
	}
	ctx, cancel := adminDeadline(ctx, r, req.TimeoutMillis)
	defer cancel()
	if req.Topics == nil {
		results, err := b.electLeaders(ctx, &cluster.ElectLeaders{Election: election})
		if err != nil {
			resp.ErrorCode = errorCode(err) // v0 cannot carry it; its answer is empty
			return resp, nil
		}
		for _, res := range results {
			if res.Err == kerr.ElectionNotNeeded {
				continue
			}
			if n := len(resp.Topics); n == 0 || resp.Topics[n-1].Topic != res.Topic {
				out := kmsg.NewElectLeadersResponseTopic()
				out.Topic = res.Topic
				resp.Topics = append(resp.Topics, out)
			}
			last := &resp.Topics[len(resp.Topics)-1]
			last.Partitions = append(last.Partitions, electionPartition(res.Partition, res.Err))
		}
		return resp, nil
	}
	for _, rt := range req.Topics {
		out := kmsg.NewElectLeadersResponseTopic()
		out.Topic = rt.Topic
		// The command reads no partitions as all of them.
		if len(rt.Partitions) > 0 {
			results, err := b.electLeaders(ctx, &cluster.ElectLeaders{Election: election, Topic: rt.Topic, Partitions: rt.Partitions})
			if err != nil {
				for _, p := range rt.Partitions {
					po := kmsg.NewElectLeadersResponseTopicPartition()
					po.Partition, po.ErrorCode, po.ErrorMessage = p, errorCode(err), errorMessage(err)
					out.Partitions = append(out.Partitions, po)
				}
			}
			for _, res := range results {
				out.Partitions = append(out.Partitions, electionPartition(res.Partition, res.Err))
			}
		}
		resp.Topics = append(resp.Topics, out)
	}
	return resp, nil
}

// electLeaders proposes cmd and logs the leaders it elected.
func (b *Broker) electLeaders(ctx context.Context, cmd *cluster.ElectLeaders) ([]cluster.ElectionResult, error) {
	res, err := b.meta.Propose(ctx, cmd)
	if err != nil {
		if logWorthy(errorCode(err)) {
			b.log.Warn("leader election failed", "topic", cmd.Topic, "err", err)
		}
		return nil, err
	}
	results, ok := res.([]cluster.ElectionResult)
	if !ok {
		err := fmt.Errorf("leader election: unexpected command result %T", res)
		b.log.Warn("leader election failed", "topic", cmd.Topic, "err", err)
		return nil, err
	}
	for _, r := range results {
		if r.Err == nil {
			b.log.Info("leader elected", "topic", r.Topic, "partition", r.Partition, "leader", r.Leader, "unclean", r.Unclean)
		}
	}
	return results, nil
}

func electionPartition(p int32, err *kerr.Error) kmsg.ElectLeadersResponseTopicPartition {
	po := kmsg.NewElectLeadersResponseTopicPartition()
	po.Partition = p
	if err != nil {
		msg := err.Description
		po.ErrorCode, po.ErrorMessage = err.Code, &msg
	}
	return po
}

package broker

import (
	"context"
	"net"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kdr-io/kdr/broker/group"
	"github.com/kdr-io/kdr/broker/wire"
)

// The group APIs are answered by the group coordinator; these handlers only
// adapt the wire request. They live in one file because each is one line.

func (b *Broker) handleJoinGroup(ctx context.Context, r *wire.Request) (kmsg.Response, error) {
	// Kafka reports a member's host as "/<ip>".
	host := ""
	if addr, ok := r.Remote.(*net.TCPAddr); ok {
		host = "/" + addr.IP.String()
	}
	ctx = group.WithClient(ctx, group.Client{ID: r.ClientID, Host: host})
	return b.coord.JoinGroup(ctx, r.Msg.(*kmsg.JoinGroupRequest)), nil
}

func (b *Broker) handleSyncGroup(ctx context.Context, r *wire.Request) (kmsg.Response, error) {
	return b.coord.SyncGroup(ctx, r.Msg.(*kmsg.SyncGroupRequest)), nil
}

func (b *Broker) handleHeartbeat(ctx context.Context, r *wire.Request) (kmsg.Response, error) {
	return b.coord.Heartbeat(ctx, r.Msg.(*kmsg.HeartbeatRequest)), nil
}

func (b *Broker) handleLeaveGroup(ctx context.Context, r *wire.Request) (kmsg.Response, error) {
	return b.coord.LeaveGroup(ctx, r.Msg.(*kmsg.LeaveGroupRequest)), nil
}

func (b *Broker) handleOffsetCommit(ctx context.Context, r *wire.Request) (kmsg.Response, error) {
	return b.coord.OffsetCommit(ctx, r.Msg.(*kmsg.OffsetCommitRequest)), nil
}

func (b *Broker) handleOffsetFetch(ctx context.Context, r *wire.Request) (kmsg.Response, error) {
	return b.coord.OffsetFetch(ctx, r.Msg.(*kmsg.OffsetFetchRequest)), nil
}

func (b *Broker) handleOffsetDelete(ctx context.Context, r *wire.Request) (kmsg.Response, error) {
	return b.coord.OffsetDelete(ctx, r.Msg.(*kmsg.OffsetDeleteRequest)), nil
}

func (b *Broker) handleListGroups(ctx context.Context, r *wire.Request) (kmsg.Response, error) {
	return b.coord.ListGroups(ctx, r.Msg.(*kmsg.ListGroupsRequest)), nil
}

func (b *Broker) handleDescribeGroups(ctx context.Context, r *wire.Request) (kmsg.Response, error) {
	return b.coord.DescribeGroups(ctx, r.Msg.(*kmsg.DescribeGroupsRequest)), nil
}

func (b *Broker) handleDeleteGroups(ctx context.Context, r *wire.Request) (kmsg.Response, error) {
	return b.coord.DeleteGroups(ctx, r.Msg.(*kmsg.DeleteGroupsRequest)), nil
}

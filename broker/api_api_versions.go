package broker

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kdr-io/kdr/broker/wire"
)

// handleApiVersions answers with the registry's table. A too-new version
// never reaches here: the wire layer answers it in v0 (KIP-511).
func (b *Broker) handleApiVersions(_ context.Context, r *wire.Request) (kmsg.Response, error) {
	resp := r.Msg.ResponseKind().(*kmsg.ApiVersionsResponse)
	resp.ApiKeys = b.apis.Versions()
	return resp, nil
}

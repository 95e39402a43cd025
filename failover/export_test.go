package failover

import (
	"context"

	"github.com/twmb/franz-go/pkg/kadm"
)

// ReadFence and SetFence let the external tests read and move a cluster's
// write fence the way an operation does.
func ReadFence(ctx context.Context, adm *kadm.Client) (fenced bool, epoch int64, err error) {
	f, err := readFence(ctx, adm)
	return f.Fenced, f.Epoch, err
}

func SetFence(ctx context.Context, adm *kadm.Client, fenced bool, epoch int64, reason string) error {
	return setFence(ctx, adm, fenced, epoch, reason)
}

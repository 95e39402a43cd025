package drill

import (
	"context"

	"github.com/kdr-io/kdr/failover"
)

// orchestrate runs one failover operation of package failover.
func orchestrate(ctx context.Context, kind string, opts failover.Options, to string) (*failover.Result, error) {
	switch kind {
	case ActSwitchover:
		return failover.Switchover(ctx, opts, to)
	case ActPromote:
		return failover.Promote(ctx, opts, to)
	default:
		return failover.Failback(ctx, opts, to)
	}
}

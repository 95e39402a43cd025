package cluster

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
)

// Fence is the cluster's write fence: while Fenced, the brokers refuse
// produce requests from clients (see the broker package for the narrow
// exceptions) because another cluster has taken over as the active one.
//
// Epoch is the fencing epoch of the failover that last changed the fence.
// It never decreases, so an orchestrator acting on an older failover cannot
// undo what a newer one did. The zero Fence (snapshots written before it
// existed) is unfenced at epoch 0.
type Fence struct {
	Fenced bool   `json:"fenced,omitempty"`
	Epoch  int64  `json:"epoch,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// SetFence fences (Fenced) or unfences the whole cluster. A command whose
// Epoch is lower than the stored one is refused with INVALID_CONFIG naming
// both epochs; an equal or higher epoch applies, and the stored epoch
// becomes Epoch. Its result is the new Fence.
type SetFence struct {
	Fenced bool   `json:"fenced"`
	Epoch  int64  `json:"epoch"`
	Reason string `json:"reason,omitempty"`
}

func (SetFence) Type() CommandType { return TypeSetFence }

// Check reports whether c would apply to s, with the error apply would
// return; for validate-only requests.
func (c *SetFence) Check(s *State) error {
	if c.Epoch < 0 {
		return kafkaErr(kerr.InvalidConfig, "fence epoch %d must not be negative", c.Epoch)
	}
	if c.Epoch < s.Fence.Epoch {
		return kafkaErr(kerr.InvalidConfig, "fence epoch %d is older than the cluster's fence epoch %d: a newer failover has changed the fence since", c.Epoch, s.Fence.Epoch)
	}
	return nil
}

func (c *SetFence) apply(s *State) (any, error) {
	if err := c.Check(s); err != nil {
		return nil, err
	}
	s.Fence = Fence{Fenced: c.Fenced, Epoch: c.Epoch, Reason: c.Reason}
	return s.Fence, nil
}

// String describes the fence for logs and messages.
func (f Fence) String() string {
	if !f.Fenced {
		return fmt.Sprintf("unfenced (epoch %d)", f.Epoch)
	}
	return fmt.Sprintf("fenced by failover epoch %d: %s", f.Epoch, f.Reason)
}

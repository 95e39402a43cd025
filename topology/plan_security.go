package topology

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"
)

// ClientOpts are the franz-go options that make a client connect to c as
// its Security says: TLS, SASL PLAIN or SCRAM. Seed brokers are not
// included. Errors name the cluster and the file or variable at fault.
func (c Cluster) ClientOpts() ([]kgo.Opt, error) {
	opts, err := c.Security.Opts()
	if err != nil {
		return nil, fmt.Errorf("cluster %q: security.%w", c.Name, err)
	}
	return opts, nil
}

package consulstore

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/hashicorp/consul/api"

	"github.com/kdr-io/kdr/failover/store/internal/model"
)

// ServiceName is the Consul service of a cluster: "kdr-<topology>-<cluster>".
func (s *Store) ServiceName(cluster string) string {
	return "kdr-" + s.cfg.Topology + "-" + cluster
}

// checkID names broker i's check.
func (s *Store) checkID(cluster string, i int) string {
	return s.ServiceName(cluster) + "-broker-" + strconv.Itoa(i)
}

// RegisterCluster registers the cluster's service with the agent at
// Config.Address, with a TCP check per broker, replacing any previous
// registration and its checks. New checks start critical until they first
// pass.
func (s *Store) RegisterCluster(ctx context.Context, c model.ClusterRegistration) error {
	if c.Cluster == "" {
		return errors.New("consulstore: cluster registration without a cluster name")
	}
	if len(c.Brokers) == 0 {
		return fmt.Errorf("consulstore: cluster %q registered without brokers", c.Cluster)
	}
	name := s.ServiceName(c.Cluster)
	meta := map[string]string{}
	for k, v := range c.Meta {
		meta[k] = v
	}
	meta["kdr_topology"] = s.cfg.Topology
	meta["kdr_cluster"] = c.Cluster
	meta["kdr_brokers"] = strings.Join(c.Brokers, ",")
	tags := []string{"kdr", "kafka"}
	if c.Region != "" {
		meta["kdr_region"] = c.Region
		tags = append(tags, "region-"+c.Region)
	}
	reg := &api.AgentServiceRegistration{ID: name, Name: name, Tags: tags, Meta: meta}
	if host, port, err := net.SplitHostPort(c.Brokers[0]); err == nil {
		reg.Address = host
		reg.Port, _ = strconv.Atoi(port)
	}
	for i, b := range c.Brokers {
		reg.Checks = append(reg.Checks, &api.AgentServiceCheck{
			CheckID:  s.checkID(c.Cluster, i),
			Name:     "broker " + b,
			Notes:    b,
			TCP:      b,
			Interval: s.cfg.CheckInterval.String(),
			Timeout:  s.cfg.CheckTimeout.String(),
		})
	}
	cctx, cancel := s.call(ctx)
	defer cancel()
	opts := api.ServiceRegisterOpts{ReplaceExistingChecks: true}.WithContext(cctx)
	if err := s.client.Agent().ServiceRegisterOpts(reg, opts); err != nil {
		return s.fail(ctx, "register service "+name, err)
	}
	return nil
}

// DeregisterCluster removes the cluster's service and checks from the
// agent.
func (s *Store) DeregisterCluster(ctx context.Context, cluster string) error {
	name := s.ServiceName(cluster)
	cctx, cancel := s.call(ctx)
	defer cancel()
	if err := s.client.Agent().ServiceDeregisterOpts(name, (&api.QueryOptions{}).WithContext(cctx)); err != nil {
		return s.fail(ctx, "deregister service "+name, err)
	}
	return nil
}

// ClusterHealth reads the cluster's service checks from the catalog. A
// cluster that is not registered (or not yet synced to the catalog) has
// status unknown and no brokers.
func (s *Store) ClusterHealth(ctx context.Context, cluster string) (model.Health, error) {
	name := s.ServiceName(cluster)
	cctx, cancel := s.call(ctx)
	defer cancel()
	checks, _, err := s.client.Health().Checks(name, (&api.QueryOptions{}).WithContext(cctx))
	if err != nil {
		return model.Health{}, s.fail(ctx, "read checks of "+name, err)
	}
	h := model.Health{Cluster: cluster}
	prefix := name + "-broker-"
	type indexed struct {
		i int
		b model.BrokerHealth
	}
	var found []indexed
	for _, c := range checks {
		i, err := strconv.Atoi(strings.TrimPrefix(c.CheckID, prefix))
		if !strings.HasPrefix(c.CheckID, prefix) || err != nil {
			continue // a check someone else added to the service
		}
		addr := c.Definition.TCP
		if addr == "" {
			addr = c.Notes
		}
		found = append(found, indexed{i, model.BrokerHealth{Address: addr, Status: c.Status, Output: strings.TrimSpace(c.Output)}})
	}
	slices.SortFunc(found, func(a, b indexed) int { return a.i - b.i }) // registration order
	for _, f := range found {
		h.Brokers = append(h.Brokers, f.b)
	}
	h.Status = model.Aggregate(h.Brokers)
	return h, nil
}

package cluster_test

import (
	"reflect"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/kdr-io/kdr/broker/cluster"
)

func TestClusterAlterPartition(t *testing.T) {
	base := cluster.Partition{Leader: 1, LeaderEpoch: 2, PartitionEpoch: 5, Replicas: ids(1, 2, 3), ISR: ids(1, 2)}
	req := func(edit func(*cluster.AlterPartition)) cluster.AlterPartition {
		c := cluster.AlterPartition{TopicID: topicID, LeaderID: 1, BrokerEpoch: 1, LeaderEpoch: 2, PartitionEpoch: 5, NewISR: ids(1, 2)}
		edit(&c)
		return c
	}
	for name, c := range map[string]struct {
		brokers map[int32]cluster.Broker
		cmd     cluster.AlterPartition
		err     *kerr.Error
		isr     []int32
		noop    bool
	}{
		"shrink":                {cmd: req(func(c *cluster.AlterPartition) { c.NewISR = ids(1) }), isr: ids(1)},
		"expand":                {cmd: req(func(c *cluster.AlterPartition) { c.NewISR = ids(1, 2, 3) }), isr: ids(1, 2, 3)},
		"by name":               {cmd: req(func(c *cluster.AlterPartition) { c.TopicID, c.Topic, c.NewISR = cluster.TopicID{}, "t", ids(1) }), isr: ids(1)},
		"old leader epoch":      {cmd: req(func(c *cluster.AlterPartition) { c.LeaderEpoch = 1 }), err: kerr.FencedLeaderEpoch},
		"not the leader":        {cmd: req(func(c *cluster.AlterPartition) { c.LeaderID = 2 }), err: kerr.NotLeaderForPartition},
		"stale broker epoch":    {cmd: req(func(c *cluster.AlterPartition) { c.BrokerEpoch = 7 }), err: kerr.StaleBrokerEpoch},
		"old partition epoch":   {cmd: req(func(c *cluster.AlterPartition) { c.PartitionEpoch = 4 }), err: kerr.InvalidUpdateVersion},
		"leader left out":       {cmd: req(func(c *cluster.AlterPartition) { c.NewISR = ids(2) }), err: kerr.InvalidRequest},
		"not a replica":         {cmd: req(func(c *cluster.AlterPartition) { c.NewISR = ids(1, 4) }), err: kerr.InvalidRequest},
		"duplicate":             {cmd: req(func(c *cluster.AlterPartition) { c.NewISR = ids(1, 2, 2) }), err: kerr.InvalidRequest},
		"adding a fenced one":   {brokers: fenced(live(1, 2, 3), 3), cmd: req(func(c *cluster.AlterPartition) { c.NewISR = ids(1, 2, 3) }), err: kerr.IneligibleReplica},
		"fenced one may stay":   {brokers: fenced(live(1, 2, 3), 2), cmd: req(func(c *cluster.AlterPartition) { c.NewISR = ids(1, 2, 3) }), isr: ids(1, 2, 3)},
		"same ISR: no change":   {cmd: req(func(c *cluster.AlterPartition) {}), isr: ids(1, 2), noop: true},
		"unknown topic id":      {cmd: req(func(c *cluster.AlterPartition) { c.TopicID = cluster.TopicID{9} }), err: kerr.UnknownTopicID},
		"inconsistent topic id": {cmd: req(func(c *cluster.AlterPartition) { c.Topic = "other" }), err: kerr.InconsistentTopicID},
		"unknown partition":     {cmd: req(func(c *cluster.AlterPartition) { c.Partition = 1 }), err: kerr.UnknownTopicOrPartition},
	} {
		t.Run(name, func(t *testing.T) {
			brokers := c.brokers
			if brokers == nil {
				brokers = live(1, 2, 3, 4)
			}
			f := fsmWith(brokers, nil, base)
			res, err := f.Apply(&c.cmd)
			wantCode(t, err, c.err)
			got := f.State().Topics["t"].Partitions[0]
			if c.err != nil {
				if !reflect.DeepEqual(got, base) {
					t.Fatalf("failed command changed the partition: %+v", got)
				}
				return
			}
			want := base
			want.ISR = c.isr
			if !c.noop {
				want.PartitionEpoch++
			}
			if !reflect.DeepEqual(got, want) || !reflect.DeepEqual(res, want) {
				t.Fatalf("partition %+v, result %+v, want %+v", got, res, want)
			}
		})
	}
}

func TestClusterElectLeaders(t *testing.T) {
	preferred := cluster.ElectLeaders{Election: cluster.ElectPreferred, Topic: "t", Partitions: ids(0)}
	uncleanElect := cluster.ElectLeaders{Election: cluster.ElectUnclean, Topic: "t", Partitions: ids(0)}
	for name, c := range map[string]struct {
		brokers map[int32]cluster.Broker
		before  cluster.Partition
		cmd     cluster.ElectLeaders
		code    *kerr.Error
		leader  int32
		isr     []int32
		unclean bool
	}{
		"preferred":                     {before: part(2, ids(1, 2, 3), ids(1, 2, 3)), cmd: preferred, leader: 1, isr: ids(1, 2, 3)},
		"preferred already leads":       {before: part(1, ids(1, 2, 3), ids(1, 2, 3)), cmd: preferred, code: kerr.ElectionNotNeeded, leader: 1},
		"preferred out of sync":         {before: part(2, ids(1, 2, 3), ids(2, 3)), cmd: preferred, code: kerr.PreferredLeaderNotAvailable, leader: 2},
		"preferred fenced":              {brokers: fenced(live(1, 2, 3), 1), before: part(2, ids(1, 2, 3), ids(1, 2, 3)), cmd: preferred, code: kerr.PreferredLeaderNotAvailable, leader: 2},
		"unclean on an online one":      {before: part(2, ids(1, 2, 3), ids(2)), cmd: uncleanElect, code: kerr.ElectionNotNeeded, leader: 2},
		"unclean prefers in-sync":       {brokers: fenced(live(1, 2, 3), 1), before: part(-1, ids(1, 2, 3), ids(1, 3)), cmd: uncleanElect, leader: 3, isr: ids(1, 3)},
		"unclean takes any live one":    {brokers: fenced(live(1, 2, 3), 1), before: part(-1, ids(1, 2, 3), ids(1)), cmd: uncleanElect, leader: 2, isr: ids(2), unclean: true},
		"unclean without a live one":    {brokers: fenced(live(1, 2), 1, 2), before: part(-1, ids(1, 2), ids(1)), cmd: uncleanElect, code: kerr.EligibleLeadersNotAvailable, leader: -1},
		"unknown partition":             {before: part(1, ids(1), ids(1)), cmd: cluster.ElectLeaders{Topic: "t", Partitions: ids(3)}, code: kerr.UnknownTopicOrPartition, leader: -1},
		"every partition without topic": {before: part(2, ids(1, 2), ids(1, 2)), cmd: cluster.ElectLeaders{}, leader: 1, isr: ids(1, 2)},
	} {
		t.Run(name, func(t *testing.T) {
			brokers := c.brokers
			if brokers == nil {
				brokers = live(1, 2, 3)
			}
			f := fsmWith(brokers, nil, c.before)
			res, err := f.Apply(&c.cmd)
			if err != nil {
				t.Fatal(err)
			}
			results := res.([]cluster.ElectionResult)
			want := cluster.ElectionResult{Topic: "t", Leader: c.leader, Unclean: c.unclean, Err: c.code}
			if c.cmd.Partitions != nil {
				want.Partition = c.cmd.Partitions[0]
			}
			if len(results) != 1 || !reflect.DeepEqual(results[0], want) {
				t.Fatalf("results %+v, want [%+v]", results, want)
			}
			got := f.State().Topics["t"].Partitions[0]
			if c.code != nil {
				if !reflect.DeepEqual(got, c.before) {
					t.Fatalf("no election, yet the partition changed: %+v", got)
				}
				return
			}
			after := cluster.Partition{Leader: c.leader, LeaderEpoch: 1, PartitionEpoch: 1, Replicas: c.before.Replicas, ISR: c.isr}
			if !reflect.DeepEqual(got, after) {
				t.Fatalf("partition %+v, want %+v", got, after)
			}
		})
	}

	f := fsmWith(live(1), nil, part(1, ids(1), ids(1)))
	_, err := f.Apply(&cluster.ElectLeaders{Topic: "nope"})
	wantCode(t, err, kerr.UnknownTopicOrPartition)
	_, err = f.Apply(&cluster.ElectLeaders{Election: 7})
	wantCode(t, err, kerr.InvalidRequest)
}

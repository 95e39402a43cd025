package raftstore

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/kdr-io/kdr/broker/cluster"
)

func TestRaftStoreConfigValidate(t *testing.T) {
	base := func() Config {
		return Config{NodeID: 1, RaftAddr: "127.0.0.1:0", Dir: "/tmp/x", ClusterID: "c",
			Voters: []Voter{{ID: 1, Addr: "127.0.0.1:9093"}, {ID: 2, Addr: "127.0.0.1:9094"}}}
	}
	if err := base().Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	for field, mutate := range map[string]func(*Config){
		"NodeID":             func(c *Config) { c.NodeID = -1 },
		"RaftAddr":           func(c *Config) { c.RaftAddr = "" },
		"AdvertisedAddr":     func(c *Config) { c.AdvertisedAddr = "0.0.0.0:9093" },
		"Dir":                func(c *Config) { c.Dir = "" },
		"ClusterID":          func(c *Config) { c.ClusterID = "" },
		"Voters[1].ID":       func(c *Config) { c.Voters[1].ID = 1 },
		"Voters[0].Addr":     func(c *Config) { c.Voters[0].Addr = "127.0.0.1:0" },
		"Seeds":              func(c *Config) { c.NodeID = 7 },
		"Seeds[0]":           func(c *Config) { c.NodeID, c.Seeds = 7, []string{"nohost"} },
		"ElectionTimeout":    func(c *Config) { c.ElectionTimeout = time.Millisecond * 100 },
		"LeaderLeaseTimeout": func(c *Config) { c.LeaderLeaseTimeout = time.Second },
		"HeartbeatTimeout":   func(c *Config) { c.HeartbeatTimeout = time.Millisecond },
	} {
		cfg := base()
		mutate(&cfg)
		err := cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("%s: got %v, want an error naming the field", field, err)
		}
	}
}

func TestRaftStoreWireErrorsKeepKafkaCodes(t *testing.T) {
	topicExists := &cluster.Error{Code: kerr.TopicAlreadyExists, Message: `topic "a" already exists`}
	for _, c := range []struct {
		err  error
		want func(back error) bool
	}{
		{topicExists, func(back error) bool {
			var ce *cluster.Error
			return errors.As(back, &ce) && ce.Code == topicExists.Code && ce.Message == topicExists.Message
		}},
		{fmt.Errorf("not now: %w", ErrNotLeader), func(back error) bool { return errors.Is(back, ErrNotLeader) }},
		{fmt.Errorf("lost: %w", ErrOutcomeUnknown), func(back error) bool { return errors.Is(back, ErrOutcomeUnknown) }},
		{errors.New("plain failure"), func(back error) bool {
			var re *RemoteError
			return errors.As(back, &re) && re.Message == "plain failure" && re.Kind == "kind"
		}},
	} {
		if back := toWireError(c.err).err("127.0.0.1:1", "kind"); !c.want(back) {
			t.Errorf("%v came back as %v", c.err, back)
		}
	}
}

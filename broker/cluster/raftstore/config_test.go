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
		"PeerAddresses[2]":   func(c *Config) { c.PeerAddresses = map[int32]string{2: "127.0.0.1:0"} },
		"PeerAddresses[-1]":  func(c *Config) { c.PeerAddresses = map[int32]string{-1: "127.0.0.1:9"} },
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

func TestRaftStorePeerAddressesOverrideByID(t *testing.T) {
	cfg := Config{NodeID: 1, Voters: []Voter{{ID: 1, Addr: "10.0.0.1:9093"}, {ID: 2, Addr: "10.0.0.2:9093"}, {ID: 3, Addr: "10.0.0.3:9093"}},
		PeerAddresses: map[int32]string{1: "127.0.0.1:1", 2: "127.0.0.1:2", 4: "127.0.0.1:4"}}
	p := newPeers(cfg, "10.0.0.1:9093")
	for id, want := range map[int32]string{
		1: "10.0.0.1:9093", // itself: always the advertised address
		2: "127.0.0.1:2",   // overridden
		3: "10.0.0.3:9093", // from Voters (no raft configuration yet)
		4: "127.0.0.1:4",   // overridden, though not a voter
	} {
		if got, err := p.ServerAddr(serverID(id)); err != nil || string(got) != want {
			t.Errorf("ServerAddr(%d) = %q, %v; want %q", id, got, err, want)
		}
	}
	if _, err := p.ServerAddr(serverID(5)); !errors.Is(err, errUnknownPeer) {
		t.Errorf("ServerAddr(5) = %v, want errUnknownPeer", err)
	}
	if got := p.dialAddr(2, "10.0.0.2:9093"); got != "127.0.0.1:2" {
		t.Errorf("dialAddr(2) = %q", got)
	}
	if got := p.dialAddr(3, "10.0.0.3:9093"); got != "10.0.0.3:9093" {
		t.Errorf("dialAddr(3) = %q", got)
	}
	if got := p.seedAddr("10.0.0.2:9093"); got != "127.0.0.1:2" {
		t.Errorf("seedAddr of voter 2 = %q", got)
	}
	if got := p.seedAddr("10.0.0.9:9093"); got != "10.0.0.9:9093" {
		t.Errorf("seedAddr of a non-voter = %q", got)
	}
	if newPeers(Config{NodeID: 1, PeerAddresses: map[int32]string{1: "127.0.0.1:1"}}, "10.0.0.1:9093").any() {
		t.Error("an override of the node itself counts as an override")
	}
}

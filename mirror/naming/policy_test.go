package naming

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/kdr-io/kdr/mirror/mm2"
)

func TestNamingPrefix(t *testing.T) {
	cases := []struct {
		sep, topic, alias, upstream, original string
		remote                                bool
	}{
		{".", "orders", "", "", "orders", false},
		{".", "east.orders", "east", "orders", "orders", true},
		{".", "west.east.orders", "west", "east.orders", "orders", true},
		{".", "central.west.east.orders", "central", "west.east.orders", "orders", true},
		{".", "east.heartbeats", "east", "heartbeats", "heartbeats", true},
		{".", "west.east.heartbeats", "west", "east.heartbeats", "heartbeats", true},
		// MM2 splits with Java's String.split: trailing empty pieces vanish.
		{".", "east.", "", "", "east.", false},
		{".", "east..", "", "", "east..", false},
		{".", "...", "", "", "...", false},
		{".", "", "", "", "", false},
		{".", "east..orders", "east", ".orders", "orders", true},
		{".", "east.orders.", "east", "orders.", "orders.", true},
		{".", ".orders", "", "orders", "orders", true},
		// A dotted local name looks remote, in MM2 too.
		{".", "payments.v1", "payments", "v1", "v1", true},
		{"_", "east_orders", "east", "orders", "orders", true},
		{"_", "west_east_my.topic", "west", "east_my.topic", "my.topic", true},
		{"_", "east.orders", "", "", "east.orders", false},
		{"--", "east--orders", "east", "orders", "orders", true},
		{"--", "east---", "east", "-", "-", true},
		{"--", "east----", "", "", "east----", false},
	}
	for _, tc := range cases {
		p := Prefix{Separator: tc.sep}
		if tc.sep == "." {
			p = Prefix{}
		}
		alias, ok := p.SourceAlias(tc.topic)
		up, upOK := p.UpstreamTopic(tc.topic)
		if ok != tc.remote || alias != tc.alias || upOK != tc.remote || up != tc.upstream {
			t.Errorf("sep %q %q: SourceAlias = %q,%v UpstreamTopic = %q,%v; want %q, %q, %v",
				tc.sep, tc.topic, alias, ok, up, upOK, tc.alias, tc.upstream, tc.remote)
		}
		if got := p.OriginalTopic(tc.topic); got != tc.original {
			t.Errorf("sep %q: OriginalTopic(%q) = %q, want %q", tc.sep, tc.topic, got, tc.original)
		}
	}
}

func TestNamingPrefixRemoteTopicRoundTrips(t *testing.T) {
	for _, p := range []Prefix{{}, {Separator: "_"}, {Separator: "::"}} {
		topic := "orders"
		var chain []string
		for _, alias := range []string{"east", "west", "central"} {
			topic = p.RemoteTopic(alias, topic)
			chain = append([]string{alias}, chain...)
		}
		if want := strings.Join([]string{"central", "west", "east", "orders"}, p.separator()); topic != want {
			t.Errorf("sep %q: three hops = %q, want %q", p.Separator, topic, want)
		}
		if got := SourceChain(p, topic); !slices.Equal(got, chain) {
			t.Errorf("sep %q: SourceChain = %v, want %v", p.Separator, got, chain)
		}
		if got := p.OriginalTopic(topic); got != "orders" {
			t.Errorf("sep %q: OriginalTopic = %q", p.Separator, got)
		}
	}
}

func TestNamingPrefixInternal(t *testing.T) {
	def, under, dotted := Prefix{}, Prefix{Separator: "_"}, Prefix{Separator: "_", DotInternalTopics: true}
	if got := def.OffsetSyncsTopic("west"); got != mm2.OffsetSyncsTopic("west") {
		t.Errorf("OffsetSyncsTopic = %q, want mm2's %q", got, mm2.OffsetSyncsTopic("west"))
	}
	if got := def.CheckpointsTopic("east"); got != mm2.CheckpointsTopic("east") {
		t.Errorf("CheckpointsTopic = %q", got)
	}
	if got := under.OffsetSyncsTopic("west"); got != "mm2-offset-syncs_west_internal" {
		t.Errorf("underscore OffsetSyncsTopic = %q", got)
	}
	if got := under.CheckpointsTopic("east"); got != "east_checkpoints_internal" {
		t.Errorf("underscore CheckpointsTopic = %q", got)
	}
	if got := dotted.CheckpointsTopic("east"); got != "east.checkpoints.internal" {
		t.Errorf("DotInternalTopics CheckpointsTopic = %q", got)
	}
	cases := []struct {
		p     Prefix
		topic string
		want  bool
	}{
		{def, "__consumer_offsets", true},
		{def, "mm2-offset-syncs.west.internal", true},
		{def, "east.checkpoints.internal", true},
		{def, "connect-configs-internal", true},
		{def, "orders", false},
		{def, "heartbeats", false},
		{def, "east_internal", false},
		{under, "mm2-offset-syncs_west_internal", true},
		{under, "east_checkpoints_internal", true},
		{under, "east.checkpoints.internal", true}, // MM2's base rule still applies
		{dotted, "east_checkpoints_internal", false},
	}
	for _, tc := range cases {
		if got := tc.p.IsInternal(tc.topic); got != tc.want {
			t.Errorf("%+v IsInternal(%q) = %v, want %v", tc.p, tc.topic, got, tc.want)
		}
	}
}

func TestNamingIdentity(t *testing.T) {
	id := Identity{}
	cases := []struct {
		topic, remote, alias, original string
		ok                             bool
	}{
		{"orders", "orders", "", "orders", false},
		{"west.orders", "west.orders", "", "west.orders", false},
		{"heartbeats", "east.heartbeats", "", "heartbeats", false},
		{"west.heartbeats", "east.west.heartbeats", "west", "heartbeats", true},
		{"service-heartbeats", "service-heartbeats", "", "service-heartbeats", false}, // MM2 would rename it
		{"myheartbeats", "myheartbeats", "", "myheartbeats", false},
	}
	for _, tc := range cases {
		if got := id.RemoteTopic("east", tc.topic); got != tc.remote {
			t.Errorf("RemoteTopic(east, %q) = %q, want %q", tc.topic, got, tc.remote)
		}
		if alias, ok := id.SourceAlias(tc.topic); alias != tc.alias || ok != tc.ok {
			t.Errorf("SourceAlias(%q) = %q, %v; want %q, %v", tc.topic, alias, ok, tc.alias, tc.ok)
		}
		if got := id.OriginalTopic(tc.topic); got != tc.original {
			t.Errorf("OriginalTopic(%q) = %q, want %q", tc.topic, got, tc.original)
		}
	}
	if got := (Identity{Separator: "_"}).RemoteTopic("east", "west_heartbeats"); got != "east_west_heartbeats" {
		t.Errorf("underscore identity heartbeats = %q", got)
	}
	if !id.IsInternal("mm2-offset-syncs.east.internal") || id.IsInternal("orders") {
		t.Error("Identity.IsInternal disagrees with Prefix")
	}
	if got := SourceChain(id, "central.west.east.heartbeats"); !slices.Equal(got, []string{"central", "west", "east"}) {
		t.Errorf("identity heartbeats chain = %v", got)
	}
	if got := SourceChain(id, "west.east.orders"); got != nil {
		t.Errorf("identity chain of a data topic = %v, want none", got)
	}
}

func TestNamingIsHeartbeats(t *testing.T) {
	for topic, want := range map[string]bool{
		"heartbeats": true, "east.heartbeats": true, "west.east.heartbeats": true,
		"orders": false, "heartbeats.v2": false, "east.heartbeats-old": false,
	} {
		if got := IsHeartbeats(Prefix{}, topic); got != want {
			t.Errorf("IsHeartbeats(Prefix, %q) = %v, want %v", topic, got, want)
		}
	}
}

func TestNamingSourceChainWithoutUpstream(t *testing.T) {
	// Embedding hides Prefix's UpstreamTopic: chains stop at one hop.
	var p Policy = struct{ Policy }{Prefix{}}
	if _, ok := p.(UpstreamPolicy); ok {
		t.Fatal("test policy should not implement UpstreamPolicy")
	}
	if got := SourceChain(p, "west.east.orders"); !slices.Equal(got, []string{"west"}) {
		t.Errorf("SourceChain = %v, want [west]", got)
	}
}

func TestNamingValidateAlias(t *testing.T) {
	cases := []struct {
		p     Policy
		alias string
		ok    bool
	}{
		{Prefix{}, "east", true},
		{Prefix{}, "us-west-2", true},
		{Prefix{}, "dc_1", true},
		{Prefix{}, "", false},
		{Prefix{}, "us.west", false},
		{Prefix{Separator: "_"}, "us.west", true},
		{Prefix{Separator: "_"}, "dc_1", false},
		{Identity{}, "us.west", false},
		{Prefix{}, "a,b", false},
		{Prefix{}, "east west", false},
		{Prefix{}, "ëast", false},
		{Prefix{}, strings.Repeat("a", 228), true},
		{Prefix{}, strings.Repeat("a", 229), false},
	}
	for _, tc := range cases {
		err := ValidateAlias(tc.p, tc.alias)
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrInvalidAlias)) {
			t.Errorf("ValidateAlias(%+v, %.30q) = %v, want ok=%v", tc.p, tc.alias, err, tc.ok)
		}
	}
}

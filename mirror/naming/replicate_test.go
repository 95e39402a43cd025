package naming

import (
	"strings"
	"testing"
)

type replicateCase struct {
	source, target, topic string
	want                  bool
	reason                string // a fragment of the reason
	remote                string // the name on the target, when replicated
}

func checkReplicate(t *testing.T, name string, r Rules, cases []replicateCase) {
	t.Helper()
	for _, tc := range cases {
		got, reason := r.ShouldReplicate(tc.source, tc.target, tc.topic)
		if got != tc.want || !strings.Contains(reason, tc.reason) {
			t.Errorf("%s: %s→%s %q = %v (%s); want %v containing %q", name, tc.source, tc.target, tc.topic, got, reason, tc.want, tc.reason)
		}
		if got && tc.remote != "" && r.Policy != nil {
			if remote := r.Policy.RemoteTopic(tc.source, tc.topic); remote != tc.remote {
				t.Errorf("%s: %s→%s %q named %q, want %q", name, tc.source, tc.target, tc.topic, remote, tc.remote)
			}
		}
	}
}

func TestNamingShouldReplicatePrefixChain(t *testing.T) {
	// east → west → central, then flows back and onward.
	checkReplicate(t, "chain", Rules{Policy: Prefix{}, Topics: DefaultTopicFilter()}, []replicateCase{
		{"east", "west", "orders", true, "topic filter", "east.orders"},
		{"west", "central", "east.orders", true, "topic filter", "west.east.orders"},
		{"central", "east", "west.east.orders", false, `been on "east" (came from west, east)`, ""},
		{"central", "west", "west.east.orders", false, `been on "west"`, ""},
		{"central", "north", "west.east.orders", true, "", "central.west.east.orders"},
		{"north", "east", "central.west.east.orders", false, "came from central, west, east", ""},
		{"north", "central", "central.west.east.orders", false, "cycle", ""},
		{"north", "south", "central.west.east.orders", true, "", "north.central.west.east.orders"},
		// A remote-looking name from the source itself is not a cycle (MM2).
		{"east", "west", "east.orders", true, "", "east.east.orders"},
	})
}

func TestNamingShouldReplicateActiveActive(t *testing.T) {
	r := Rules{Policy: Prefix{}, Topics: DefaultTopicFilter()}
	checkReplicate(t, "active-active", r, []replicateCase{
		{"east", "west", "orders", true, "", "east.orders"},
		{"west", "east", "orders", true, "", "west.orders"},
		{"west", "east", "east.orders", false, "cycle", ""},
		{"east", "west", "west.orders", false, "cycle", ""},
		{"east", "west", "heartbeats", true, "", "east.heartbeats"},
		{"west", "east", "east.heartbeats", false, "cycle", ""},
		{"west", "east", "heartbeats", true, "", "west.heartbeats"},
		{"east", "west", "mm2-offset-syncs.west.internal", false, "internal", ""},
		{"west", "east", "east.checkpoints.internal", false, "internal", ""},
		{"east", "west", "__consumer_offsets", false, "internal", ""},
		{"east", "west", "connect-configs-internal", false, "internal", ""},
		{"east", "west", ".hidden", false, "internal", ""},
		{"east", "west", "orders.replica", false, "excluded by the topic filter", ""},
		{"east", "east", "orders", false, "same cluster", ""},
	})
}

func TestNamingShouldReplicateHubAndSpoke(t *testing.T) {
	r := Rules{Policy: Prefix{}, Topics: DefaultTopicFilter()}
	checkReplicate(t, "hub-and-spoke", r, []replicateCase{
		{"s1", "hub", "orders", true, "", "s1.orders"},
		{"s2", "hub", "orders", true, "", "s2.orders"},
		{"hub", "s1", "s1.orders", false, "cycle", ""},
		{"hub", "s1", "s2.orders", true, "", "hub.s2.orders"},
		{"hub", "s2", "s1.orders", true, "", "hub.s1.orders"},
		{"hub", "s2", "s2.orders", false, "cycle", ""},
		{"hub", "s1", "orders", true, "", "hub.orders"},
		// Spoke s1 now holds hub.s2.orders; it must not go to hub or s2.
		{"s1", "hub", "hub.s2.orders", false, "cycle", ""},
		{"s1", "s2", "hub.s2.orders", false, "cycle", ""},
		{"s1", "s3", "hub.s2.orders", true, "", "s1.hub.s2.orders"},
	})
}

func TestNamingShouldReplicateSeparator(t *testing.T) {
	r := Rules{Policy: Prefix{Separator: "_"}, Topics: DefaultTopicFilter()}
	checkReplicate(t, "underscore", r, []replicateCase{
		{"east", "west", "orders", true, "", "east_orders"},
		{"west", "east", "east_orders", false, "cycle", ""},
		{"west", "central", "east_orders", true, "", "west_east_orders"},
		{"central", "east", "west_east_orders", false, "cycle", ""},
		// "." is not the separator here: east.orders is a local topic.
		{"west", "east", "east.orders", true, "", "west_east.orders"},
		{"east", "west", "mm2-offset-syncs_west_internal", false, "internal", ""},
		{"west", "east", "east_heartbeats", false, "cycle", ""},
		{"west", "east", "central_heartbeats", true, "", "west_central_heartbeats"},
	})
}

func TestNamingShouldReplicateFilters(t *testing.T) {
	only, err := NewFilter("orders.*", "orders-secret")
	if err != nil {
		t.Fatal(err)
	}
	checkReplicate(t, "custom filter", Rules{Policy: Prefix{}, Topics: only}, []replicateCase{
		{"east", "west", "orders", true, "selected by the topic filter", ""},
		{"east", "west", "orders-v2", true, "", ""},
		{"east", "west", "orders-secret", false, "excluded by the topic filter", ""},
		{"east", "west", "payments", false, "excluded", ""},
		// MM2 filters the name as it is on the source, prefix included.
		{"west", "central", "east.orders", false, "excluded", ""},
		// Heartbeats bypass the filter unless told otherwise.
		{"east", "west", "heartbeats", true, "whatever the topic filter says", ""},
		{"west", "central", "east.heartbeats", true, "heartbeats topic", ""},
		{"west", "east", "east.heartbeats", false, "cycle", ""},
	})
	checkReplicate(t, "heartbeats filtered", Rules{Policy: Prefix{}, Topics: only, FilterHeartbeats: true}, []replicateCase{
		{"east", "west", "heartbeats", false, "excluded", ""},
		{"east", "west", "orders", true, "", ""},
	})
	checkReplicate(t, "zero rules", Rules{}, []replicateCase{
		{"east", "west", "orders", false, "excluded", ""},
		{"east", "west", "heartbeats", true, "heartbeats", ""},
	})
}

func TestNamingShouldReplicateIdentity(t *testing.T) {
	for _, p := range []Policy{Identity{}, &Identity{}} {
		checkReplicate(t, "identity", Rules{Policy: p, Topics: DefaultTopicFilter()}, []replicateCase{
			{"east", "west", "orders", true, "kdr-origin", "orders"},
			// Names cannot show the loop; the header must stop it.
			{"west", "east", "orders", true, "kdr-origin", "orders"},
			{"east", "west", "heartbeats", true, "", "east.heartbeats"},
			{"west", "east", "east.heartbeats", false, "cycle", ""},
			{"west", "central", "east.heartbeats", true, "", "west.east.heartbeats"},
			{"central", "west", "west.east.heartbeats", false, "cycle", ""},
			{"east", "west", "__consumer_offsets", false, "internal", ""},
			{"east", "west", "mm2-offset-syncs.west.internal", false, "internal", ""},
		})
	}
}

func TestNamingShouldReplicateDefault(t *testing.T) {
	cases := []replicateCase{
		{"east", "west", "orders", true, "", ""},
		{"west", "east", "east.orders", false, "cycle", ""},
		{"east", "west", "orders.replica", false, "excluded", ""},
		{"east", "west", "__consumer_offsets", false, "internal", ""},
	}
	for _, tc := range cases {
		got, reason := ShouldReplicate(Prefix{}, tc.source, tc.target, tc.topic)
		if got != tc.want || !strings.Contains(reason, tc.reason) {
			t.Errorf("ShouldReplicate(%s→%s %q) = %v (%s), want %v", tc.source, tc.target, tc.topic, got, reason, tc.want)
		}
	}
}

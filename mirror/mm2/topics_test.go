package mm2

import "testing"

func TestMM2TopicNames(t *testing.T) {
	if got := OffsetSyncsTopic("west"); got != "mm2-offset-syncs.west.internal" {
		t.Errorf("OffsetSyncsTopic = %q", got)
	}
	if got := CheckpointsTopic("east"); got != "east.checkpoints.internal" {
		t.Errorf("CheckpointsTopic = %q", got)
	}
	if alias, ok := IsOffsetSyncsTopic("mm2-offset-syncs.us-west.internal"); !ok || alias != "us-west" {
		t.Errorf("IsOffsetSyncsTopic = %q, %v", alias, ok)
	}
	for _, n := range []string{"mm2-offset-syncs..internal", "mm2-offset-syncs.west", "orders"} {
		if _, ok := IsOffsetSyncsTopic(n); ok {
			t.Errorf("IsOffsetSyncsTopic(%q) = true", n)
		}
	}
	if alias, ok := IsCheckpointsTopic("east.checkpoints.internal"); !ok || alias != "east" {
		t.Errorf("IsCheckpointsTopic = %q, %v", alias, ok)
	}
	if _, ok := IsCheckpointsTopic(".checkpoints.internal"); ok {
		t.Error("IsCheckpointsTopic accepted an empty alias")
	}
}

func TestMM2IsInternalTopic(t *testing.T) {
	cases := map[string]bool{
		"__consumer_offsets":               true,
		"__transaction_state":              true,
		".hidden":                          true,
		"mm2-offset-syncs.west.internal":   true,
		"east.checkpoints.internal":        true,
		"mm2-configs.east.internal":        true,
		"mm2-offsets.east.internal":        true,
		"mm2-status.east.internal":         true,
		"connect-offsets-internal":         true,
		"west.mm2-offset-syncs.x.internal": true,
		"heartbeats":                       false, // replicated on purpose
		"east.heartbeats":                  false,
		"orders":                           false,
		"east.orders":                      false,
		"mm2-demo":                         false,
		"orders.replica":                   false, // excluded by the topic filter, not internal
		"internal":                         false,
		"_single":                          false,
	}
	for name, want := range cases {
		if got := IsInternalTopic(name); got != want {
			t.Errorf("IsInternalTopic(%q) = %v, want %v", name, got, want)
		}
	}
}

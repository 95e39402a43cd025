package cli

import (
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

func TestGroupResetTarget(t *testing.T) {
	p := kadm.Partition{Topic: "t", Partition: 0}
	listed := func(o int64) kadm.ListedOffsets {
		return kadm.ListedOffsets{"t": {0: {Topic: "t", Partition: 0, Offset: o}}}
	}
	starts, ends := listed(10), listed(20)
	for _, tc := range []struct {
		name    string
		spec    resetSpec
		current int64
		byTime  kadm.ListedOffsets
		want    int64
	}{
		{"earliest", resetSpec{Mode: resetEarliest}, 15, nil, 10},
		{"latest", resetSpec{Mode: resetLatest}, 15, nil, 20},
		{"offset inside", resetSpec{Mode: resetOffset, Offset: 12}, -1, nil, 12},
		{"offset below start clamps", resetSpec{Mode: resetOffset, Offset: 3}, -1, nil, 10},
		{"offset past end clamps", resetSpec{Mode: resetOffset, Offset: 99}, -1, nil, 20},
		{"shift back", resetSpec{Mode: resetShiftBy, Offset: -2}, 15, nil, 13},
		{"shift back clamps", resetSpec{Mode: resetShiftBy, Offset: -100}, 15, nil, 10},
		{"shift forward clamps", resetSpec{Mode: resetShiftBy, Offset: 100}, 15, nil, 20},
		{"datetime", resetSpec{Mode: resetDatetime, Time: time.UnixMilli(1)}, 15, listed(17), 17},
		{"datetime after last record", resetSpec{Mode: resetDatetime, Time: time.UnixMilli(1)}, 15, listed(-1), 20},
	} {
		got, err := resetTarget(tc.spec, p, tc.current, starts, ends, tc.byTime)
		if err != nil || got != tc.want {
			t.Errorf("%s: got %d, %v; want %d", tc.name, got, err, tc.want)
		}
	}
}

func TestGroupResetTargetErrors(t *testing.T) {
	p := kadm.Partition{Topic: "t", Partition: 0}
	ok := kadm.ListedOffsets{"t": {0: {Topic: "t", Partition: 0, Offset: 5}}}
	failed := kadm.ListedOffsets{"t": {0: {Topic: "t", Partition: 0, Err: kerr.NotLeaderForPartition}}}
	if _, err := resetTarget(resetSpec{Mode: resetShiftBy, Offset: 1}, p, -1, ok, ok, nil); err == nil || !strings.Contains(err.Error(), "no committed offset to shift") {
		t.Errorf("shift without commit: got %v", err)
	}
	if _, err := resetTarget(resetSpec{Mode: resetEarliest}, p, 0, failed, ok, nil); err == nil || !strings.Contains(err.Error(), "NOT_LEADER") {
		t.Errorf("failed start offset: got %v", err)
	}
	if _, err := resetTarget(resetSpec{Mode: resetLatest}, p, 0, ok, kadm.ListedOffsets{}, nil); err == nil || !strings.Contains(err.Error(), "t/0") {
		t.Errorf("missing end offset: got %v", err)
	}
}

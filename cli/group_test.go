package cli

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kdr-io/kdr/internal/kdrtest"
)

type jsonGroupDescriptions struct {
	Groups []struct {
		Group        string `json:"group"`
		Coordinator  int32  `json:"coordinator"`
		State        string `json:"state"`
		ProtocolType string `json:"protocol_type"`
		Protocol     string `json:"protocol"`
		Members      []struct {
			MemberID    string  `json:"member_id"`
			InstanceID  *string `json:"instance_id"`
			ClientID    string  `json:"client_id"`
			Host        string  `json:"host"`
			Assignments []struct {
				Topic      string  `json:"topic"`
				Partitions []int32 `json:"partitions"`
			} `json:"assignments"`
		} `json:"members"`
		Offsets  []jsonGroupOffset `json:"offsets"`
		TotalLag int64             `json:"total_lag"`
	} `json:"groups"`
}

type jsonGroupOffset struct {
	Topic           string `json:"topic"`
	Partition       int32  `json:"partition"`
	CommittedOffset int64  `json:"committed_offset"`
	LogEndOffset    int64  `json:"log_end_offset"`
	Lag             int64  `json:"lag"`
	MemberID        string `json:"member_id"`
	ClientID        string `json:"client_id"`
	Error           string `json:"error"`
}

type jsonGroupList struct {
	Groups []jsonGroupSummary `json:"groups"`
}

type jsonGroupSummary struct {
	Group        string `json:"group"`
	State        string `json:"state"`
	ProtocolType string `json:"protocol_type"`
	Members      int    `json:"members"`
}

type jsonResetPlan struct {
	Group    string `json:"group"`
	Executed bool   `json:"executed"`
	Offsets  []struct {
		Topic         string `json:"topic"`
		Partition     int32  `json:"partition"`
		CurrentOffset int64  `json:"current_offset"`
		NewOffset     int64  `json:"new_offset"`
	} `json:"offsets"`
}

// groupOffsets describes group and returns its state, offsets and the sums
// of committed offsets and lag.
func groupOffsets(t *testing.T, addr, group string) (state string, offsets []jsonGroupOffset, committed, lag int64) {
	t.Helper()
	d := decodeJSON[jsonGroupDescriptions](t, mustKdr(t, addr, "", "group", "describe", group, "--output", "json"))
	if len(d.Groups) != 1 || d.Groups[0].Group != group {
		t.Fatalf("group describe %s: %+v", group, d)
	}
	g := d.Groups[0]
	for _, o := range g.Offsets {
		if o.Error != "" {
			t.Errorf("group %s %s/%d: %s", group, o.Topic, o.Partition, o.Error)
		}
		committed += o.CommittedOffset
		lag += o.Lag
	}
	if lag != g.TotalLag {
		t.Errorf("group %s: total_lag %d, partitions sum to %d", group, g.TotalLag, lag)
	}
	return g.State, g.Offsets, committed, lag
}

func TestGroupOffsets(t *testing.T) {
	b := kdrtest.StartBroker(t)
	addr := b.Addr()
	mustKdr(t, addr, "", "topic", "create", "orders", "--partitions", "3")
	input, want := keyedLines(10)
	mustKdr(t, addr, input, "produce", "orders", "--key-separator", ":")

	out := mustKdr(t, addr, "", "consume", "orders", "--group", "billing", "--from-beginning", "--max-messages", "10", "--format", `%k=%v\n`)
	if got := sortedLines(out); !slices.Equal(got, want) {
		t.Errorf("consume --group:\ngot  %q\nwant %q", got, want)
	}
	state, offsets, committed, lag := groupOffsets(t, addr, "billing")
	if len(offsets) != 3 || committed != 10 || lag != 0 {
		t.Errorf("after consuming all: %d partitions, committed sum %d, lag %d; want 3, 10, 0: %+v", len(offsets), committed, lag, offsets)
	}
	for _, o := range offsets {
		if o.CommittedOffset != o.LogEndOffset || o.Lag != 0 {
			t.Errorf("%s/%d: committed %d, log end %d, lag %d", o.Topic, o.Partition, o.CommittedOffset, o.LogEndOffset, o.Lag)
		}
	}
	if state != "Empty" {
		t.Errorf("state after the consumer left: %q, want Empty", state)
	}

	l := decodeJSON[jsonGroupList](t, mustKdr(t, addr, "", "group", "list", "--output", "json"))
	i := slices.IndexFunc(l.Groups, func(g jsonGroupSummary) bool { return g.Group == "billing" })
	if i < 0 || l.Groups[i].ProtocolType != "consumer" || l.Groups[i].State != "Empty" || l.Groups[i].Members != 0 {
		t.Errorf("group list: %+v", l)
	}
	if text := mustKdr(t, addr, "", "group", "list"); !strings.HasPrefix(text, "GROUP") || !strings.Contains(text, "billing") {
		t.Errorf("group list text:\n%s", text)
	}

	// A dry run shows the plan and commits nothing.
	plan := decodeJSON[jsonResetPlan](t, mustKdr(t, addr, "", "group", "reset-offsets", "billing", "--topic", "orders", "--to-earliest", "--output", "json"))
	var current int64
	for _, o := range plan.Offsets {
		current += o.CurrentOffset
		if o.NewOffset != 0 {
			t.Errorf("plan %s/%d: new offset %d, want 0", o.Topic, o.Partition, o.NewOffset)
		}
	}
	if plan.Group != "billing" || plan.Executed || len(plan.Offsets) != 3 || current != 10 {
		t.Errorf("dry-run plan: %+v", plan)
	}
	if _, _, committed, _ := groupOffsets(t, addr, "billing"); committed != 10 {
		t.Errorf("after a dry run: committed sum %d, want 10 (unchanged)", committed)
	}

	text := mustKdr(t, addr, "", "group", "reset-offsets", "billing", "--topic", "orders", "--to-earliest", "--execute")
	if !strings.Contains(text, "CURRENT-OFFSET") || !strings.Contains(text, "Committed new offsets for 3 partition(s)") {
		t.Errorf("reset --execute output:\n%s", text)
	}
	_, offsets, committed, lag = groupOffsets(t, addr, "billing")
	if committed != 0 || lag != 10 {
		t.Errorf("after --to-earliest --execute: committed sum %d, lag %d; want 0, 10: %+v", committed, lag, offsets)
	}

	// Shift one partition forward; the result is clamped to the log end.
	mustKdr(t, addr, "", "group", "reset-offsets", "billing", "--topic", "orders:0", "--shift-by", "100", "--execute")
	_, offsets, _, _ = groupOffsets(t, addr, "billing")
	for _, o := range offsets {
		wantAt := int64(0)
		if o.Partition == 0 {
			wantAt = o.LogEndOffset
		}
		if o.CommittedOffset != wantAt {
			t.Errorf("after --shift-by 100 on partition 0: %s/%d committed %d, want %d", o.Topic, o.Partition, o.CommittedOffset, wantAt)
		}
	}

	missing := runKdr(t, addr, "", "group", "reset-offsets", "billing", "--topic", "orders:7", "--to-latest")
	if missing.code != exitError || !strings.Contains(missing.stderr, "no partition 7") {
		t.Errorf("reset a missing partition: exit %d, stderr %q", missing.code, missing.stderr)
	}
}

func TestGroupResetRefusesActiveGroup(t *testing.T) {
	b := kdrtest.StartBroker(t)
	addr := b.Addr()
	mustKdr(t, addr, "", "topic", "create", "orders", "--partitions", "2")

	// A consumer that runs until its context is cancelled, as on Ctrl-C.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errOut bytes.Buffer
	root := NewCmdRoot(IO{In: strings.NewReader(""), Out: &out, Err: &errOut})
	root.SetArgs([]string{"consume", "orders", "--group", "live", "--brokers", addr})
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()

	kdrtest.Eventually(t, 20*time.Second, func() (bool, string) {
		r := runKdr(t, addr, "", "group", "describe", "live", "--output", "json")
		if r.code != exitOK {
			return false, "group describe live: " + r.stderr
		}
		g := decodeJSON[jsonGroupDescriptions](t, r.stdout).Groups[0]
		return g.State == "Stable" && len(g.Members) == 1, "group live is " + g.State
	})
	r := runKdr(t, addr, "", "group", "reset-offsets", "live", "--topic", "orders", "--to-earliest", "--execute")
	if r.code != exitError || !strings.Contains(r.stderr, "stop the consumers first") || !strings.Contains(r.stderr, "Stable") {
		t.Errorf("reset of an active group: exit %d, stderr %q", r.code, r.stderr)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("interrupted consume returned %v, want nil", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("consume did not stop after its context was cancelled")
	}
	kdrtest.Eventually(t, 20*time.Second, func() (bool, string) {
		state, _, _, _ := groupOffsets(t, addr, "live")
		return state == "Empty", "group live is " + state
	})
	mustKdr(t, addr, "", "group", "reset-offsets", "live", "--topic", "orders", "--to-earliest", "--execute")
}

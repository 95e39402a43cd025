package cli

import (
	"bytes"
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kdr-io/kdr/internal/kdrtest"
	"github.com/kdr-io/kdr/mirror/mm2"
)

// TestMirrorTranslateCommand translates a group's offsets from offset syncs
// written by hand on a source broker; no target is involved.
func TestMirrorTranslateCommand(t *testing.T) {
	east := kdrtest.StartBroker(t)
	cl, err := kgo.NewClient(kgo.SeedBrokers(east.Addr()), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	syncs := mm2.OffsetSyncsTopic("west")
	for name, parts := range map[string]int32{"orders": 2, "other": 1, syncs: 1} {
		if _, err := adm.CreateTopic(ctx, parts, 1, nil, name); err != nil {
			t.Fatal(err)
		}
	}
	var recs []*kgo.Record
	for _, s := range []mm2.OffsetSync{
		{Topic: "orders", Partition: 0, UpstreamOffset: 0, DownstreamOffset: 100},
		{Topic: "orders", Partition: 0, UpstreamOffset: 9, DownstreamOffset: 109},
		{Topic: "orders", Partition: 1, UpstreamOffset: 0, DownstreamOffset: 0},
	} {
		recs = append(recs, &kgo.Record{Topic: syncs, Key: s.Key(), Value: s.Value()})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	commit := kadm.Offsets{}
	commit.Add(kadm.Offset{Topic: "orders", Partition: 0, At: 5, LeaderEpoch: -1})
	commit.Add(kadm.Offset{Topic: "orders", Partition: 1, At: 50, LeaderEpoch: -1})
	commit.Add(kadm.Offset{Topic: "other", Partition: 0, At: 3, LeaderEpoch: -1}) // not mirrored: left out
	if err := adm.CommitAllOffsets(ctx, "billing", commit); err != nil {
		t.Fatal(err)
	}

	translate := func(extra ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		args := append([]string{"mirror", "translate", "--group", "billing", "--source-alias", "east",
			"--source-brokers", east.Addr(), "--target-alias", "west", "--timeout", "20s"}, extra...)
		code := Execute(args, nil, &out, &errOut)
		return code, out.String(), errOut.String()
	}
	code, out, errOut := translate()
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	squash := func(s string) string { return strings.Join(strings.Fields(s), " ") }
	for _, want := range []string{
		"TOPIC PARTITION OFFSET east.orders 0 105",
		"1 offset(s) not translated: SOURCE-TOPIC PARTITION SOURCE-OFFSET REASON orders 1 50 not_mirrored",
		"not_mirrored: the group has read past what the mirror has copied so far; run again once the flow has caught up",
	} {
		if !strings.Contains(squash(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "other") {
		t.Errorf("output names an unmirrored topic:\n%s", out)
	}

	code, out, errOut = translate("--output", "json", "--naming", "identity")
	if code != exitOK {
		t.Fatalf("json: exit %d: %s", code, errOut)
	}
	res := decodeJSON[mirrorTranslation](t, out)
	if len(res.Offsets) != 1 || res.Offsets[0] != (translatedOffset{Topic: "orders", Partition: 0, Offset: 105}) ||
		len(res.Untranslated) != 1 || res.Untranslated[0] != (untranslatedOffset{SourceTopic: "orders", Partition: 1, SourceOffset: 50, Reason: "not_mirrored"}) ||
		res.Group != "billing" || res.SourceAlias != "east" || res.TargetAlias != "west" {
		t.Errorf("json result %+v", res)
	}

	// --execute commits the translation to the group on the target, not
	// what could not be translated; never while the group has members there.
	west := kdrtest.StartBroker(t)
	wcl, err := kgo.NewClient(kgo.SeedBrokers(west.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer wcl.Close()
	wadm := kadm.NewClient(wcl)
	if _, err := wadm.CreateTopic(ctx, 2, 1, nil, "east.orders"); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = translate("--target-brokers", west.Addr(), "--execute")
	if code != exitOK || !strings.Contains(out, "committed to group billing on west") {
		t.Fatalf("--execute: exit %d, %s%s", code, out, errOut)
	}
	committed, err := wadm.FetchOffsets(ctx, "billing")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	committed.Each(func(o kadm.OffsetResponse) { got = append(got, fmt.Sprintf("%s/%d=%d", o.Topic, o.Partition, o.At)) })
	if fmt.Sprint(got) != "[east.orders/0=105]" {
		t.Errorf("committed on the target: %v, want [east.orders/0=105]", got)
	}
	// A group further on the target is moved back, as --execute says it
	// does, and the output says so.
	ahead := kadm.Offsets{}
	ahead.Add(kadm.Offset{Topic: "east.orders", Partition: 0, At: 200, LeaderEpoch: -1})
	if resps, err := wadm.CommitOffsets(ctx, "billing", ahead); err != nil || resps.Error() != nil {
		t.Fatalf("committing billing ahead: %v %v", err, resps.Error())
	}
	code, out, errOut = translate("--target-brokers", west.Addr(), "--execute")
	if code != exitOK || !regexp.MustCompile(`east\.orders +0 +105 +200\n`).MatchString(out) || !strings.Contains(out, "moved back on 1 partition(s)") {
		t.Fatalf("--execute moving the group back: exit %d, %s%s", code, out, errOut)
	}
	member, err := kgo.NewClient(kgo.SeedBrokers(west.Addr()), kgo.ConsumerGroup("billing"), kgo.ConsumeTopics("east.orders"))
	if err != nil {
		t.Fatal(err)
	}
	defer member.Close()
	kdrtest.Eventually(t, 20*time.Second, func() (bool, string) {
		pctx, pcancel := context.WithTimeout(ctx, 200*time.Millisecond)
		member.PollFetches(pctx) // the member joins as it polls
		pcancel()
		d, err := wadm.DescribeGroups(ctx, "billing")
		return err == nil && len(d["billing"].Members) == 1, fmt.Sprintf("billing on west: %+v %v", d["billing"], err)
	})
	code, _, errOut = translate("--target-brokers", west.Addr(), "--execute")
	if code != exitError || !strings.Contains(errOut, "group billing has 1 active member(s) on west") {
		t.Errorf("--execute with a member on the target: exit %d, %s", code, errOut)
	}
	if code, _, errOut = translate("--execute"); code != exitUsage || !strings.Contains(errOut, "--target-brokers is required") {
		t.Errorf("--execute without --target-brokers: exit %d, %s", code, errOut)
	}

	// A typo in an alias names a syncs topic no flow writes: said so, not
	// "no committed offsets".
	code, _, errOut = translate("--target-alias", "wset")
	if code != exitError || !strings.Contains(errOut, "mm2-offset-syncs.wset.internal does not exist on east") ||
		!strings.Contains(errOut, "--offset-syncs-topic-location") {
		t.Errorf("mistyped target alias: exit %d, %s", code, errOut)
	}

	var o, e bytes.Buffer
	if code := Execute([]string{"mirror", "translate", "--source-alias", "east", "--source-brokers", east.Addr(), "--target-alias", "west"}, nil, &o, &e); code != exitUsage ||
		!strings.Contains(e.String(), "--group") {
		t.Errorf("without --group: exit %d, %s", code, e.String())
	}
	o.Reset()
	e.Reset()
	if code := Execute([]string{"mirror", "translate", "--group", "g", "--source-alias", "east", "--source-brokers", "127.0.0.1:1",
		"--target-alias", "west", "--timeout", "2s"}, nil, &o, &e); code != exitError {
		t.Errorf("unreachable source: exit %d, %s", code, e.String())
	}
}

// TestMirrorTranslateSyncsOnTarget: with --offset-syncs-topic-location
// target the syncs are read from --target-brokers, the group's offsets
// still from the source.
func TestMirrorTranslateSyncsOnTarget(t *testing.T) {
	east, west := kdrtest.StartBroker(t), kdrtest.StartBroker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client := func(addr string) (*kgo.Client, *kadm.Client) {
		cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RecordPartitioner(kgo.ManualPartitioner()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cl.Close)
		return cl, kadm.NewClient(cl)
	}
	_, eastAdm := client(east.Addr())
	westCl, westAdm := client(west.Addr())
	syncs := mm2.OffsetSyncsTopic("east") // on the target, named after the source
	if _, err := eastAdm.CreateTopic(ctx, 1, 1, nil, "orders"); err != nil {
		t.Fatal(err)
	}
	if _, err := westAdm.CreateTopic(ctx, 1, 1, nil, syncs); err != nil {
		t.Fatal(err)
	}
	s := mm2.OffsetSync{Topic: "orders", Partition: 0, UpstreamOffset: 0, DownstreamOffset: 40}
	if err := westCl.ProduceSync(ctx, &kgo.Record{Topic: syncs, Key: s.Key(), Value: s.Value()}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	commit := kadm.Offsets{}
	commit.Add(kadm.Offset{Topic: "orders", Partition: 0, At: 0, LeaderEpoch: -1})
	if err := eastAdm.CommitAllOffsets(ctx, "billing", commit); err != nil {
		t.Fatal(err)
	}
	base := []string{"mirror", "translate", "--group", "billing", "--source-alias", "east", "--source-brokers", east.Addr(),
		"--target-alias", "west", "--timeout", "20s", "--offset-syncs-topic-location", "target"}
	var out, errOut bytes.Buffer
	if code := Execute(base, nil, &out, &errOut); code != exitUsage || !strings.Contains(errOut.String(), "--target-brokers is required") {
		t.Fatalf("without --target-brokers: exit %d, %s", code, errOut.String())
	}
	out.Reset()
	errOut.Reset()
	if code := Execute(append(base, "--target-brokers", west.Addr()), nil, &out, &errOut); code != exitOK ||
		!strings.Contains(strings.Join(strings.Fields(out.String()), " "), "TOPIC PARTITION OFFSET east.orders 0 40") {
		t.Fatalf("exit %d\n%s%s", code, out.String(), errOut.String())
	}
}

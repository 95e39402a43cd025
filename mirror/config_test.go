package mirror

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

func validFlow() Flow {
	f := DefaultFlow()
	f.SourceAlias, f.TargetAlias = "east", "west"
	f.Source.Brokers, f.Target.Brokers = []string{"127.0.0.1:9092"}, []string{"10.0.0.1:9092"}
	return f
}

func TestMirrorFlowValidate(t *testing.T) {
	if err := validFlow().Validate(); err != nil {
		t.Fatalf("valid flow: %v", err)
	}
	for field, mutate := range map[string]func(*Flow){
		"SourceAlias":          func(f *Flow) { f.SourceAlias = "" },
		"TargetAlias":          func(f *Flow) { f.TargetAlias = "east" },
		"Naming":               func(f *Flow) { f.Naming = "suffix" },
		"Source.Brokers":       func(f *Flow) { f.Source.Brokers = nil },
		"Target.Brokers":       func(f *Flow) { f.Target.Brokers = []string{"nohost"} },
		"Topics/TopicsExclude": func(f *Flow) { f.TopicsExclude = "a(" },
		"Groups/GroupsExclude": func(f *Flow) { f.Groups = "(?=x)" },
		"ConfigsExclude":       func(f *Flow) { f.ConfigsExclude = "[" },
		"RefreshInterval":      func(f *Flow) { f.RefreshInterval = 0 },
		"HeartbeatInterval":    func(f *Flow) { f.HeartbeatInterval = 0 },
		"ReplicationFactor":    func(f *Flow) { f.ReplicationFactor = -1 },
		"BatchRecords":         func(f *Flow) { f.BatchRecords = 0 },
		"Compression":          func(f *Flow) { f.Compression = "brotli" },
		"SessionTimeout":       func(f *Flow) { f.SessionTimeout = -time.Second },
		"DeliveryTimeout":      func(f *Flow) { f.DeliveryTimeout = 0 },
		"OffsetSyncsRetention": func(f *Flow) { f.OffsetSyncsRetention = 0 },
		"Separator":            func(f *Flow) { f.Separator = "," },
	} {
		f := validFlow()
		mutate(&f)
		err := f.Validate()
		if !errors.Is(err, ErrInvalidFlow) || !strings.Contains(err.Error(), field+":") {
			t.Errorf("%s: Validate() = %v, want an ErrInvalidFlow naming the field", field, err)
		}
	}
	// Several problems are all reported.
	f := validFlow()
	f.SourceAlias, f.BatchRecords = "", 0
	if err := f.Validate(); !strings.Contains(err.Error(), "SourceAlias") || !strings.Contains(err.Error(), "BatchRecords") {
		t.Errorf("two bad fields: %v", err)
	}
	// Prefix naming refuses an alias containing its separator.
	f = validFlow()
	f.SourceAlias = "us.east"
	if err := f.Validate(); err == nil {
		t.Error("alias with the separator accepted")
	}
	f.Naming, f.Separator = NamingPrefix, "_"
	if err := f.Validate(); err != nil {
		t.Errorf("alias us.east with separator _: %v", err)
	}
	if g := validFlow().Group(); g != "kdr-mirror-east-west" {
		t.Errorf("default group %q", g)
	}
	if _, err := New(Flow{}, Options{}); !errors.Is(err, ErrInvalidFlow) {
		t.Errorf("New with a zero Flow: %v", err)
	}
}

// TestMirrorBatchSizeMatchesBroker checks batchSize, which decides what is
// too large, against a broker's max.message.bytes: a record whose batch is
// exactly the limit is accepted, one byte more is refused.
func TestMirrorBatchSizeMatchesBroker(t *testing.T) {
	c := startCluster(t)
	const limit = 2000
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := c.adm.CreateTopic(ctx, 1, 1, map[string]*string{"max.message.bytes": kadm.StringPtr("2000")}, "small"); err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.addr), kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	sized := func(n int) *kgo.Record {
		r := &kgo.Record{Topic: "small", Key: []byte("key"), Headers: []kgo.RecordHeader{{Key: "h", Value: []byte("v")}}}
		for size := 0; ; size++ {
			r.Value = bytes.Repeat([]byte("x"), size)
			if batchSize(r) >= n {
				return r
			}
		}
	}
	fit := sized(limit)
	if batchSize(fit) != limit {
		t.Fatalf("no record of exactly %d bytes (got %d)", limit, batchSize(fit))
	}
	if err := cl.ProduceSync(ctx, fit).FirstErr(); err != nil {
		t.Errorf("record of batch size %d refused: %v", batchSize(fit), err)
	}
	over := sized(limit + 1)
	if err := cl.ProduceSync(ctx, over).FirstErr(); !errors.Is(err, kerr.MessageTooLarge) {
		t.Errorf("record of batch size %d: %v, want MESSAGE_TOO_LARGE", batchSize(over), err)
	}
}

// TestMirrorGroupFilterSkipsWorkersGroups: the groups a flow translates are
// its Groups less GroupsExclude, its own workers group and every flow's
// default workers group (two flows from one source each translated the
// other's workers onto their targets).
func TestMirrorGroupFilterSkipsWorkersGroups(t *testing.T) {
	f := DefaultFlow()
	f.SourceAlias, f.TargetAlias, f.WorkersGroup = "east", "west", "copiers"
	filter := f.GroupFilter()
	for group, want := range map[string]bool{
		"billing":                   true,
		"copiers":                   false, // its own, named by --group
		"kdr-mirror-east-west":      false, // its default name
		"kdr-mirror-east-south":     false, // another flow's
		"kdr-mirror-eastid-westid":  false,
		"my-kdr-mirror-east-west":   true, // anchored
		"console-consumer-1":        false,
		"connect-mirror-east-south": false,
	} {
		if got := filter.Match(group); got != want {
			t.Errorf("GroupFilter().Match(%q) = %v, want %v", group, got, want)
		}
	}
}

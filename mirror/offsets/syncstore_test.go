package offsets

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kdr-io/kdr/internal/kdrtest"
	"github.com/kdr-io/kdr/mirror/mm2"
)

// runStore starts a SyncStore on src's offset-syncs topic for target west
// and waits until it is ready.
func runStore(t *testing.T, src cluster, reg prometheus.Registerer) *SyncStore {
	t.Helper()
	s, err := NewSyncStore(SyncStoreConfig{Source: []kgo.Opt{kgo.SeedBrokers(src.addr)}, TargetAlias: "west", Flow: "east->west",
		Registerer: reg, Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("SyncStore.Run: %v", err)
		}
		s.Close()
	})
	if err := s.WaitReady(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	return s
}

// checkStore checks s against the copier for every offset of partition p
// from before the source's first to past its end.
func checkStore(t *testing.T, s *SyncStore, c *copier, p int32, end int64) {
	t.Helper()
	for u := int64(0); u <= end+2; u++ {
		d, ok := s.Translate(c.topic, p, u)
		want, wok := c.want(p, u)
		if ok != wok || (ok && d != want) {
			t.Fatalf("%s/%d: Translate(%d) = %d, %v; want %d, %v", c.topic, p, u, d, ok, want, wok)
		}
	}
}

func TestMirrorOffsetsSyncStore(t *testing.T) {
	src, dst := startCluster(t), startCluster(t)
	syncTopic := mm2.OffsetSyncsTopic("west")
	if err := EnsureSyncTopic(ctxT(t), src.adm, syncTopic, 7*24*3600*1000, -1); err != nil {
		t.Fatal(err)
	}
	assertTopicConfig(t, src.adm, syncTopic, "cleanup.policy", "delete")
	createTopic(t, src, "orders", 2)
	createTopic(t, dst, "east.orders", 2)
	fill(t, src, "orders", 2, 300)

	c := newCopier(t, src, dst, "orders", "east.orders", syncTopic)
	c.copy(0, 0, 150, 7, nil)
	c.restart(0)
	c.copy(0, 150, 300, 13, nil)
	// Partition 1: every sixth record and 100..129 are not copied, as if
	// compacted away.
	keep := func(o int64) bool { return o%6 != 4 && (o < 100 || o >= 130) }
	c.copy(1, 0, 200, 11, keep)
	// A record that is not an offset sync must be skipped, not stop the store.
	if err := c.syncWriter.ProduceSync(ctxT(t), &kgo.Record{Topic: syncTopic, Key: []byte("junk"), Value: []byte{1}}).FirstErr(); err != nil {
		t.Fatal(err)
	}

	reg := prometheus.NewRegistry()
	start := time.Now()
	s := runStore(t, src, reg)
	t.Logf("read %d syncs for %d records in %v", c.written, len(c.pairs[0])+len(c.pairs[1]), time.Since(start))
	checkStore(t, s, c, 0, 300)
	checkStore(t, s, c, 1, 300)
	if got := metric(t, reg, "kdr_mirror_offset_syncs_invalid_total", "flow=east->west"); got != 1 {
		t.Errorf("invalid syncs counted: %v, want 1", got)
	}
	if got := metric(t, reg, "kdr_mirror_offset_syncs_read_total", "flow=east->west"); got != float64(c.written) {
		t.Errorf("syncs read: %v, want %d", got, c.written)
	}

	// Following: syncs written after the store is ready are picked up.
	c.copy(1, 200, 300, 11, keep)
	kdrtest.Eventually(t, 10*time.Second, func() (bool, string) {
		d, ok := s.Translate("orders", 1, 300)
		return ok && d == c.pairs[1][len(c.pairs[1])-1].Downstream+1, "head of orders/1 not translated yet"
	})
	checkStore(t, s, c, 1, 300)

	// A restarted store reads the whole history back: old positions still
	// translate exactly (MM2's compacted topic would keep one sync per
	// partition, KAFKA-15905).
	s2 := runStore(t, src, nil)
	checkStore(t, s2, c, 0, 300)
	checkStore(t, s2, c, 1, 300)
	ix := s2.index("orders", 0, false)
	if ix.Len() > 3 {
		t.Errorf("a gap-free partition holds %d syncs, want a handful: %v", ix.Len(), ix.Syncs())
	}
	if got := s2.Topics(); len(got) != 1 || got[0] != "orders" {
		t.Errorf("Topics = %v", got)
	}

	// A store on a topic that does not exist is ready at once.
	empty, err := NewSyncStore(SyncStoreConfig{Source: []kgo.Opt{kgo.SeedBrokers(src.addr)}, TargetAlias: "nowhere"})
	if err != nil {
		t.Fatal(err)
	}
	defer empty.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go empty.Run(ctx)
	if err := empty.WaitReady(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if _, st := empty.Lookup("orders", 0, 5); st != NoSyncs {
		t.Errorf("empty store: %v", st)
	}
}

func TestMirrorOffsetsEnsureSyncTopicCompacted(t *testing.T) {
	src := startCluster(t)
	resp, err := src.adm.CreateTopic(ctxT(t), 1, 1, map[string]*string{"cleanup.policy": kadm.StringPtr("compact")}, "mm2-offset-syncs.mm2.internal")
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatal(err)
	}
	err = EnsureSyncTopic(ctxT(t), src.adm, "mm2-offset-syncs.mm2.internal", -1, -1)
	if !errors.Is(err, ErrSyncTopicCompacted) {
		t.Fatalf("EnsureSyncTopic on an MM2-style compacted topic: %v", err)
	}
	if err := EnsureSyncTopic(ctxT(t), src.adm, "mm2-offset-syncs.x.internal", -1, -1); err != nil {
		t.Fatal(err)
	}
	if err := EnsureSyncTopic(ctxT(t), src.adm, "mm2-offset-syncs.x.internal", -1, -1); err != nil {
		t.Fatalf("second EnsureSyncTopic: %v", err)
	}
	assertTopicConfig(t, src.adm, "mm2-offset-syncs.x.internal", "retention.ms", "-1")
	// A later run with another retention sets it on the existing topic.
	if err := EnsureSyncTopic(ctxT(t), src.adm, "mm2-offset-syncs.x.internal", 2592000000, -1); err != nil {
		t.Fatalf("EnsureSyncTopic with a new retention: %v", err)
	}
	assertTopicConfig(t, src.adm, "mm2-offset-syncs.x.internal", "retention.ms", "2592000000")
}

func assertTopicConfig(t *testing.T, adm *kadm.Client, topic, key, want string) {
	t.Helper()
	rcs, err := adm.DescribeTopicConfigs(ctxT(t), topic)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := rcs.On(topic, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range rc.Configs {
		if c.Key == key {
			if c.Value == nil || *c.Value != want {
				t.Fatalf("%s %s = %v, want %s", topic, key, c.Value, want)
			}
			return
		}
	}
	t.Fatalf("%s has no %s config", topic, key)
}

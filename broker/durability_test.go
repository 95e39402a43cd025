package broker_test

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kdr-io/kdr/broker"
	"github.com/kdr-io/kdr/internal/kdrtest"
)

// TestBrokerKill9DuringAcks1ProduceLosesNothingAcknowledged kills the broker
// process with SIGKILL while producers with acks=1 are mid-stream, restarts
// it, and checks that every acknowledged record is there, that each
// partition's offsets are contiguous (no half batch, no hole), and that new
// appends continue after the old log end. With 64 KiB segments each
// partition rolls about every 300 records, so the kill also lands among
// rolls whose background flush has not run: recovery must re-read the
// segments past the recovery point.
func TestBrokerKill9DuringAcks1ProduceLosesNothingAcknowledged(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a broker process")
	}
	for _, tc := range []struct {
		name    string
		configs map[string]*string
	}{
		{"default segments", nil},
		{"a roll every 64 KiB", map[string]*string{"segment.bytes": str("65536")}},
	} {
		t.Run(tc.name, func(t *testing.T) { kill9DuringAcks1Produce(t, tc.configs) })
	}
}

func kill9DuringAcks1Produce(t *testing.T, configs map[string]*string) {
	proc := kdrtest.StartProcess(t, kdrtest.Binary(t))
	adm := kadm.NewClient(client(t, proc.Addr()))
	createTopic(t, adm, "crash", 4, configs)

	prod := client(t, proc.Addr(), kgo.DefaultProduceTopic("crash"), kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite(),
		kgo.RecordRetries(0), kgo.ProducerLinger(time.Millisecond))
	var (
		mu    sync.Mutex
		acked = map[uint64]bool{}
		sent  atomic.Uint64
	)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := uint64(0); ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			v := make([]byte, 200)
			binary.BigEndian.PutUint64(v, i)
			sent.Add(1)
			prod.Produce(context.Background(), &kgo.Record{Value: v}, func(r *kgo.Record, err error) {
				if err == nil {
					mu.Lock()
					acked[binary.BigEndian.Uint64(r.Value)] = true
					mu.Unlock()
				}
			})
		}
	}()
	kdrtest.Eventually(t, 20*time.Second, func() (bool, string) {
		mu.Lock()
		defer mu.Unlock()
		return len(acked) >= 20000, "waiting for 20000 acknowledged records"
	})
	proc.Kill()
	close(stop)
	<-done
	prod.Close() // fail whatever is still buffered
	mu.Lock()
	ackedCopy := make(map[uint64]bool, len(acked))
	for k := range acked {
		ackedCopy[k] = true
	}
	mu.Unlock()
	t.Logf("sent %d, acknowledged %d before kill -9", sent.Load(), len(ackedCopy))

	proc.Restart()
	adm = kadm.NewClient(client(t, proc.Addr()))
	ends, err := adm.ListEndOffsets(ctxT(t), "crash")
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	ends.Each(func(o kadm.ListedOffset) { total += o.Offset })
	got := consumeAll(t, proc.Addr(), "crash", int(total))
	seen := map[uint64]bool{}
	nextOffset := map[int32]int64{}
	for _, r := range got {
		if r.Offset != nextOffset[r.Partition] {
			t.Fatalf("partition %d: offset %d after %d — a hole or a half batch", r.Partition, r.Offset, nextOffset[r.Partition]-1)
		}
		nextOffset[r.Partition]++
		seen[binary.BigEndian.Uint64(r.Value)] = true
	}
	for k := range ackedCopy {
		if !seen[k] {
			t.Fatalf("acknowledged record %d lost after kill -9", k)
		}
	}
	// Offsets continue from the recovered log end.
	after := client(t, proc.Addr(), kgo.DefaultProduceTopic("crash"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	r := &kgo.Record{Value: []byte("after"), Partition: 0}
	if err := after.ProduceSync(ctxT(t), r).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if o, _ := ends.Lookup("crash", 0); r.Offset != o.Offset {
		t.Fatalf("first offset after restart %d, want %d", r.Offset, o.Offset)
	}
}

// cutProxy forwards Kafka traffic to a broker and, when armed, swallows the
// response to the next Produce request and cuts the connection: the broker
// has appended the batch but the producer never hears so, and retries.
type cutProxy struct {
	ln      net.Listener
	target  atomic.Value // string
	armed   atomic.Bool
	cut     atomic.Int32
	produce atomic.Int32
}

func startCutProxy(t *testing.T) *cutProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.serve(c)
		}
	}()
	return p
}

func (p *cutProxy) serve(client net.Conn) {
	defer client.Close()
	server, err := net.Dial("tcp", p.target.Load().(string))
	if err != nil {
		return
	}
	defer server.Close()
	for {
		var size [4]byte
		if _, err := io.ReadFull(client, size[:]); err != nil {
			return
		}
		req := make([]byte, binary.BigEndian.Uint32(size[:]))
		if _, err := io.ReadFull(client, req); err != nil {
			return
		}
		isProduce := binary.BigEndian.Uint16(req) == 0
		if _, err := server.Write(append(size[:], req...)); err != nil {
			return
		}
		if _, err := io.ReadFull(server, size[:]); err != nil {
			return
		}
		resp := make([]byte, binary.BigEndian.Uint32(size[:]))
		if _, err := io.ReadFull(server, resp); err != nil {
			return
		}
		if isProduce {
			p.produce.Add(1)
			if p.armed.CompareAndSwap(true, false) {
				p.cut.Add(1)
				return // the broker appended; the client never hears it
			}
		}
		if _, err := client.Write(append(size[:], resp...)); err != nil {
			return
		}
	}
}

// TestBrokerIdempotentRetryAfterLostResponseDoesNotDuplicate cuts the
// connection after the broker appended a batch but before the producer got
// the answer; the idempotent producer retries the same sequence numbers and
// the broker must answer with the original offsets instead of appending again.
func TestBrokerIdempotentRetryAfterLostResponseDoesNotDuplicate(t *testing.T) {
	proxy := startCutProxy(t)
	b := kdrtest.StartBroker(t, kdrtest.WithConfig(func(c *broker.Config) { c.AdvertisedListen = proxy.ln.Addr().String() }))
	proxy.target.Store(b.ListenAddr())
	adm := kadm.NewClient(client(t, proxy.ln.Addr().String()))
	createTopic(t, adm, "idem", 1, nil)
	prod := client(t, proxy.ln.Addr().String(), kgo.DefaultProduceTopic("idem"), kgo.RequiredAcks(kgo.AllISRAcks()))

	const n = 50
	for i := 0; i < n; i++ {
		if i%10 == 5 {
			proxy.armed.Store(true)
		}
		r := &kgo.Record{Value: []byte{byte(i)}}
		if err := prod.ProduceSync(ctxT(t), r).FirstErr(); err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		if r.Offset != int64(i) {
			t.Fatalf("record %d acknowledged at offset %d", i, r.Offset)
		}
	}
	if cuts := proxy.cut.Load(); cuts != 5 {
		t.Fatalf("proxy cut %d responses, want 5", cuts)
	}
	if retries := proxy.produce.Load(); retries < n+5 {
		t.Fatalf("broker saw %d produce requests; the retries did not happen", retries)
	}
	ends, _ := adm.ListEndOffsets(ctxT(t), "idem")
	if o, _ := ends.Lookup("idem", 0); o.Offset != n {
		t.Fatalf("log end offset %d, want %d: retries were appended twice", o.Offset, n)
	}
	got := consumeAll(t, proxy.ln.Addr().String(), "idem", n)
	for i, r := range got {
		if int(r.Value[0]) != i {
			t.Fatalf("offset %d holds record %d", i, r.Value[0])
		}
	}
}

// TestBrokerRetentionDeletesOldSegmentsByTime produces records stamped two
// hours ago, each in its own segment, then fresh ones; with retention.ms of
// one hour the old segments go and the log start lands exactly on the first
// fresh record.
func TestBrokerRetentionDeletesOldSegmentsByTime(t *testing.T) {
	b := kdrtest.StartBroker(t, kdrtest.WithConfig(func(c *broker.Config) { c.LogMaintenanceInterval = 50 * time.Millisecond }))
	cl := client(t, b.Addr(), kgo.DefaultProduceTopic("ret"), kgo.ProducerLinger(0))
	adm := kadm.NewClient(cl)
	createTopic(t, adm, "ret", 1, map[string]*string{"segment.bytes": str("100"), "retention.ms": str("3600000")})
	old := time.Now().Add(-2 * time.Hour)
	for i := 0; i < 10; i++ {
		if err := cl.ProduceSync(ctxT(t), &kgo.Record{Value: []byte("old"), Timestamp: old}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 3; i++ {
		cl.ProduceSync(ctxT(t), &kgo.Record{Value: []byte("new")})
	}
	kdrtest.Eventually(t, 10*time.Second, func() (bool, string) {
		start, err := adm.ListStartOffsets(ctxT(t), "ret")
		o, _ := start.Lookup("ret", 0)
		return err == nil && o.Offset == 10, "log start offset is not 10 yet"
	})
	got := consumeAll(t, b.Addr(), "ret", 3)
	for i, r := range got {
		if string(r.Value) != "new" || r.Offset != int64(10+i) {
			t.Fatalf("after retention: %q at %d", r.Value, r.Offset)
		}
	}
}

// TestBrokerCompactionKeepsLatestValuePerKey checks compaction through the
// broker: the exact surviving (key, offset, value) set.
func TestBrokerCompactionKeepsLatestValuePerKey(t *testing.T) {
	b := kdrtest.StartBroker(t, kdrtest.WithConfig(func(c *broker.Config) { c.LogMaintenanceInterval = 50 * time.Millisecond }))
	cl := client(t, b.Addr(), kgo.DefaultProduceTopic("compact"), kgo.ProducerLinger(0))
	adm := kadm.NewClient(cl)
	createTopic(t, adm, "compact", 1, map[string]*string{
		"cleanup.policy": str("compact"), "segment.bytes": str("100"), "min.cleanable.dirty.ratio": str("0.01"), "delete.retention.ms": str("0"),
	})
	produce := func(key string, value []byte) {
		if err := cl.ProduceSync(ctxT(t), &kgo.Record{Key: []byte(key), Value: value}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	for round := 0; round < 3; round++ {
		for _, k := range []string{"a", "b", "c", "d"} {
			produce(k, []byte(k+string(rune('0'+round))))
		}
	}
	produce("d", nil) // offset 12: tombstone for d
	produce("e", []byte("e0"))
	// Offsets: a0 0, b0 1, c0 2, d0 3, a1 4, ..., a2 8, b2 9, c2 10, d2 11, tombstone 12, e0 13.
	want := map[int64]string{8: "a=a2", 9: "b=b2", 10: "c=c2", 13: "e=e0"}
	kdrtest.Eventually(t, 15*time.Second, func() (bool, string) {
		cons := client(t, b.Addr(), kgo.ConsumeTopics("compact"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		defer cons.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		got := map[int64]string{}
		for {
			fs := cons.PollFetches(ctx)
			if ctx.Err() != nil {
				return false, "timed out reading"
			}
			for _, r := range fs.Records() {
				got[r.Offset] = string(r.Key) + "=" + string(r.Value)
				if r.Offset == 13 {
					if len(got) != len(want) {
						return false, "not compacted yet: " + mapString(got)
					}
					for o, kv := range want {
						if got[o] != kv {
							return false, "unexpected survivors: " + mapString(got)
						}
					}
					return true, ""
				}
			}
		}
	})
}

func mapString(m map[int64]string) string {
	s := ""
	for o := int64(0); o < 20; o++ {
		if v, ok := m[o]; ok {
			s += " " + string(rune('0'+o/10)) + string(rune('0'+o%10)) + ":" + v
		}
	}
	return s
}

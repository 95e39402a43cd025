package broker

import (
	"bufio"
	"bytes"
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kdr-io/kdr/broker/storage"
	"github.com/kdr-io/kdr/internal/recordbatch"
)

// TestFetchStreamMatchesKmsgEncoding checks, for every Fetch version the
// broker serves, that the streamed response (markers replaced by file bytes)
// is byte for byte what kmsg encodes with the records in memory — including
// empty partitions, errors, aborted transactions and tagged fields.
func TestFetchStreamMatchesKmsgEncoding(t *testing.T) {
	dir := t.TempDir()
	var slices [][]byte
	var logs []*storage.Log
	for i := 0; i < 3; i++ {
		l, err := storage.Open(fmt.Sprintf("%s/p%d", dir, i), storage.DefaultConfig(), storage.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		recs := []recordbatch.Record{{Key: []byte("k"), Value: bytes.Repeat([]byte{byte(i)}, 300*(i+1))}}
		batch, _ := recordbatch.Build(recs, recordbatch.Options{TimestampMs: 1})
		for j := 0; j < 2; j++ {
			if _, err := l.AppendAsLeader(batch, 3); err != nil {
				t.Fatal(err)
			}
		}
		logs = append(logs, l)
	}
	for v := int16(4); v <= 16; v++ {
		resp := kmsg.NewPtrFetchResponse()
		resp.Version = v
		st := &fetchStream{FetchResponse: resp, marker: newFetchMarker()}
		var want [][]byte
		for ti := 0; ti < 2; ti++ {
			topic := kmsg.NewFetchResponseTopic()
			topic.Topic = fmt.Sprintf("topic-%d", ti)
			topic.TopicID = [16]byte{byte(ti + 1)}
			for pi := 0; pi < 3; pi++ {
				p := kmsg.NewFetchResponseTopicPartition()
				p.Partition, p.HighWatermark, p.LastStableOffset, p.LogStartOffset = int32(pi), 2, 2, 0
				p.RecordBatches = []byte{}
				if pi == 1 && ti == 1 {
					p.ErrorCode = 6
					p.CurrentLeader.LeaderID, p.CurrentLeader.LeaderEpoch = 2, 5
					p.AbortedTransactions = []kmsg.FetchResponseTopicPartitionAbortedTransaction{{ProducerID: 7, FirstOffset: 1}}
				}
				topic.Partitions = append(topic.Partitions, p)
			}
			resp.Topics = append(resp.Topics, topic)
		}
		for ti := range resp.Topics {
			for _, pi := range []int{0, 2} {
				s, err := logs[pi].Read(0, 1<<20, logs[pi].LogEndOffset(), true)
				if err != nil {
					t.Fatal(err)
				}
				b, _ := s.ReadAll(nil)
				want = append(want, b)
				st.add(&resp.Topics[ti].Partitions[pi], s)
			}
		}
		slices = want
		size, write := st.EncodeStream()
		var got bytes.Buffer
		bw := bufio.NewWriter(&got)
		if err := write(bw); err != nil {
			t.Fatal(err)
		}
		bw.Flush()
		st.Release()
		i := 0
		for ti := range resp.Topics {
			for _, pi := range []int{0, 2} {
				resp.Topics[ti].Partitions[pi].RecordBatches = slices[i]
				i++
			}
		}
		expect := resp.AppendTo(nil)
		if got.Len() != size || !bytes.Equal(got.Bytes(), expect) {
			t.Fatalf("v%d: streamed %d bytes (declared %d), kmsg %d; equal=%v", v, got.Len(), size, len(expect), bytes.Equal(got.Bytes(), expect))
		}
	}
}

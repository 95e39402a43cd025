package checker

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"time"
)

// EncodeValue is the workload's record value for (key, seq, id): the JSON
// {"key","seq","id"} the Producer writes.
func EncodeValue(key string, seq int64, id string) []byte {
	b, _ := json.Marshal(value{Key: key, Seq: seq, ID: id})
	return b
}

// DecodeValue reads a value EncodeValue wrote; ok is false for anything
// else, or when the value's key is not key.
func DecodeValue(key, val []byte) (seq int64, id string, ok bool) {
	var v value
	if err := json.Unmarshal(val, &v); err != nil || v.Key != string(key) || v.ID == "" {
		return 0, "", false
	}
	return v.Seq, v.ID, true
}

// Produced is one record a producer offered, for CheckGroup: the workload
// seen across clusters, where offsets do not identify a record but ids do.
type Produced struct {
	ID, Key string
	Seq     int64
	Sent    time.Time // handed to the client
	Done    time.Time // acknowledged or failed; zero while pending
	Acked   bool
	Cluster string // the cluster it was produced to
	Err     string // why it failed
}

// Delivery is one record a consumer group delivered to the application.
type Delivery struct {
	ID, Key   string
	Seq       int64
	Cluster   string
	Topic     string
	Partition int32
	Offset    int64
	At        time.Time
}

// GroupReport is CheckGroup's verdict. ID lists are complete and sorted by
// the time the records were sent.
type GroupReport struct {
	Produced, Acked, Failed, Delivered int64

	// Lost: acknowledged and not retained (absent from the log read at the
	// end).
	Lost    int64
	LostIDs []string
	// Undelivered: acknowledged and retained, but never delivered to the
	// group (its offsets skipped them).
	Undelivered    int64
	UndeliveredIDs []string
	// Duplicated: records delivered more than once (counted once each);
	// Redeliveries is the number of extra deliveries.
	Duplicated    int64
	DuplicatedIDs []string
	Redeliveries  int64
	// Reordered: first deliveries of a key's seq after a larger seq of the
	// same key had been delivered.
	Reordered       int64
	ReorderExamples []string
	// Unexpected: deliveries of ids this run never produced.
	Unexpected int64
}

// CheckGroup compares what was produced with what a consumer group was
// delivered (in delivery order) and with retained, the ids found in the
// topic at the end. Records are identified by id, so it holds across
// clusters whose offsets differ.
func CheckGroup(produced []Produced, deliveries []Delivery, retained map[string]bool) GroupReport {
	rep := GroupReport{Produced: int64(len(produced)), Delivered: int64(len(deliveries))}
	byID := make(map[string]*Produced, len(produced))
	order := slices.Clone(produced)
	slices.SortStableFunc(order, func(a, b Produced) int { return a.Sent.Compare(b.Sent) })
	for i := range order {
		byID[order[i].ID] = &order[i]
	}
	times := map[string]int{}
	highest := map[string]int64{}
	for _, d := range deliveries {
		if _, ok := byID[d.ID]; !ok {
			rep.Unexpected++
			continue
		}
		times[d.ID]++
		if times[d.ID] > 1 {
			rep.Redeliveries++
			continue
		}
		if h, ok := highest[d.Key]; ok && d.Seq < h {
			rep.Reordered++
			if len(rep.ReorderExamples) < maxExamples {
				rep.ReorderExamples = append(rep.ReorderExamples, fmt.Sprintf("%s/%d (%s) after seq %d", d.Key, d.Seq, d.Cluster, h))
			}
		}
		highest[d.Key] = max(highest[d.Key], d.Seq)
	}
	for _, p := range order {
		if p.Acked {
			rep.Acked++
		} else if !p.Done.IsZero() {
			rep.Failed++
		}
		switch {
		case times[p.ID] > 1:
			rep.Duplicated++
			rep.DuplicatedIDs = append(rep.DuplicatedIDs, p.ID)
		}
		if !p.Acked {
			continue
		}
		switch {
		case !retained[p.ID]:
			rep.Lost++
			rep.LostIDs = append(rep.LostIDs, p.ID)
		case times[p.ID] == 0:
			rep.Undelivered++
			rep.UndeliveredIDs = append(rep.UndeliveredIDs, p.ID)
		}
	}
	return rep
}

// SortDeliveries orders deliveries by time, then cluster, topic, partition
// and offset.
func SortDeliveries(ds []Delivery) {
	slices.SortStableFunc(ds, func(a, b Delivery) int {
		return cmp.Or(a.At.Compare(b.At), cmp.Compare(a.Cluster, b.Cluster), cmp.Compare(a.Topic, b.Topic),
			cmp.Compare(a.Partition, b.Partition), cmp.Compare(a.Offset, b.Offset))
	})
}

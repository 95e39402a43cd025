package mirror

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// leaders caches the partition leaders of one cluster, for the requests
// the mirror routes itself (fetches from the source, forwarded batches to
// the target). A miss or a forgotten entry refreshes its topic, at most
// every minAge.
type leaders struct {
	cl     *kgo.Client
	minAge time.Duration

	mu      sync.Mutex
	m       map[topicPartition]int32
	fetched map[string]time.Time // topic → last metadata answer
	errs    map[string]error     // topic → the error its last answer carried
}

func newLeaders(cl *kgo.Client, minAge time.Duration) *leaders {
	return &leaders{cl: cl, minAge: minAge, m: map[topicPartition]int32{}, fetched: map[string]time.Time{}, errs: map[string]error{}}
}

// lookup returns the leaders of tps, refreshing topics with a partition not
// cached. Partitions without a known leader are left out; err is the
// metadata request's failure, if one was needed and failed.
func (l *leaders) lookup(ctx context.Context, tps []topicPartition) (map[topicPartition]int32, error) {
	out := make(map[topicPartition]int32, len(tps))
	var missing []string
	now := time.Now()
	l.mu.Lock()
	for _, tp := range tps {
		if id, ok := l.m[tp]; ok {
			out[tp] = id
			continue
		}
		if now.Sub(l.fetched[tp.topic]) >= l.minAge && !slices.Contains(missing, tp.topic) {
			missing = append(missing, tp.topic)
		}
	}
	l.mu.Unlock()
	if len(missing) == 0 {
		return out, nil
	}
	req := kmsg.NewPtrMetadataRequest()
	for _, t := range missing {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(t)
		req.Topics = append(req.Topics, rt)
	}
	resp, err := req.RequestWith(ctx, l.cl)
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, t := range missing {
		l.fetched[t] = now
	}
	if err != nil {
		return out, err
	}
	for _, t := range resp.Topics {
		if t.Topic == nil {
			continue
		}
		if err := kerr.ErrorForCode(t.ErrorCode); err != nil {
			l.errs[*t.Topic] = err
			continue
		}
		delete(l.errs, *t.Topic)
		for _, p := range t.Partitions {
			tp := topicPartition{*t.Topic, p.Partition}
			if kerr.ErrorForCode(p.ErrorCode) == nil && p.Leader >= 0 {
				l.m[tp] = p.Leader
			} else {
				delete(l.m, tp)
			}
		}
	}
	for _, tp := range tps {
		if id, ok := l.m[tp]; ok {
			out[tp] = id
		}
	}
	return out, nil
}

// why says why tp has no leader: its topic's error in the last metadata
// answer, or LEADER_NOT_AVAILABLE.
func (l *leaders) why(tp topicPartition) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.errs[tp.topic]; err != nil {
		return fmt.Errorf("%s: %w", tp.topic, err)
	}
	return fmt.Errorf("%s/%d: %w", tp.topic, tp.partition, kerr.LeaderNotAvailable)
}

// forget drops a partition's leader after the broker said it is not (or
// the request failed), so the next lookup asks again.
func (l *leaders) forget(tp topicPartition) {
	l.mu.Lock()
	delete(l.m, tp)
	l.mu.Unlock()
}

// forgetBroker drops every partition led by id.
func (l *leaders) forgetBroker(id int32) {
	l.mu.Lock()
	for tp, b := range l.m {
		if b == id {
			delete(l.m, tp)
		}
	}
	l.mu.Unlock()
}

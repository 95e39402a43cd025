package replica

import (
	"slices"
	"sync"
	"time"
)

// Leader is the leader-side state of one partition: where each follower's
// log ends, when it was last caught up, the ISR as the controller committed
// it, and the high watermark derived from them. Safe for concurrent use.
type Leader struct {
	self int32

	mu         sync.Mutex
	replicas   []int32
	isr        []int32 // committed
	followers  map[int32]*follower
	hw         int64
	epochStart int64 // log end offset when this leadership began
	changed    chan struct{}
}

type follower struct {
	leo          int64
	lastFetch    time.Time
	leoAtFetch   int64     // the leader's log end offset at lastFetch
	lastCaughtUp time.Time // last time the follower had everything the leader had
}

// NewLeader starts leadership of a partition whose local log ends at leo
// and whose known high watermark is hw. Followers start as caught up "now":
// a new leader gives each a full replica.lag.time.max.ms before proposing to
// drop it, as Kafka does.
func NewLeader(self int32, replicas, isr []int32, hw, leo int64, now time.Time) *Leader {
	l := &Leader{self: self, followers: map[int32]*follower{}, hw: min(hw, leo), epochStart: leo, changed: make(chan struct{})}
	l.setMembers(replicas, isr, now)
	l.advance(leo)
	return l
}

// SetMembers applies a committed replica set and ISR.
func (l *Leader) SetMembers(replicas, isr []int32, leo int64, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.setMembers(replicas, isr, now)
	if !l.advance(leo) {
		l.notify(true) // an ISR change wakes acks=all waiters too
	}
}

func (l *Leader) setMembers(replicas, isr []int32, now time.Time) {
	l.replicas, l.isr = slices.Clone(replicas), slices.Clone(isr)
	for _, r := range replicas {
		if r == l.self {
			continue
		}
		if _, ok := l.followers[r]; !ok {
			l.followers[r] = &follower{leo: -1, lastCaughtUp: now}
		}
	}
	for id := range l.followers {
		if !slices.Contains(replicas, id) {
			delete(l.followers, id)
		}
	}
}

// ISR returns the committed ISR.
func (l *Leader) ISR() []int32 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.isr)
}

// HighWatermark is the offset below which every ISR member has the log.
func (l *Leader) HighWatermark() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.hw
}

// Changed returns a channel closed at the next high watermark or ISR change.
func (l *Leader) Changed() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.changed
}

// Appended is called after a local append; with the leader alone in the ISR
// it moves the high watermark. It reports whether the high watermark moved.
func (l *Leader) Appended(leo int64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.advance(leo)
}

// FollowerFetched records a follower's fetch at fetchOffset while the
// leader's log ended at leo. It reports whether the high watermark moved and
// whether the follower is out of the ISR but now eligible to join it.
func (l *Leader) FollowerFetched(id int32, fetchOffset, leo int64, now time.Time) (hwMoved, eligible bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f, ok := l.followers[id]
	if !ok {
		return false, false
	}
	// Caught up: the follower has everything the leader had at this fetch,
	// or everything it had at the previous fetch (what Kafka calls the
	// last caught-up time).
	switch {
	case fetchOffset >= leo:
		f.lastCaughtUp = now
	case fetchOffset >= f.leoAtFetch && !f.lastFetch.IsZero():
		f.lastCaughtUp = f.lastFetch
	}
	f.leo, f.lastFetch, f.leoAtFetch = fetchOffset, now, leo
	hwMoved = l.advance(leo)
	eligible = !slices.Contains(l.isr, id) && fetchOffset >= l.hw && fetchOffset >= l.epochStart
	return hwMoved, eligible
}

// Lagging returns the ISR followers that have not been caught up within
// maxLag: candidates to shrink the ISR.
func (l *Leader) Lagging(now time.Time, maxLag time.Duration) []int32 {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []int32
	for _, id := range l.isr {
		if f, ok := l.followers[id]; ok && now.Sub(f.lastCaughtUp) > maxLag {
			out = append(out, id)
		}
	}
	return out
}

// advance recomputes the high watermark as the minimum log end offset over
// the ISR. It never moves backwards: a follower that fell behind is removed
// from the ISR rather than pulling the watermark down. l.mu must be held.
func (l *Leader) advance(leo int64) bool {
	hw := leo
	for _, id := range l.isr {
		if id == l.self {
			continue
		}
		f, ok := l.followers[id]
		if !ok || f.leo < 0 {
			return l.notify(false)
		}
		hw = min(hw, f.leo)
	}
	if hw <= l.hw {
		return l.notify(false)
	}
	l.hw = hw
	return l.notify(true)
}

func (l *Leader) notify(moved bool) bool {
	if moved {
		close(l.changed)
		l.changed = make(chan struct{})
	}
	return moved
}

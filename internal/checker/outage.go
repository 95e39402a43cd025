package checker

import "time"

// outageClock measures client-observed unavailability: the time during
// which records were pending and none was acknowledged. A wait starts when
// a record is produced while none is pending, or at the latest
// acknowledgement; it ends at the next acknowledgement, or when the last
// pending record fails. Not safe for concurrent use; the caller locks.
type outageClock struct {
	threshold time.Duration // shortest gap counted in total and outages

	pending int
	since   time.Time // start of the current wait, while pending > 0

	max, total time.Duration
	outages    int
}

// produced notes a record handed to the client.
func (o *outageClock) produced(now time.Time) {
	if o.pending == 0 {
		o.since = now
	}
	o.pending++
}

// acked notes an acknowledgement and returns the wait it ended.
func (o *outageClock) acked(now time.Time) time.Duration {
	d := o.end(now)
	o.since = now
	o.pending--
	return d
}

// failed notes a record that failed; it ends the wait only if no record is
// pending any more, and then returns the wait.
func (o *outageClock) failed(now time.Time) time.Duration {
	o.pending--
	if o.pending > 0 {
		return 0
	}
	return o.end(now)
}

func (o *outageClock) end(now time.Time) time.Duration {
	d := now.Sub(o.since)
	o.max = max(o.max, d)
	if d >= o.threshold {
		o.total += d
		o.outages++
	}
	return d
}

// current is how long the client has waited for an acknowledgement so far.
func (o *outageClock) current(now time.Time) time.Duration {
	if o.pending == 0 {
		return 0
	}
	return now.Sub(o.since)
}

package drill

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"time"

	"github.com/kdr-io/kdr/failover/store"
	"github.com/kdr-io/kdr/internal/checker"
)

// Report is report.json. Keys are snake_case and only ever added.
type Report struct {
	Scenario    string    `json:"scenario"`
	Description string    `json:"description,omitempty"`
	Topology    string    `json:"topology"`
	StateDir    string    `json:"state_dir"`
	StartedAt   time.Time `json:"started_at"`
	FinishedAt  time.Time `json:"finished_at"`
	// Passed: every step succeeded and every verify threshold held.
	Passed   bool     `json:"passed"`
	Failures []string `json:"failures,omitempty"`
	// ActiveAtEnd is the cluster the final audit read.
	ActiveAtEnd string `json:"active_at_end"`

	Produced int64 `json:"produced"`
	Acked    int64 `json:"acked"`
	Failed   int64 `json:"failed"`
	Consumed int64 `json:"consumed"` // deliveries to the group, repeats included

	Lost         int64 `json:"lost"`
	Duplicated   int64 `json:"duplicated"`
	Redeliveries int64 `json:"redeliveries"`
	Reordered    int64 `json:"reordered"`
	Undelivered  int64 `json:"undelivered"`
	Unexpected   int64 `json:"unexpected"`

	RTOSeconds         float64 `json:"rto_seconds"` // the larger of the two below
	ProducerRTOSeconds float64 `json:"producer_rto_seconds"`
	ConsumerRTOSeconds float64 `json:"consumer_rto_seconds"`
	RPORecords         int64   `json:"rpo_records"`
	RPOSeconds         float64 `json:"rpo_seconds"`

	// Unreplicated are the records the old primary of a promote had
	// acknowledged beyond Result.LastReceived, read once it came back.
	// UnreplicatedRead says whether they were read (a promote's old
	// primary was restarted); when not, they are 0 and empty.
	Unreplicated     int64    `json:"unreplicated_records"`
	UnreplicatedIDs  []string `json:"unreplicated_ids"`
	UnreplicatedRead bool     `json:"unreplicated_read"`

	LostRecords       []RecordRef `json:"lost_records"`
	DuplicatedRecords []RecordRef `json:"duplicated_records"`
	UndeliveredIDs    []string    `json:"undelivered_ids"`
	ReorderExamples   []string    `json:"reorder_examples"`
	ProducerErrors    []string    `json:"producer_errors,omitempty"`

	Verify    *Verify           `json:"verify,omitempty"`
	Steps     []StepReport      `json:"steps"`
	Failovers []FailoverSummary `json:"failovers"`
	Repoints  []RepointReport   `json:"repoints"`
	Timeline  []Sample          `json:"timeline"`
	Events    []Event           `json:"events"`
}

// MarshalJSON writes the report with its documented lists as [] when they
// are empty, never null, so that a consumer of report.json finds every key
// with its type whatever the drill's outcome.
func (rep Report) MarshalJSON() ([]byte, error) {
	type plain Report // without this method
	p := plain(rep)
	for _, l := range []*[]string{&p.UnreplicatedIDs, &p.UndeliveredIDs, &p.ReorderExamples} {
		if *l == nil {
			*l = []string{}
		}
	}
	for _, l := range []*[]RecordRef{&p.LostRecords, &p.DuplicatedRecords} {
		if *l == nil {
			*l = []RecordRef{}
		}
	}
	return json.Marshal(p)
}

// RecordRef is one record of the workload in a report table.
type RecordRef struct {
	ID        string    `json:"id"`
	Key       string    `json:"key"`
	Seq       int64     `json:"seq"`
	Cluster   string    `json:"cluster"` // where it was produced
	Sent      time.Time `json:"sent"`
	Delivered int       `json:"delivered"` // times the group got it
}

// StepReport is one step's outcome.
type StepReport struct {
	Index       int       `json:"index"`
	Action      string    `json:"action"`
	Description string    `json:"description"`
	Started     time.Time `json:"started"`
	Finished    time.Time `json:"finished"`
	Seconds     float64   `json:"seconds"`
	OK          bool      `json:"ok"`
	Message     string    `json:"message,omitempty"`
}

// FailoverSummary is one orchestrator operation.
type FailoverSummary struct {
	ID           string                     `json:"id,omitempty"`
	Kind         string                     `json:"kind"`
	From         string                     `json:"from,omitempty"`
	To           string                     `json:"to"`
	Epoch        int64                      `json:"epoch,omitempty"`
	Started      time.Time                  `json:"started"`
	Finished     time.Time                  `json:"finished"`
	Seconds      float64                    `json:"seconds"`
	Error        string                     `json:"error,omitempty"`
	LastReceived map[string]map[int32]int64 `json:"last_received,omitempty"`
	Diverged     int                        `json:"diverged,omitempty"`
	DivergedIDs  []string                   `json:"diverged_ids,omitempty"`
}

// RepointReport is one client repoint.
type RepointReport struct {
	Role            string  `json:"role"`
	From            string  `json:"from"`
	To              string  `json:"to"`
	At              float64 `json:"at"` // seconds since the drill started
	Seconds         float64 `json:"seconds"`
	OffsetsTimedOut bool    `json:"offsets_timed_out,omitempty"`
}

// Sample is one point of the timeline (cumulative counts).
type Sample struct {
	T        float64 `json:"t"` // seconds since the drill started
	Produced int64   `json:"produced"`
	Acked    int64   `json:"acked"`
	Failed   int64   `json:"failed"`
	Consumed int64   `json:"consumed"`
	Errors   int64   `json:"errors"`
	Lag      int64   `json:"mirror_lag"` // -1 unknown
	Active   string  `json:"active"`
}

// Event is a marker on the timeline.
type Event struct {
	T     float64 `json:"t"`
	Kind  string  `json:"kind"` // fault, heal, failover, repoint, step
	Label string  `json:"label"`
}

// Summary is what the drill writes to State.LastDrill.
type Summary struct {
	Scenario   string    `json:"scenario"`
	Passed     bool      `json:"passed"`
	Lost       int64     `json:"lost"`
	Duplicated int64     `json:"duplicated"`
	Reordered  int64     `json:"reordered"`
	RTOSeconds float64   `json:"rto_seconds"`
	RPORecords int64     `json:"rpo_records"`
	RPOSeconds float64   `json:"rpo_seconds"`
	FinishedAt time.Time `json:"finished_at"`
	Report     string    `json:"report,omitempty"`
}

// finish stops the workload, audits the active cluster, checks and judges.
func (r *runner) finish(ctx context.Context, v *Verify, stepFailed bool) *Report {
	rep := &Report{Scenario: r.sc.Name, Description: r.sc.Description, Topology: r.topo.Metadata.Name,
		StateDir: r.opts.StateDir, StartedAt: r.start, Verify: v}
	if err := r.waitBackground(ctx, 5*time.Minute); err != nil {
		rep.Failures = append(rep.Failures, "background failover: "+err.Error())
	}
	r.load.stopProducing(30 * time.Second)
	active := r.cl.Active()
	rep.ActiveAtEnd = active
	r.printf("final audit: reading %s on %s", r.sc.Load.Topic, active)
	actx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	recs, err := readLog(actx, r.cl, active, r.sc.Load.Topic, nil)
	cancel()
	if err != nil {
		rep.Failures = append(rep.Failures, "final audit: "+err.Error())
	}
	retained := make(map[string]bool, len(recs))
	for _, rec := range recs {
		retained[rec.ID] = true
	}
	if r.load.cons != nil {
		dctx, cancel := context.WithTimeout(ctx, time.Minute)
		r.load.waitDelivered(dctx, retained)
		cancel()
	}
	r.load.stopConsuming()
	produced, deliveries := r.load.snapshot()
	checker.SortDeliveries(deliveries)
	g := checker.CheckGroup(produced, deliveries, retained)
	rep.Produced, rep.Acked, rep.Failed, rep.Consumed = g.Produced, g.Acked, g.Failed, g.Delivered
	rep.Lost, rep.Duplicated, rep.Redeliveries, rep.Reordered = g.Lost, g.Duplicated, g.Redeliveries, g.Reordered
	rep.Undelivered, rep.Unexpected = g.Undelivered, g.Unexpected+r.load.unexpectedCount()
	rep.ReorderExamples, rep.UndeliveredIDs = g.ReorderExamples, g.UndeliveredIDs
	byID := map[string]checker.Produced{}
	for _, p := range produced {
		byID[p.ID] = p
	}
	times := map[string]int{}
	for _, d := range deliveries {
		times[d.ID]++
	}
	ref := func(id string) RecordRef {
		p := byID[id]
		return RecordRef{ID: id, Key: p.Key, Seq: p.Seq, Cluster: p.Cluster, Sent: p.Sent, Delivered: times[id]}
	}
	for _, id := range g.LostIDs {
		rep.LostRecords = append(rep.LostRecords, ref(id))
	}
	for _, id := range g.DuplicatedIDs {
		rep.DuplicatedRecords = append(rep.DuplicatedRecords, ref(id))
	}
	prto, crto := producerRTO(produced), consumerRTO(produced, deliveries)
	rep.ProducerRTOSeconds, rep.ConsumerRTOSeconds = prto.Seconds(), crto.Seconds()
	rep.RTOSeconds = max(rep.ProducerRTOSeconds, rep.ConsumerRTOSeconds)
	rep.RPORecords = g.Lost
	rep.RPOSeconds = rpoWindow(produced, g.LostIDs, retained).Seconds()
	r.mu.Lock()
	if r.unreplSet {
		rep.Unreplicated, rep.UnreplicatedIDs, rep.UnreplicatedRead = int64(len(r.unreplicated)), r.unreplicated, true
	}
	rep.Steps, rep.Failovers, rep.Repoints = r.steps, r.failovers, r.repoints
	r.mu.Unlock()
	rep.ProducerErrors = r.load.errorSamples()
	if stepFailed {
		for _, s := range rep.Steps {
			if !s.OK {
				rep.Failures = append(rep.Failures, fmt.Sprintf("step %d %s failed: %s", s.Index+1, s.Action, s.Message))
			}
		}
	}
	if v != nil {
		rep.Failures = append(rep.Failures, v.check(rep)...)
	}
	rep.Passed = len(rep.Failures) == 0
	rep.FinishedAt = time.Now()
	r.printf("result: %s", rep.Line())
	for _, f := range rep.Failures {
		r.printf("  FAILED: %s", f)
	}
	return rep
}

// Line is the report in one line.
func (rep *Report) Line() string {
	verdict := "PASSED"
	if !rep.Passed {
		verdict = "FAILED"
	}
	return fmt.Sprintf("%s produced=%d acked=%d failed=%d consumed=%d lost=%d duplicated=%d reordered=%d undelivered=%d producer_rto=%.2fs consumer_rto=%.2fs rpo=%d records/%.2fs",
		verdict, rep.Produced, rep.Acked, rep.Failed, rep.Consumed, rep.Lost, rep.Duplicated, rep.Reordered, rep.Undelivered,
		rep.ProducerRTOSeconds, rep.ConsumerRTOSeconds, rep.RPORecords, rep.RPOSeconds)
}

// check returns the thresholds rep exceeds.
func (v Verify) check(rep *Report) []string {
	var out []string
	count := func(name string, max *int64, got int64) {
		if max != nil && got > *max {
			out = append(out, fmt.Sprintf("%s %d > %s %d", name, got, "max", *max))
		}
	}
	count("lost", v.MaxLost, rep.Lost)
	count("duplicated", v.MaxDuplicated, rep.Duplicated)
	count("reordered", v.MaxReordered, rep.Reordered)
	count("undelivered", v.MaxUndelivered, rep.Undelivered)
	count("rpo_records", v.MaxRPORecords, rep.RPORecords)
	dur := func(name string, max time.Duration, got float64) {
		if max > 0 && got > max.Seconds() {
			out = append(out, fmt.Sprintf("%s %.2fs > max %s", name, got, max))
		}
	}
	dur("rpo_seconds", v.MaxRPO, rep.RPOSeconds)
	dur("producer_rto_seconds", v.MaxRTO, rep.ProducerRTOSeconds)
	dur("consumer_rto_seconds", v.MaxRTO, rep.ConsumerRTOSeconds)
	dur("producer_rto_seconds", v.MaxProducerRTO, rep.ProducerRTOSeconds)
	dur("consumer_rto_seconds", v.MaxConsumerRTO, rep.ConsumerRTOSeconds)
	return out
}

// producerRTO is the longest time the producer waited for an
// acknowledgement while it had records pending: the largest gap between
// consecutive acknowledgements (the load is continuous), the wait for the
// first one, and the wait ended by the last failures after the last one.
func producerRTO(produced []checker.Produced) time.Duration {
	var acks []time.Time
	var firstSent time.Time
	for _, p := range produced {
		if firstSent.IsZero() || p.Sent.Before(firstSent) {
			firstSent = p.Sent
		}
		if p.Acked {
			acks = append(acks, p.Done)
		}
	}
	if len(acks) == 0 {
		return 0
	}
	slices.SortFunc(acks, func(a, b time.Time) int { return a.Compare(b) })
	rto := acks[0].Sub(firstSent)
	for i := 1; i < len(acks); i++ {
		rto = max(rto, acks[i].Sub(acks[i-1]))
	}
	last := acks[len(acks)-1]
	for _, p := range produced {
		if !p.Acked && !p.Done.IsZero() && p.Sent.After(last) {
			rto = max(rto, p.Done.Sub(last))
		}
	}
	return rto
}

// consumerRTO is the longest time an acknowledged record waited for its
// first delivery while nothing at all was delivered: for each record, from
// the later of its acknowledgement and the previous delivery to its own.
// The wait for the group's very first join is not counted.
func consumerRTO(produced []checker.Produced, deliveries []checker.Delivery) time.Duration {
	if len(deliveries) == 0 {
		return 0
	}
	var times []time.Time
	first := map[string]time.Time{}
	for _, d := range deliveries {
		if len(times) == 0 || !d.At.Equal(times[len(times)-1]) {
			times = append(times, d.At)
		}
		if _, ok := first[d.ID]; !ok {
			first[d.ID] = d.At
		}
	}
	sort.Slice(times, func(i, j int) bool { return times[i].Before(times[j]) })
	var rto time.Duration
	for _, p := range produced {
		f, ok := first[p.ID]
		// Records acknowledged before the group's first delivery wait for
		// its first join: start-up, not unavailability.
		if !p.Acked || !ok || !f.After(p.Done) || p.Done.Before(times[0]) {
			continue
		}
		i := sort.Search(len(times), func(i int) bool { return !times[i].Before(f) })
		from := p.Done
		if i > 0 && times[i-1].After(from) {
			from = times[i-1]
		}
		rto = max(rto, f.Sub(from))
	}
	return rto
}

// rpoWindow is the produce-time span of the lost records: from the last
// retained acknowledged record sent before the first lost one (or the
// first lost one) to the last lost one.
func rpoWindow(produced []checker.Produced, lost []string, retained map[string]bool) time.Duration {
	if len(lost) == 0 {
		return 0
	}
	isLost := map[string]bool{}
	for _, id := range lost {
		isLost[id] = true
	}
	var first, last time.Time
	for _, p := range produced {
		if isLost[p.ID] {
			if first.IsZero() || p.Sent.Before(first) {
				first = p.Sent
			}
			if p.Sent.After(last) {
				last = p.Sent
			}
		}
	}
	from := first
	var prev time.Time
	for _, p := range produced {
		if p.Acked && retained[p.ID] && p.Sent.Before(first) && p.Sent.After(prev) {
			prev = p.Sent
		}
	}
	if !prev.IsZero() {
		from = prev
	}
	return last.Sub(from)
}

// write writes report.json and report.html and the LastDrill summary.
func (r *runner) write(ctx context.Context, rep *Report) error {
	if err := os.MkdirAll(r.opts.ReportDir, 0o755); err != nil {
		return err
	}
	jsonPath := filepath.Join(r.opts.ReportDir, "report.json")
	htmlPath := filepath.Join(r.opts.ReportDir, "report.html")
	var errs []error
	if err := writeJSON(jsonPath, rep); err != nil {
		errs = append(errs, err)
	}
	if f, err := os.Create(htmlPath); err != nil {
		errs = append(errs, err)
	} else {
		if err := WriteHTML(f, rep); err != nil {
			errs = append(errs, err)
		}
		if err := f.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	sum := Summary{Scenario: rep.Scenario, Passed: rep.Passed, Lost: rep.Lost, Duplicated: rep.Duplicated, Reordered: rep.Reordered,
		RTOSeconds: rep.RTOSeconds, RPORecords: rep.RPORecords, RPOSeconds: rep.RPOSeconds, FinishedAt: rep.FinishedAt, Report: jsonPath}
	if err := writeLastDrill(ctx, r.store, r.topo.Metadata.Name, sum); err != nil {
		errs = append(errs, fmt.Errorf("writing LastDrill: %w", err))
	}
	r.printf("report: %s and %s", jsonPath, htmlPath)
	return errors.Join(errs...)
}

// writeLastDrill stores sum as State.LastDrill, compare-and-swap, retrying
// conflicts.
func writeLastDrill(ctx context.Context, st store.Store, topo string, sum Summary) error {
	b, err := json.Marshal(sum)
	if err != nil {
		return err
	}
	for range 20 {
		v, err := st.Get(ctx)
		if err != nil {
			return err
		}
		s := v.State
		if s.Topology == "" {
			s.Topology = topo
		}
		s.LastDrill = b
		if _, err := st.CompareAndSwap(ctx, s, v.Version); err == nil {
			return nil
		} else if !errors.Is(err, store.ErrConflict) {
			return err
		}
	}
	return errors.New("the state kept changing; gave up after 20 conflicts")
}

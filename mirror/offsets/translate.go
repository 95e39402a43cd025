package offsets

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kdr-io/kdr/mirror/mm2"
	"github.com/kdr-io/kdr/mirror/naming"
)

// Translator translates consumer groups' committed offsets from a flow's
// source to its target. It is what `kdr mirror translate --group G` needs:
// a source client and a ready SyncStore, no target. Safe for concurrent use
// once built.
type Translator struct {
	SourceAlias string
	Policy      naming.Policy // nil: naming.Prefix{}
	Source      *kgo.Client
	Store       *SyncStore
	// Mirrored reports whether the flow mirrors a source topic; nil means
	// topics the Store has syncs for.
	Mirrored func(topic string) bool
}

// Untranslated is a committed offset that could not be translated.
type Untranslated struct {
	Group     string
	Topic     string // the source topic
	Partition int32
	Upstream  int64
	Status    Status
}

// TranslateError lists the committed offsets of a group that could not be
// translated; the ones that could are returned alongside it.
type TranslateError struct {
	Group  string
	Failed []Untranslated
}

func (e *TranslateError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "offsets: %d committed offset(s) of group %q could not be translated:", len(e.Failed), e.Group)
	for i, u := range e.Failed {
		if i == 5 {
			fmt.Fprintf(&b, " and %d more", len(e.Failed)-i)
			break
		}
		fmt.Fprintf(&b, " %s/%d at %d (%s)", u.Topic, u.Partition, u.Upstream, u.Status)
	}
	return b.String()
}

// TranslateGroup returns group's committed offsets translated to the
// target: target-side topic (renamed by Policy) → partition → offset.
// Topics the flow does not mirror are left out. If some offsets cannot be
// translated, the others are returned with a *TranslateError.
func (t Translator) TranslateGroup(ctx context.Context, group string) (map[string]map[int32]int64, error) {
	offs, err := kadm.NewClient(t.Source).FetchOffsets(ctx, group)
	if err != nil {
		return nil, fmt.Errorf("offsets: fetching committed offsets of group %q on %s: %w", group, t.SourceAlias, err)
	}
	var errs []error
	offs.Each(func(o kadm.OffsetResponse) {
		if o.Err != nil {
			errs = append(errs, fmt.Errorf("offsets: group %q %s/%d: %w", group, o.Topic, o.Partition, o.Err))
		}
	})
	cps, failed := t.checkpoints(group, offs)
	out := map[string]map[int32]int64{}
	for _, cp := range cps {
		if out[cp.Topic] == nil {
			out[cp.Topic] = map[int32]int64{}
		}
		out[cp.Topic][cp.Partition] = cp.DownstreamOffset
	}
	if len(failed) > 0 {
		errs = append(errs, &TranslateError{Group: group, Failed: failed})
	}
	return out, errors.Join(errs...)
}

// checkpoints turns a group's committed source offsets into checkpoints,
// sorted by topic and partition, and lists the ones that failed. Offsets of
// unmirrored topics, failed fetches and partitions without a committed
// offset are left out.
func (t Translator) checkpoints(group string, offs kadm.OffsetResponses) ([]mm2.Checkpoint, []Untranslated) {
	policy := t.Policy
	if policy == nil {
		policy = naming.Prefix{}
	}
	mirrored := t.Mirrored
	if mirrored == nil {
		mirrored = t.Store.HasTopic
	}
	var cps []mm2.Checkpoint
	var failed []Untranslated
	offs.Each(func(o kadm.OffsetResponse) {
		if o.Err != nil || o.At < 0 || !mirrored(o.Topic) {
			return
		}
		d, st := t.Store.Lookup(o.Topic, o.Partition, o.At)
		if st != Translated {
			failed = append(failed, Untranslated{Group: group, Topic: o.Topic, Partition: o.Partition, Upstream: o.At, Status: st})
			return
		}
		cp := mm2.Checkpoint{Group: group, Topic: policy.RemoteTopic(t.SourceAlias, o.Topic), Partition: o.Partition,
			UpstreamOffset: o.At, DownstreamOffset: d, Metadata: o.Metadata}
		if cp.Validate() != nil {
			cp.Metadata = "" // commit metadata too long for MM2's STRING; the offset is what matters
		}
		if cp.Validate() == nil {
			cps = append(cps, cp)
		}
	})
	slices.SortFunc(cps, func(a, b mm2.Checkpoint) int {
		return cmp.Or(cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
	})
	slices.SortFunc(failed, func(a, b Untranslated) int {
		return cmp.Or(cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
	})
	return cps, failed
}

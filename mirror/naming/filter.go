package naming

import (
	"fmt"
	"regexp"
	"strings"
)

// MM2's default topic and group filters (topics, topics.exclude, groups,
// groups.exclude), as comma-separated regex lists.
const (
	DefaultTopicsInclude = ".*"
	DefaultTopicsExclude = `.*[\-\.]internal, .*\.replica, __.*`
	DefaultGroupsInclude = ".*"
	DefaultGroupsExclude = `console-consumer-.*, connect-.*, __.*`
)

// Filter selects topic or consumer-group names: a name matches if some
// Include pattern matches all of it and no Exclude pattern does. An empty
// Include matches nothing, as a blank MM2 "topics" does. Patterns from
// ParsePatterns are anchored; a Regexp added by hand should be too.
type Filter struct {
	Include, Exclude []*regexp.Regexp
}

var (
	defaultTopicFilter = mustFilter(DefaultTopicsInclude, DefaultTopicsExclude)
	defaultGroupFilter = mustFilter(DefaultGroupsInclude, DefaultGroupsExclude)
)

func mustFilter(include, exclude string) Filter {
	f, err := NewFilter(include, exclude)
	if err != nil {
		panic(err) // only for the constant defaults; a test covers them
	}
	return f
}

// DefaultTopicFilter is MM2's default: every topic except those matching
// .*[\-\.]internal, .*\.replica or __.*.
func DefaultTopicFilter() Filter { return defaultTopicFilter.clone() }

// DefaultGroupFilter is MM2's default: every group except those matching
// console-consumer-.*, connect-.* or __.*.
func DefaultGroupFilter() Filter { return defaultGroupFilter.clone() }

// clone copies the slices so callers may append; the Regexps are immutable
// and safe to share.
func (f Filter) clone() Filter {
	return Filter{Include: append([]*regexp.Regexp(nil), f.Include...), Exclude: append([]*regexp.Regexp(nil), f.Exclude...)}
}

// NewFilter builds a Filter from MM2-style include and exclude lists (see
// ParsePatterns). An empty include list matches nothing; an empty exclude
// list excludes nothing.
func NewFilter(include, exclude string) (Filter, error) {
	in, err := ParsePatterns(include)
	if err != nil {
		return Filter{}, fmt.Errorf("naming: include list: %w", err)
	}
	ex, err := ParsePatterns(exclude)
	if err != nil {
		return Filter{}, fmt.Errorf("naming: exclude list: %w", err)
	}
	return Filter{Include: in, Exclude: ex}, nil
}

// PatternError reports a list entry that is not a valid regular expression.
type PatternError struct {
	Index   int    // 0-based position in the list
	Pattern string // the entry as written
	Err     error  // from regexp.Compile
}

func (e *PatternError) Error() string {
	return fmt.Sprintf("pattern %d %q: %v (patterns are RE2: no lookaround or backreferences)", e.Index, e.Pattern, e.Err)
}

func (e *PatternError) Unwrap() error { return e.Err }

// ParsePatterns parses a comma-separated list of regular expressions the way
// MM2 reads "topics" and "groups": the list is trimmed, split on commas with
// any surrounding whitespace, and each entry must match a whole name (MM2
// uses Java's Matcher.matches). So "orders" matches only "orders", and
// "orders.*" both "orders" and "orders-v2"; a plain name is still a regex
// ("a.b" matches "axb"). As in MM2, a comma always separates entries, so a
// quantifier such as {1,3} cannot be written. A blank list gives no patterns.
func ParsePatterns(list string) ([]*regexp.Regexp, error) {
	list = strings.TrimSpace(list)
	if list == "" {
		return nil, nil
	}
	entries := strings.Split(list, ",")
	out := make([]*regexp.Regexp, 0, len(entries))
	for i, e := range entries {
		e = strings.TrimSpace(e)
		// Compile the entry alone first: wrapping an unbalanced entry such
		// as "a)|(b" would yield a valid regex with the wrong anchoring.
		if _, err := regexp.Compile(e); err != nil {
			return nil, &PatternError{Index: i, Pattern: e, Err: err}
		}
		re := regexp.MustCompile(`^(?:` + e + `)$`)
		out = append(out, re)
	}
	return out, nil
}

// Match reports whether name is included and not excluded.
func (f Filter) Match(name string) bool {
	return matchAny(f.Include, name) && !matchAny(f.Exclude, name)
}

func matchAny(res []*regexp.Regexp, name string) bool {
	for _, re := range res {
		if re.MatchString(name) {
			return true
		}
	}
	return false
}

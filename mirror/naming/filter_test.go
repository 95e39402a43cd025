package naming

import (
	"errors"
	"regexp"
	"testing"
)

func TestNamingDefaultTopicFilter(t *testing.T) {
	f := DefaultTopicFilter()
	for name, want := range map[string]bool{
		"orders":                         true,
		"east.orders":                    true,
		"heartbeats":                     true,
		"internal":                       true,
		"orders.internal.v2":             true, // anchored: suffix rule only at the end
		"__consumer_offsets":             false,
		"__transaction_state":            false,
		"mm2-offset-syncs.west.internal": false,
		"east.checkpoints.internal":      false,
		"connect-status-internal":        false,
		"orders.replica":                 false,
		"orders-replica":                 true,
		"a_internal":                     true,
	} {
		if got := f.Match(name); got != want {
			t.Errorf("DefaultTopicFilter().Match(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestNamingDefaultGroupFilter(t *testing.T) {
	f := DefaultGroupFilter()
	for name, want := range map[string]bool{
		"payments":               true,
		"console-consumer-12345": false,
		"connect-mirror":         false,
		"__kdr":                  false,
		"my-console-consumer-1":  true, // anchored at the start too
		"my-connect-app":         true,
	} {
		if got := f.Match(name); got != want {
			t.Errorf("DefaultGroupFilter().Match(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestNamingDefaultFilterIsACopy(t *testing.T) {
	f := DefaultTopicFilter()
	f.Exclude = append(f.Exclude[:0], regexp.MustCompile(`^orders$`))
	if !DefaultTopicFilter().Match("orders") || DefaultTopicFilter().Match("__x") {
		t.Fatal("changing a returned filter changed the default")
	}
}

func TestNamingNewFilter(t *testing.T) {
	cases := []struct {
		include, exclude string
		name             string
		want             bool
	}{
		{"orders", "", "orders", true},
		{"orders", "", "orders2", false},
		{"orders", "", "my-orders", false},
		{"orders.*", "", "orders-v2", true},
		{"orders, payments", "", "payments", true},
		{" orders ,\tpayments ", "", "payments", true},
		{"a.b", "", "axb", true},  // a plain name is still a regex, as in MM2
		{"", "", "orders", false}, // blank include selects nothing
		{"   ", "", "orders", false},
		{".*", "", "", true},
		{".*", "secret.*", "secret-1", false},
		{".*", "secret.*", "public", true},
		{"a|b", "", "a", true},
		{"a|b", "", "ab", false},    // alternation is anchored as a whole
		{"orders,", "", "", true},   // an empty entry matches only the empty name
		{"x{1,3}", "", "xx", false}, // commas always split ("x{1" and "3}"), as in MM2
	}
	for _, tc := range cases {
		f, err := NewFilter(tc.include, tc.exclude)
		if err != nil {
			t.Fatalf("NewFilter(%q, %q): %v", tc.include, tc.exclude, err)
		}
		if got := f.Match(tc.name); got != tc.want {
			t.Errorf("NewFilter(%q, %q).Match(%q) = %v, want %v", tc.include, tc.exclude, tc.name, got, tc.want)
		}
	}
	if (Filter{}).Match("orders") {
		t.Error("zero Filter matched")
	}
}

func TestNamingNewFilterErrors(t *testing.T) {
	for _, tc := range []struct {
		include, exclude string
		index            int
		pattern          string
	}{
		{"ok, (?=x)", "", 1, "(?=x)"},
		{".*", "a)|(b", 0, "a)|(b"},
	} {
		_, err := NewFilter(tc.include, tc.exclude)
		var pe *PatternError
		if !errors.As(err, &pe) || pe.Index != tc.index || pe.Pattern != tc.pattern {
			t.Errorf("NewFilter(%q, %q) = %v; want PatternError at %d for %q", tc.include, tc.exclude, err, tc.index, tc.pattern)
		}
	}
}

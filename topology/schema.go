package topology

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// position is a 1-based line and column in the document.
type position struct{ line, col int }

// index locates every value of a parsed document by its YAML path
// ("clusters[1].local.basePort"). A nil *index (a topology built in code)
// knows no positions and no paths.
type index struct {
	at   map[string]position
	vals map[string]*yaml.Node
}

// has reports whether the document sets path (to anything but null).
func (x *index) has(path string) bool {
	if x == nil {
		return false
	}
	n, ok := x.vals[path]
	return ok && n.Tag != "!!null"
}

// pos is path's position, or if the document does not have it (a missing
// field) the nearest ancestor's: the mapping that should hold it.
func (x *index) pos(path string) position {
	if x == nil {
		return position{}
	}
	for {
		if p, ok := x.at[path]; ok {
			return p
		}
		if path == "" {
			return position{}
		}
		path = parentPath(path)
	}
}

// parentPath strips the last ".key" or "[i]" from path.
func parentPath(path string) string {
	i := strings.LastIndexAny(path, ".[")
	if i < 0 {
		return ""
	}
	return path[:i]
}

// joinPath appends key to path.
func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func indexPath(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }

var durationType = reflect.TypeFor[time.Duration]()

// schemaWalker checks a document's shape against the Go types, whose
// mapstructure tags are the keys, and indexes every value's position. It
// finds what decoding would trip on or silently drop: unknown keys, keys
// given twice, and values of the wrong type.
type schemaWalker struct {
	c   *checker
	idx *index
	// fatal counts problems after which decoding cannot be trusted (wrong
	// types, repeated keys); unknown keys are not fatal.
	fatal int
}

func (w *schemaWalker) typeError(path string, n *yaml.Node, problem, hint string) {
	w.fatal++
	w.c.addAt(position{n.Line, n.Column}, path, problem, hint)
}

// walk checks n, found at path, against t. at is where path's problems are
// reported: the key for a mapping or list value, the value itself for a
// scalar.
func (w *schemaWalker) walk(path string, n *yaml.Node, t reflect.Type, at position) {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if n.Kind == yaml.ScalarNode || at == (position{}) {
		at = position{n.Line, n.Column}
	}
	w.idx.at[path] = at
	w.idx.vals[path] = n
	if n.Tag == "!!null" {
		return // unset: the zero value, a default
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == durationType:
		if n.Kind != yaml.ScalarNode {
			w.typeError(path, n, "want a duration, got "+kindName(n), `write a Go duration such as "5s", "500ms" or "2m"`)
			return
		}
		if n.Tag == "!!int" || n.Tag == "!!float" {
			w.typeError(path, n, fmt.Sprintf("%s has no unit", n.Value), fmt.Sprintf(`write a unit, e.g. "%ss" or "%sms"`, n.Value, n.Value))
			return
		}
		if _, err := time.ParseDuration(n.Value); err != nil {
			w.typeError(path, n, fmt.Sprintf("%q is not a duration", n.Value), `write a Go duration such as "5s", "500ms", "2m" or "1h30m"`)
		}
	case t.Kind() == reflect.Struct:
		w.mapping(path, n, t)
	case t.Kind() == reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			w.typeError(path, n, "want a list, got "+kindName(n), "write a YAML list: [a, b] or one \"- item\" per line")
			return
		}
		for i, item := range n.Content {
			w.walk(indexPath(path, i), item, t.Elem(), position{})
		}
	case t.Kind() == reflect.String:
		if n.Kind != yaml.ScalarNode {
			w.typeError(path, n, "want a string, got "+kindName(n), "")
		}
	case t.Kind() == reflect.Bool:
		if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" {
			w.typeError(path, n, fmt.Sprintf("want true or false, got %s", describe(n)), "")
		}
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Int64:
		var v int64
		if n.Kind != yaml.ScalarNode || n.Tag != "!!int" || n.Decode(&v) != nil {
			w.typeError(path, n, fmt.Sprintf("want a whole number, got %s", describe(n)), "")
			return
		}
		if reflect.New(t).Elem().OverflowInt(v) {
			w.typeError(path, n, fmt.Sprintf("%d is out of range", v), "")
		}
	}
}

// mapping checks a mapping against struct type t.
func (w *schemaWalker) mapping(path string, n *yaml.Node, t reflect.Type) {
	if n.Kind != yaml.MappingNode {
		w.typeError(path, n, "want a mapping of keys to values, got "+kindName(n), "")
		return
	}
	fields := map[string]reflect.Type{}
	var known []string
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("mapstructure")
		if tag == "" || tag == "-" || !f.IsExported() {
			continue
		}
		fields[tag] = f.Type
		known = append(known, tag)
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Value == "<<" && k.Tag == "!!merge" { // YAML merge key: <<: *defaults
			for v.Kind == yaml.AliasNode && v.Alias != nil {
				v = v.Alias
			}
			if v.Kind == yaml.SequenceNode {
				for _, m := range v.Content {
					w.mapping(path, m, t)
				}
			} else {
				w.mapping(path, v, t)
			}
			continue
		}
		keyPath := joinPath(path, k.Value)
		if line, dup := seen[k.Value]; dup {
			w.typeError(keyPath, k, fmt.Sprintf("%q is given twice (first on line %d)", k.Value, line), "keep one of them")
			continue
		}
		seen[k.Value] = k.Line
		ft, ok := fields[k.Value]
		if !ok {
			hint := "known keys here: " + strings.Join(known, ", ")
			if s := didYouMean(k.Value, known); s != "" {
				hint = fmt.Sprintf("did you mean %q? (%s)", s, hint)
			}
			w.idx.at[keyPath] = position{k.Line, k.Column}
			w.c.addAt(position{k.Line, k.Column}, keyPath, fmt.Sprintf("unknown key %q", k.Value), hint)
			continue
		}
		w.walk(keyPath, v, ft, position{k.Line, k.Column})
	}
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	return describe(n)
}

func describe(n *yaml.Node) string {
	if n.Kind != yaml.ScalarNode {
		return kindName(n)
	}
	return strconv.Quote(n.Value)
}

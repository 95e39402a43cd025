// Package yamlschema checks a YAML document against the Go type it decodes
// into before decoding it, so that a file's every problem can be reported
// at once, each with its line and YAML path ("clusters[1].local.basePort")
// and a fix, instead of the decoder's first error in Go type names. The
// topology loader and the drill's scenario loader share it.
package yamlschema

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Position is a 1-based line and column in the document; zero when unknown.
type Position struct{ Line, Column int }

// Problem is one place where the document does not fit the type.
type Problem struct {
	Position
	// Field is the YAML path of the offending key or value.
	Field   string
	Problem string
	// Hint says what is accepted there; may be empty.
	Hint string
	// Fatal problems (values of the wrong type, keys given twice) make the
	// decoded value untrustworthy; an unknown key is not fatal, since
	// decoding just drops it.
	Fatal bool
}

// Index locates every value of a checked document by its YAML path. A nil
// *Index (a value built in code) knows no positions and no paths.
type Index struct {
	at   map[string]Position
	vals map[string]*yaml.Node
}

// Has reports whether the document sets path (to anything but null).
func (x *Index) Has(path string) bool {
	if x == nil {
		return false
	}
	n, ok := x.vals[path]
	return ok && n.Tag != "!!null"
}

// Written reports whether the document has path's key at all, even with
// nothing (null) under it.
func (x *Index) Written(path string) bool {
	if x == nil {
		return false
	}
	_, ok := x.vals[path]
	return ok
}

// Pos is path's position, or if the document does not have it (a missing
// field) the nearest ancestor's: the mapping that should hold it.
func (x *Index) Pos(path string) Position {
	if x == nil {
		return Position{}
	}
	for {
		if p, ok := x.at[path]; ok {
			return p
		}
		if path == "" {
			return Position{}
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

// JoinPath appends key to path.
func JoinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// IndexPath is the path of item i of the list at path.
func IndexPath(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }

var durationType = reflect.TypeFor[time.Duration]()

// Check walks root, the document's top node, against t, whose fields'
// struct tag named tag ("yaml", "mapstructure") gives the keys, and
// returns the index of every value and the problems: unknown keys (with
// the known ones, and the closest as "did you mean"), keys given twice,
// and values of the wrong type. A field tagged ",inline" or ",squash"
// contributes its own fields to the mapping; fields without a key are
// not part of the document.
func Check(root *yaml.Node, t reflect.Type, tag string) (*Index, []Problem) {
	w := &walker{tag: tag, idx: &Index{at: map[string]Position{}, vals: map[string]*yaml.Node{}}}
	w.walk("", root, t, Position{})
	return w.idx, w.problems
}

type walker struct {
	tag      string
	idx      *Index
	problems []Problem
}

func (w *walker) add(at Position, path, problem, hint string, fatal bool) {
	w.problems = append(w.problems, Problem{Position: at, Field: path, Problem: problem, Hint: hint, Fatal: fatal})
}

func (w *walker) typeError(path string, n *yaml.Node, problem, hint string) {
	w.add(Position{n.Line, n.Column}, path, problem, hint, true)
}

// walk checks n, found at path, against t. at is where path's problems are
// reported: the key for a mapping or list value, the value itself for a
// scalar.
func (w *walker) walk(path string, n *yaml.Node, t reflect.Type, at Position) {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if n.Kind == yaml.ScalarNode || at == (Position{}) {
		at = Position{n.Line, n.Column}
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
			w.walk(IndexPath(path, i), item, t.Elem(), Position{})
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
	case t.Kind() == reflect.Float32 || t.Kind() == reflect.Float64:
		if n.Kind != yaml.ScalarNode || (n.Tag != "!!int" && n.Tag != "!!float") {
			w.typeError(path, n, fmt.Sprintf("want a number, got %s", describe(n)), "")
		}
	}
}

// keys adds t's fields to fields and known, by their key; inlined structs
// add theirs.
func (w *walker) keys(t reflect.Type, fields map[string]reflect.Type, known *[]string) {
	for i := range t.NumField() {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get(w.tag), ",")
		if name == "" && f.Type.Kind() == reflect.Struct && (opts == "inline" || opts == "squash") {
			w.keys(f.Type, fields, known)
			continue
		}
		if name == "" || name == "-" || !f.IsExported() {
			continue
		}
		fields[name] = f.Type
		*known = append(*known, name)
	}
}

// mapping checks a mapping against struct type t.
func (w *walker) mapping(path string, n *yaml.Node, t reflect.Type) {
	if n.Kind != yaml.MappingNode {
		w.typeError(path, n, "want a mapping of keys to values, got "+kindName(n), "")
		return
	}
	fields := map[string]reflect.Type{}
	var known []string
	w.keys(t, fields, &known)
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
		keyPath := JoinPath(path, k.Value)
		if line, dup := seen[k.Value]; dup {
			w.typeError(keyPath, k, fmt.Sprintf("%q is given twice (first on line %d)", k.Value, line), "keep one of them")
			continue
		}
		seen[k.Value] = k.Line
		ft, ok := fields[k.Value]
		if !ok {
			hint := "known keys here: " + strings.Join(known, ", ")
			if s := DidYouMean(k.Value, known); s != "" {
				hint = fmt.Sprintf("did you mean %q? (%s)", s, hint)
			}
			at := Position{k.Line, k.Column}
			w.idx.at[keyPath] = at
			w.add(at, keyPath, fmt.Sprintf("unknown key %q", k.Value), hint, false)
			continue
		}
		w.walk(keyPath, v, ft, Position{k.Line, k.Column})
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

// DidYouMean returns the option closest to s, if it is close enough to be
// the intended one (same letters in another case, or a few typos), else "".
func DidYouMean(s string, options []string) string {
	best, bestDist := "", -1
	for _, o := range options {
		if strings.EqualFold(s, o) {
			return o
		}
		d := editDistance(strings.ToLower(s), strings.ToLower(o))
		if bestDist < 0 || d < bestDist {
			best, bestDist = o, d
		}
	}
	if bestDist >= 0 && bestDist <= max(1, min(len(s), len(best))/3) {
		return best
	}
	return ""
}

// editDistance is the optimal-string-alignment distance between a and b,
// in bytes: insertions, deletions, substitutions and swaps of neighbours
// ("wset" is one edit from "west").
func editDistance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}

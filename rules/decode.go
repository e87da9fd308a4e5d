package rules

import (
	"bytes"
	"errors"
	"io"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// decoder decodes a YAML node tree into Go values strictly: unknown and
// duplicate keys, wrong types and bad durations are problems, each with
// the file, line and field path where it occurs. Decoding goes on after a
// problem, so that one pass reports them all.
type decoder struct {
	*problems
	// lines holds the line of every field path that was present in the
	// file, for the checks that run after decoding.
	lines map[string]int
}

// decodeFile parses data as one YAML document and decodes it into the
// struct v points to. It returns the line of every field path present
// (the empty path is the document's top mapping), the problems found, and
// whether the YAML parsed at all: when it did not, only the syntax error
// is worth reporting.
func decodeFile(file string, data []byte, v any) (lines map[string]int, probs *problems, parsed bool) {
	d := &decoder{problems: &problems{file: file}, lines: map[string]int{}}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return d.lines, d.problems, true // an empty file: the required-field checks speak
		}
		d.addSyntax(err, data)
		return d.lines, d.problems, false
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		d.add(extra.Line, "", "a second YAML document starts here; the file must hold exactly one")
	} else if !errors.Is(err, io.EOF) {
		d.addSyntax(err, data)
		return d.lines, d.problems, false
	}
	root := &doc
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			return d.lines, d.problems, true
		}
		root = root.Content[0]
	}
	if isNull(root) {
		return d.lines, d.problems, true
	}
	d.decode(root, reflect.ValueOf(v).Elem(), "", 0)
	return d.lines, d.problems, true
}

// decode decodes n into v. keyLine is the line of the key n is the value
// of, or 0 for list items and the document root.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string, keyLine int) {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	line := n.Line
	if keyLine > 0 && (n.Kind == yaml.MappingNode || n.Kind == yaml.SequenceNode) {
		line = keyLine // a block mapping or list starts on the line after its key
	}
	d.lines[path] = line
	if isNull(n) {
		return // absent: the zero value, and later the default
	}
	switch {
	case v.Type() == reflect.TypeFor[Duration]():
		if n.Kind != yaml.ScalarNode {
			d.add(n.Line, path, "want a duration such as 90d, 12h or 250ms, got %s", describe(n))
			return
		}
		if n.Tag == "!!int" {
			d.add(n.Line, path, "duration %s has no unit; write e.g. %sd, %ss or %sms", n.Value, n.Value, n.Value, n.Value)
			return
		}
		dur, err := ParseDuration(n.Value)
		if err != nil {
			d.add(n.Line, path, "%v", err)
			return
		}
		v.Set(reflect.ValueOf(dur))
	case v.Type() == reflect.TypeFor[MemoryLimit]():
		if n.Kind != yaml.ScalarNode {
			d.add(n.Line, path, "want a size such as 512MiB, auto or none, got %s", describe(n))
			return
		}
		m, err := ParseMemoryLimit(n.Value)
		if err != nil {
			d.add(n.Line, path, "%v", err)
			return
		}
		v.Set(reflect.ValueOf(m))
	case v.Kind() == reflect.String:
		if n.Kind != yaml.ScalarNode {
			d.add(n.Line, path, "want a string, got %s", describe(n))
			return
		}
		v.SetString(n.Value)
	case v.Kind() == reflect.Bool:
		var b bool
		if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" || n.Decode(&b) != nil {
			d.add(n.Line, path, "want true or false, got %s", describe(n))
			return
		}
		v.SetBool(b)
	case v.Kind() == reflect.Int:
		var i int
		if n.Kind != yaml.ScalarNode || n.Tag != "!!int" || n.Decode(&i) != nil {
			d.add(n.Line, path, "want a whole number, got %s", describe(n))
			return
		}
		v.SetInt(int64(i))
	case v.Kind() == reflect.Float64:
		// A whole number is a number too: rate: 1 is one a second.
		var f float64
		if n.Kind != yaml.ScalarNode || (n.Tag != "!!int" && n.Tag != "!!float") || n.Decode(&f) != nil ||
			math.IsInf(f, 0) || math.IsNaN(f) {
			d.add(n.Line, path, "want a number such as 1 or 0.5, got %s", describe(n))
			return
		}
		v.SetFloat(f)
	case v.Kind() == reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.add(n.Line, path, "want a list, got %s", describe(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, item := range n.Content {
			d.decode(item, s.Index(i), joinIndex(path, i), 0)
		}
		v.Set(s)
	case v.Kind() == reflect.Map:
		if n.Kind != yaml.MappingNode {
			d.add(n.Line, path, "want a mapping, got %s", describe(n))
			return
		}
		m := reflect.MakeMapWithSize(v.Type(), len(n.Content)/2)
		d.eachKey(n, path, func(k, val *yaml.Node) {
			fp := joinKey(path, k.Value)
			elem := reflect.New(v.Type().Elem()).Elem()
			d.decode(val, elem, fp, k.Line)
			m.SetMapIndex(reflect.ValueOf(k.Value), elem)
		})
		v.Set(m)
	case v.Kind() == reflect.Pointer && v.Type().Elem().Kind() == reflect.Struct:
		// An optional section (sources[i].kafka): set when written.
		e := reflect.New(v.Type().Elem())
		d.decode(n, e.Elem(), path, keyLine)
		v.Set(e)
	case v.Kind() == reflect.Struct:
		if n.Kind != yaml.MappingNode {
			d.add(n.Line, path, "want a mapping, got %s", describe(n))
			return
		}
		d.decodeStruct(n, v, path)
	default:
		// Only reachable when a field of an unsupported type is added to
		// the configuration types without teaching the decoder about it.
		d.add(n.Line, path, "cannot decode into %s", v.Type())
	}
}

// decodeStruct decodes the mapping n into the struct v, field by field
// through the yaml tags. An int field named Line tagged yaml:"-" gets the
// line of the mapping; the keys of a struct field tagged ",inline" are
// keys of v itself.
func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	fields := map[string][]int{}
	var known []string
	var collect func(t reflect.Type, at []int)
	collect = func(t reflect.Type, at []int) {
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			idx := append(slices.Clone(at), i)
			name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			switch {
			case name == "-":
				if f.Name == "Line" && f.Type.Kind() == reflect.Int {
					v.FieldByIndex(idx).SetInt(int64(n.Line))
				}
			case opts == "inline" && f.Type.Kind() == reflect.Struct:
				collect(f.Type, idx)
			case name != "":
				fields[name] = idx
				known = append(known, name)
			}
		}
	}
	collect(v.Type(), nil)
	d.eachKey(n, path, func(k, val *yaml.Node) {
		fp := joinField(path, k.Value)
		idx, ok := fields[k.Value]
		if !ok {
			d.add(k.Line, fp, "%s", unknownKey(k.Value, known))
			return
		}
		d.decode(val, v.FieldByIndex(idx), fp, k.Line)
	})
}

// eachKey calls fn for every key of the mapping n that is a scalar and
// not a repeat of an earlier key; the others are problems.
func (d *decoder) eachKey(n *yaml.Node, path string, fn func(k, v *yaml.Node)) {
	seen := make(map[string]int, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.add(k.Line, path, "a key must be a plain string, got %s", describe(k))
			continue
		}
		if first, dup := seen[k.Value]; dup {
			d.add(k.Line, joinKey(path, k.Value), "duplicate key %q (first at line %d)", k.Value, first)
			continue
		}
		seen[k.Value] = k.Line
		fn(k, v)
	}
}

func isNull(n *yaml.Node) bool {
	return n.Kind == 0 || n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

// describe names what a node holds, for "want X, got Y" messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return strconv.Quote(n.Value)
	}
	return "nothing"
}

// Closest returns the word of known nearest to word, when one is within
// two edits of it: the "did you mean" of every unknown name, in the
// configuration and on the command line.
func Closest(word string, known []string) (string, bool) {
	best, bestDist := "", 3
	for _, k := range known {
		if dist := editDistance(word, k); dist < bestDist {
			best, bestDist = k, dist
		}
	}
	return best, best != ""
}

// Unknown says that word is not one of known (a kind, a state, a
// command): the nearest when one is close, else all of them.
func Unknown(what, word string, known []string) string {
	if best, ok := Closest(word, known); ok {
		return "unknown " + what + " " + strconv.Quote(word) + "; did you mean " + strconv.Quote(best) + "?"
	}
	return "unknown " + what + " " + strconv.Quote(word) + "; use " + strings.Join(known, ", ")
}

// unknownKey says what is wrong with an unknown key and what would be
// right: the nearest known key when one is close, else all of them.
func unknownKey(key string, known []string) string {
	best, ok := Closest(key, known)
	if ok {
		return "unknown key " + strconv.Quote(key) + "; did you mean " + strconv.Quote(best) + "?"
	}
	sorted := slices.Sorted(slices.Values(known))
	return "unknown key " + strconv.Quote(key) + "; known keys: " + strings.Join(sorted, ", ")
}

// editDistance is the Levenshtein distance between a and b in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// joinField appends a struct field name to a field path.
func joinField(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// joinKey appends a map key to a field path: as a field when it is a
// plain word (clients.lab-app), else quoted in brackets
// (scopes["patient/*.read"]) so the path stays unambiguous.
func joinKey(path, key string) string {
	plain := key != ""
	for _, c := range key {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			plain = false
			break
		}
	}
	if plain {
		return joinField(path, key)
	}
	return path + "[" + strconv.Quote(key) + "]"
}

// joinIndex appends a list index to a field path.
func joinIndex(path string, i int) string {
	return path + "[" + strconv.Itoa(i) + "]"
}

package ingest

import (
	"bytes"
	"encoding/binary"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// This file holds a small JSON scanner for the per-line path. It walks one
// document once, validates its syntax (the grammar of RFC 8259, with the
// same nesting limit as encoding/json and, like encoding/json's Valid, no
// UTF-8 check), skips what nobody asked for and records where the values of
// a precompiled set of paths are. Strings are unescaped only when a caller
// asks for one, into a buffer it reuses. Nothing here allocates on success.

// maxJSONDepth is encoding/json's nesting limit, kept equal so that the
// scanner and encoding/json agree on which documents are valid.
const maxJSONDepth = 10000

// jsonKind is the type of a captured JSON value.
type jsonKind uint8

const (
	jsonAbsent jsonKind = iota
	jsonString
	jsonNumber
	jsonTrue
	jsonFalse
	jsonNull
	jsonObject
	jsonArray
)

// jsonValue is a captured value. For strings raw holds the bytes between
// the quotes, still escaped when esc is set; for other kinds it holds the
// value's text, brackets included.
type jsonValue struct {
	raw  []byte
	kind jsonKind
	esc  bool
}

// present reports whether the value was seen and is not null.
func (v jsonValue) present() bool { return v.kind != jsonAbsent && v.kind != jsonNull }

// jsonPaths is a compiled set of paths: a trie of object keys whose leaves
// name slots in the capture array.
type jsonPaths struct {
	nodes []jsonNode // nodes[0] is the root
	slots int
}

type jsonNode struct {
	name     string
	children []int32
	slot     int32 // -1 when no value is captured here
}

func newJSONPaths() *jsonPaths {
	return &jsonPaths{nodes: []jsonNode{{slot: -1}}}
}

// add registers a path given as its keys and returns its slot. Adding the
// same keys twice returns the same slot.
func (p *jsonPaths) add(keys ...string) int {
	n := 0
	for _, k := range keys {
		n = p.child(n, k)
	}
	if p.nodes[n].slot < 0 {
		p.nodes[n].slot = int32(p.slots)
		p.slots++
	}
	return int(p.nodes[n].slot)
}

// addSlot registers keys as another spelling of an existing slot.
func (p *jsonPaths) addSlot(slot int, keys ...string) {
	n := 0
	for _, k := range keys {
		n = p.child(n, k)
	}
	p.nodes[n].slot = int32(slot)
}

// addDotted registers a dotted path (a.b.c). Because some writers put dots
// in key names ("log.logger"), every way of cutting the path into keys is
// registered for the same slot, for paths of up to six keys.
func (p *jsonPaths) addDotted(path string) int {
	parts := strings.Split(path, ".")
	slot := p.add(parts...)
	if len(parts) > 6 {
		return slot
	}
	// Each bit of mask says whether the dot after parts[i] splits.
	full := 1<<(len(parts)-1) - 1
	for mask := 0; mask < full; mask++ {
		var keys []string
		start := 0
		for i := 0; i < len(parts)-1; i++ {
			if mask&(1<<i) != 0 {
				keys = append(keys, strings.Join(parts[start:i+1], "."))
				start = i + 1
			}
		}
		keys = append(keys, strings.Join(parts[start:], "."))
		p.addSlot(slot, keys...)
	}
	return slot
}

func (p *jsonPaths) child(n int, name string) int {
	for _, c := range p.nodes[n].children {
		if p.nodes[c].name == name {
			return int(c)
		}
	}
	p.nodes = append(p.nodes, jsonNode{name: name, slot: -1})
	c := len(p.nodes) - 1
	p.nodes[n].children = append(p.nodes[n].children, int32(c))
	return c
}

// jsonSyntaxError says where a document stopped being valid JSON.
type jsonSyntaxError struct {
	Offset int
	Msg    string
}

func (e *jsonSyntaxError) Error() string {
	return "invalid JSON at byte " + strconv.Itoa(e.Offset) + ": " + e.Msg
}

// jsonScanner scans documents against one jsonPaths. It is not safe for
// concurrent use; each parser owns one.
type jsonScanner struct {
	paths *jsonPaths
	vals  []jsonValue
	data  []byte
	i     int
	depth int
	key   []byte // scratch for keys that contain escapes
}

func newJSONScanner(p *jsonPaths) jsonScanner {
	return jsonScanner{paths: p, vals: make([]jsonValue, p.slots)}
}

// scan validates data as one JSON document and captures the registered
// paths when it is an object. It returns the kind of the top-level value.
func (s *jsonScanner) scan(data []byte) (jsonKind, error) {
	s.begin(data)
	s.ws()
	if s.i >= len(s.data) {
		return jsonAbsent, s.fail("empty document")
	}
	k := s.peekKind()
	if err := s.value(0); err != nil {
		return jsonAbsent, err
	}
	s.ws()
	if s.i != len(s.data) {
		return jsonAbsent, s.fail("data after the top-level value")
	}
	return k, nil
}

// begin prepares to scan data and forgets earlier captures.
func (s *jsonScanner) begin(data []byte) {
	s.data, s.i, s.depth = data, 0, 0
	clear(s.vals)
}

func (s *jsonScanner) fail(msg string) error {
	return &jsonSyntaxError{Offset: s.i, Msg: msg}
}

func (s *jsonScanner) ws() {
	for s.i < len(s.data) {
		switch s.data[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *jsonScanner) peekKind() jsonKind {
	if s.i >= len(s.data) {
		return jsonAbsent
	}
	switch c := s.data[s.i]; c {
	case '{':
		return jsonObject
	case '[':
		return jsonArray
	case '"':
		return jsonString
	case 't':
		return jsonTrue
	case 'f':
		return jsonFalse
	case 'n':
		return jsonNull
	default:
		if c == '-' || (c >= '0' && c <= '9') {
			return jsonNumber
		}
	}
	return jsonAbsent
}

// value scans the value at s.i. node is the trie node the value sits at,
// or -1 when nothing below it is wanted.
func (s *jsonScanner) value(node int) error {
	if s.i >= len(s.data) {
		return s.fail("unexpected end of input")
	}
	start := s.i
	var (
		kind jsonKind
		esc  bool
		err  error
	)
	switch c := s.data[s.i]; c {
	case '{':
		kind, err = jsonObject, s.object(node)
	case '[':
		kind, err = jsonArray, s.array()
	case '"':
		kind = jsonString
		esc, err = s.str()
	case 't':
		kind, err = jsonTrue, s.literal("true")
	case 'f':
		kind, err = jsonFalse, s.literal("false")
	case 'n':
		kind, err = jsonNull, s.literal("null")
	default:
		kind, err = jsonNumber, s.number()
	}
	if err != nil {
		return err
	}
	if node >= 0 {
		if slot := s.paths.nodes[node].slot; slot >= 0 {
			raw := s.data[start:s.i]
			if kind == jsonString {
				raw = raw[1 : len(raw)-1]
			}
			s.vals[slot] = jsonValue{raw: raw, kind: kind, esc: esc}
		}
	}
	return nil
}

func (s *jsonScanner) literal(lit string) error {
	if len(s.data)-s.i < len(lit) || string(s.data[s.i:s.i+len(lit)]) != lit {
		return s.fail("invalid literal")
	}
	s.i += len(lit)
	return nil
}

func (s *jsonScanner) number() error {
	d, i := s.data, s.i
	if i < len(d) && d[i] == '-' {
		i++
	}
	switch {
	case i < len(d) && d[i] == '0':
		i++
	case i < len(d) && d[i] >= '1' && d[i] <= '9':
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
	default:
		s.i = i
		return s.fail("invalid number")
	}
	if i < len(d) && d[i] == '.' {
		i++
		j := i
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
		if i == j {
			s.i = i
			return s.fail("invalid number")
		}
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		j := i
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
		if i == j {
			s.i = i
			return s.fail("invalid number")
		}
	}
	s.i = i
	return nil
}

// str scans a string starting at the opening quote and reports whether it
// contains escapes.
func (s *jsonScanner) str() (bool, error) {
	d := s.data
	i := s.i + 1
	esc := false
	for i < len(d) {
		// Skip eight plain bytes at a time: no quote, backslash or
		// control character among them.
		for i+8 <= len(d) && !specialInWord(binary.LittleEndian.Uint64(d[i:])) {
			i += 8
		}
		if i >= len(d) {
			break
		}
		c := d[i]
		switch {
		case c == '"':
			s.i = i + 1
			return esc, nil
		case c == '\\':
			esc = true
			if i+1 >= len(d) {
				s.i = i
				return esc, s.fail("unterminated string")
			}
			switch d[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(d) || !isHex4(d[i+2:i+6]) {
					s.i = i
					return esc, s.fail("invalid \\u escape")
				}
				i += 6
			default:
				s.i = i
				return esc, s.fail("invalid escape")
			}
		case c < 0x20:
			s.i = i
			return esc, s.fail("control character in string")
		default:
			i++
		}
	}
	s.i = i
	return esc, s.fail("unterminated string")
}

// specialInWord reports whether any byte of the eight in w is a quote, a
// backslash or below 0x20 (the classic "has zero byte" bit trick applied
// to w^'"', w^'\\' and w-0x20).
func specialInWord(w uint64) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	q := w ^ (ones * '"')
	b := w ^ (ones * '\\')
	return ((q-ones)&^q|(b-ones)&^b|(w-ones*0x20)&^w)&highs != 0
}

func isHex4(b []byte) bool {
	for _, c := range b[:4] {
		if hexVal(c) < 0 {
			return false
		}
	}
	return true
}

func hexVal(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

func (s *jsonScanner) object(node int) error {
	s.depth++
	if s.depth > maxJSONDepth {
		return s.fail("nesting too deep")
	}
	s.i++ // '{'
	s.ws()
	if s.i < len(s.data) && s.data[s.i] == '}' {
		s.i++
		s.depth--
		return nil
	}
	var children []int32
	if node >= 0 {
		children = s.paths.nodes[node].children
	}
	for {
		if s.i >= len(s.data) || s.data[s.i] != '"' {
			return s.fail("expected object key")
		}
		kstart := s.i + 1
		esc, err := s.str()
		if err != nil {
			return err
		}
		key := s.data[kstart : s.i-1]
		if esc && len(children) > 0 {
			s.key = appendJSONUnescaped(s.key[:0], key)
			key = s.key
		}
		s.ws()
		if s.i >= len(s.data) || s.data[s.i] != ':' {
			return s.fail("expected ':' after object key")
		}
		s.i++
		s.ws()
		next := -1
		if len(key) > 0 {
			for _, c := range children {
				if n := s.paths.nodes[c].name; len(n) == len(key) && n[0] == key[0] && n == string(key) {
					next = int(c)
					break
				}
			}
		}
		if err := s.value(next); err != nil {
			return err
		}
		s.ws()
		if s.i >= len(s.data) {
			return s.fail("unterminated object")
		}
		switch s.data[s.i] {
		case ',':
			s.i++
			s.ws()
		case '}':
			s.i++
			s.depth--
			return nil
		default:
			return s.fail("expected ',' or '}' in object")
		}
	}
}

func (s *jsonScanner) array() error {
	s.depth++
	if s.depth > maxJSONDepth {
		return s.fail("nesting too deep")
	}
	s.i++ // '['
	s.ws()
	if s.i < len(s.data) && s.data[s.i] == ']' {
		s.i++
		s.depth--
		return nil
	}
	for {
		if err := s.value(-1); err != nil {
			return err
		}
		s.ws()
		if s.i >= len(s.data) {
			return s.fail("unterminated array")
		}
		switch s.data[s.i] {
		case ',':
			s.i++
			s.ws()
		case ']':
			s.i++
			s.depth--
			return nil
		default:
			return s.fail("expected ',' or ']' in array")
		}
	}
}

// arrayElems calls visit for each element of the validated JSON array raw,
// with the element's text (strings without their quotes) and kind. It
// stops early when visit returns false.
func arrayElems(raw []byte, visit func(v jsonValue) bool) {
	var s jsonScanner
	s.data = raw
	s.i = 1
	for {
		s.ws()
		if s.i >= len(s.data) || s.data[s.i] == ']' {
			return
		}
		start := s.i
		kind := s.peekKind()
		var esc bool
		var err error
		if kind == jsonString {
			esc, err = s.str()
		} else {
			err = s.value(-1)
		}
		if err != nil {
			return
		}
		v := s.data[start:s.i]
		if kind == jsonString {
			v = v[1 : len(v)-1]
		}
		if !visit(jsonValue{raw: v, kind: kind, esc: esc}) {
			return
		}
		s.ws()
		if s.i < len(s.data) && s.data[s.i] == ',' {
			s.i++
		}
	}
}

// appendJSONUnescaped appends the unescaped form of the string contents
// src, which the scanner has already validated, to dst. Lone surrogates
// become U+FFFD, as encoding/json does.
func appendJSONUnescaped(dst, src []byte) []byte {
	for i := 0; i < len(src); {
		c := src[i]
		if c != '\\' {
			j := bytes.IndexByte(src[i:], '\\')
			if j < 0 {
				return append(dst, src[i:]...)
			}
			dst = append(dst, src[i:i+j]...)
			i += j
			continue
		}
		if i+1 >= len(src) {
			return dst
		}
		switch src[i+1] {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r, ok := hex4(src[i+2:])
			if !ok {
				return dst
			}
			i += 6
			if utf16.IsSurrogate(r) {
				r2, ok2 := rune(-1), false
				if i+6 <= len(src) && src[i] == '\\' && src[i+1] == 'u' {
					r2, ok2 = hex4(src[i+2:])
				}
				if dec := utf16.DecodeRune(r, r2); ok2 && dec != utf8.RuneError {
					r = dec
					i += 6
				} else {
					r = utf8.RuneError
				}
			}
			dst = utf8.AppendRune(dst, r)
			continue
		default: // '"', '\\', '/'
			dst = append(dst, src[i+1])
		}
		i += 2
	}
	return dst
}

func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		v := hexVal(c)
		if v < 0 {
			return 0, false
		}
		r = r<<4 | rune(v)
	}
	return r, true
}

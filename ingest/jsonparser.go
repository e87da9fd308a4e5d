package ingest

import (
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"time"
	"unsafe"

	"github.com/scopewatch/scopewatch/rules"
)

// jsonParser reads one JSON object per line, as API gateways write them,
// taking each event field from a configured dotted path (rules.JSONFields).
// A line yields exactly one event; lines without a client are still
// events, with an empty Client, so that unattributed calls can be counted.
// A client or subject of "-" (nginx's empty value) counts as absent. The
// scopes of a line whose kind is deny are scopes asked for, not issued, so
// they are reported as Requested unless a requested path is configured.
// It is not safe for concurrent use.
type jsonParser struct {
	name    string
	loc     *time.Location
	timeFmt timeFormat
	layout  string
	defKind Kind
	kinds   map[string]Kind
	fields  rules.JSONFields // the configured paths, named in errors
	slot    jsonSlots
	scan    jsonScanner
	buf     []byte // unescaped strings of the current line
	strs    interner
	scopes  scopeLists // space-separated strings
	arrays  scopeLists // JSON arrays, keyed by their text
	trusted []netip.Prefix
}

var _ Parser = (*jsonParser)(nil)

// jsonSlots are the capture slots of the configured paths, -1 when unset.
type jsonSlots struct {
	time, client, scopes, requested, subject, ip, method, path, status, kind, reason, country int
}

type timeFormat uint8

const (
	timeRFC3339 timeFormat = iota
	timeEpochS
	timeEpochMS
	timeEpochUS
	timeEpochNS
	timeNginx
	timeLayout
)

// timeFormats maps the TimeFormat names of rules.Source to formats.
func parseTimeFormat(name string) (timeFormat, bool) {
	switch name {
	case "", "rfc3339":
		return timeRFC3339, true
	case "epoch_s":
		return timeEpochS, true
	case "epoch_ms":
		return timeEpochMS, true
	case "epoch_us":
		return timeEpochUS, true
	case "epoch_ns":
		return timeEpochNS, true
	case "nginx":
		return timeNginx, true
	}
	return timeLayout, false
}

// eventKind maps a kind name from config; unknown is not a valid choice.
func eventKind(name string) (Kind, bool) {
	k, ok := ParseKind(name)
	return k, ok && k != KindUnknown
}

// The defaults of a json source's time_format and kind settings, filled
// in by configureJSON so that the loaded configuration says what is read.
const (
	defaultJSONTimeFormat = "rfc3339"
	defaultJSONKind       = "use"
)

// configureJSON applies the defaults of format json to s and reports the
// one path it cannot do without.
func configureJSON(s *rules.Source, bad func(field, msg string)) {
	if s.TimeFormat == "" {
		s.TimeFormat = defaultJSONTimeFormat
	}
	if s.Kind == "" {
		s.Kind = defaultJSONKind
	}
	if s.Fields.Time == "" {
		bad("fields.time", "required for format json: the path of the event time, e.g. time or request.ts")
	}
}

// jsonShows says which events a json source shows: those its kind and
// kinds settings name, an unset kind being use.
func jsonShows(src rules.Source) shows {
	kinds := []string{src.Kind}
	for _, k := range src.Kinds {
		kinds = append(kinds, k)
	}
	var s shows
	for _, k := range kinds {
		switch k {
		case "grant", "deny":
			s |= showsGrants
		case "use", "":
			s |= showsUses
		}
	}
	return s
}

func newJSONParser(src rules.Source) (*jsonParser, error) {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("source %s: "+format, append([]any{src.Name}, args...)...))
	}
	loc, err := loadZone(src)
	if err != nil {
		errs = append(errs, err)
	}
	p := &jsonParser{name: src.Name, loc: loc, fields: src.Fields, defKind: KindUse, trusted: src.Trusted}
	tf, ok := parseTimeFormat(src.TimeFormat)
	p.timeFmt = tf
	if !ok {
		// A Go layout: it must read back what it writes.
		ref := time.Date(2006, 1, 2, 15, 4, 5, 0, time.UTC)
		if _, err := time.Parse(src.TimeFormat, ref.Format(src.TimeFormat)); err != nil || !strings.ContainsAny(src.TimeFormat, "0123456789") {
			bad("time_format %q is neither a known format nor a Go reference layout", src.TimeFormat)
		}
		p.layout = src.TimeFormat
	}
	if src.Kind != "" {
		if p.defKind, ok = eventKind(src.Kind); !ok {
			bad("kind %q: want use, grant, deny or admin", src.Kind)
		}
	}
	if len(src.Kinds) > 0 {
		p.kinds = make(map[string]Kind, len(src.Kinds))
		keys := make([]string, 0, len(src.Kinds))
		for k := range src.Kinds {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			kind, ok := eventKind(src.Kinds[k])
			if !ok {
				bad("kinds[%q] = %q: want use, grant, deny or admin", k, src.Kinds[k])
			}
			p.kinds[k] = kind
		}
	}
	f := src.Fields
	if f.Time == "" {
		bad("fields.time is required")
	}
	paths := newJSONPaths()
	add := func(name, path string) int {
		if path == "" {
			return -1
		}
		for _, part := range strings.Split(path, ".") {
			if part == "" {
				bad("fields.%s %q: empty key in dotted path", name, path)
				return -1
			}
		}
		return paths.addDotted(path)
	}
	p.slot = jsonSlots{
		time:      add("time", f.Time),
		client:    add("client", f.Client),
		scopes:    add("scopes", f.Scopes),
		requested: add("requested", f.Requested),
		subject:   add("subject", f.Subject),
		ip:        add("ip", f.IP),
		method:    add("method", f.Method),
		path:      add("path", f.Path),
		status:    add("status", f.Status),
		kind:      add("kind", f.Kind),
		reason:    add("reason", f.Reason),
		country:   add("country", f.Country),
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	p.scan = newJSONScanner(paths)
	return p, nil
}

// val returns the value captured for slot, absent when the slot is unset.
func (p *jsonParser) val(slot int) jsonValue {
	if slot < 0 {
		return jsonValue{}
	}
	return p.scan.vals[slot]
}

// text returns the text of a scalar: a string unescaped into p.buf when
// needed, or the literal text of a number or boolean. null and absent give
// nil; ok is false for objects and arrays.
func (p *jsonParser) text(v jsonValue) (b []byte, ok bool) {
	switch v.kind {
	case jsonString:
		if !v.esc {
			return v.raw, true
		}
		start := len(p.buf)
		p.buf = appendJSONUnescaped(p.buf, v.raw)
		return p.buf[start:len(p.buf):len(p.buf)], true
	case jsonNumber, jsonTrue, jsonFalse:
		return v.raw, true
	case jsonObject, jsonArray:
		return nil, false
	}
	return nil, true
}

func (p *jsonParser) fail(pos Position, field, path, reason, msg string) error {
	return lineError(pos, p.name, field, reason, path+": "+msg)
}

// Parse implements Parser.
func (p *jsonParser) Parse(line []byte, pos Position, dst []Event) ([]Event, error) {
	p.buf = p.buf[:0]
	s := trimSpace(line)
	if len(s) == 0 {
		return dst, SkipBlank
	}
	kind, err := p.scan.scan(s)
	if err != nil {
		return dst, wrapLineError(pos, p.name, "", ReasonBadJSON, err)
	}
	if kind != jsonObject {
		return dst, lineError(pos, p.name, "", ReasonBadFormat, "line is not a JSON object")
	}
	e := Event{Source: pos.Source, Kind: p.defKind, Pos: pos}
	if e.Source == "" {
		e.Source = p.name
	}
	f := &p.fields

	tv := p.val(p.slot.time)
	if !tv.present() {
		return dst, p.fail(pos, "time", f.Time, ReasonNoTime, "no time")
	}
	t, ok := p.parseTime(tv)
	if !ok {
		return dst, p.fail(pos, "time", f.Time, ReasonBadTime, "unparsable time")
	}
	e.Time = t

	var b []byte
	if b, ok = p.text(p.val(p.slot.client)); !ok {
		return dst, p.fail(pos, "client", f.Client, ReasonBadField, "client is not a string")
	}
	e.Client = p.strs.bytes(dashless(b))
	if e.Granted, ok = p.scopeList(p.val(p.slot.scopes)); !ok {
		return dst, p.fail(pos, "scopes", f.Scopes, ReasonBadField, "scopes are neither a string nor an array of strings")
	}
	if e.Requested, ok = p.scopeList(p.val(p.slot.requested)); !ok {
		return dst, p.fail(pos, "requested", f.Requested, ReasonBadField, "requested scopes are neither a string nor an array of strings")
	}
	if b, ok = p.text(p.val(p.slot.subject)); !ok {
		return dst, p.fail(pos, "subject", f.Subject, ReasonBadField, "subject is not a string")
	}
	e.Subject = p.strs.subject(dashless(b))
	if e.IP, ok = p.ip(p.val(p.slot.ip)); !ok {
		return dst, p.fail(pos, "ip", f.IP, ReasonBadField, "no valid IP address")
	}
	if b, ok = p.text(p.val(p.slot.method)); !ok {
		return dst, p.fail(pos, "method", f.Method, ReasonBadField, "method is not a string")
	}
	e.Method = p.strs.bytes(b)
	if b, ok = p.text(p.val(p.slot.path)); !ok {
		return dst, p.fail(pos, "path", f.Path, ReasonBadField, "path is not a string")
	}
	if len(b) > 0 {
		full := string(b)
		if q := strings.IndexByte(full, '?'); q >= 0 {
			e.Path, e.Query = full[:q], full[q+1:]
		} else {
			e.Path = full
		}
	}
	if e.Status, ok = p.status(p.val(p.slot.status)); !ok {
		return dst, p.fail(pos, "status", f.Status, ReasonBadField, "status is not a number")
	}
	if b, ok = p.text(p.val(p.slot.kind)); !ok {
		return dst, p.fail(pos, "kind", f.Kind, ReasonBadField, "kind is not a string")
	}
	if len(b) > 0 {
		e.Type = p.strs.bytes(b)
		if k, found := p.kinds[string(b)]; found {
			e.Kind = k
		}
	}
	if b, ok = p.text(p.val(p.slot.reason)); !ok {
		return dst, p.fail(pos, "reason", f.Reason, ReasonBadField, "reason is not a string")
	}
	e.Reason = p.strs.bytes(b)
	if b, ok = p.text(p.val(p.slot.country)); !ok {
		return dst, p.fail(pos, "country", f.Country, ReasonBadField, "country is not a string")
	}
	e.Country = p.strs.bytes(b)
	if e.Kind == KindDeny && p.slot.requested < 0 {
		e.Requested, e.Granted = e.Granted, nil
	}
	return append(dst, e), nil
}

// dashless treats a lone "-", nginx's and Envoy's placeholder for an empty
// value, as empty.
func dashless(b []byte) []byte {
	if len(b) == 1 && b[0] == '-' {
		return nil
	}
	return b
}

func (p *jsonParser) parseTime(v jsonValue) (time.Time, bool) {
	b, ok := p.text(v)
	if !ok || len(b) == 0 {
		return time.Time{}, false
	}
	isNum := v.kind == jsonNumber
	switch p.timeFmt {
	case timeEpochS:
		return parseEpoch(b, int64(time.Second))
	case timeEpochMS:
		return parseEpoch(b, int64(time.Millisecond))
	case timeEpochUS:
		return parseEpoch(b, int64(time.Microsecond))
	case timeEpochNS:
		return parseEpoch(b, 1)
	}
	if isNum {
		return time.Time{}, false
	}
	switch p.timeFmt {
	case timeNginx:
		return parseNginxTime(b)
	case timeLayout:
		t, err := time.ParseInLocation(p.layout, string(b), p.loc)
		return t, err == nil
	}
	return parseISOTime(b, p.loc)
}

// scopeList reads a space-separated string or an array of strings.
func (p *jsonParser) scopeList(v jsonValue) ([]string, bool) {
	return jsonScopeList(v, func(v jsonValue) []byte { b, _ := p.text(v); return b }, &p.scopes, &p.arrays)
}

// ip reads an address from a string that may be an X-Forwarded-For list
// ("client, proxy1, proxy2"), possibly with ports, or from an array of such
// strings. In a list, the client is the right-most address outside the
// source's trusted proxies (see ClientIP). "-", "unknown" and empty entries
// are skipped; a value with entries but no valid address is not ok.
func (p *jsonParser) ip(v jsonValue) (netip.Addr, bool) {
	switch v.kind {
	case jsonAbsent, jsonNull:
		return netip.Addr{}, true
	case jsonString:
		b, _ := p.text(v)
		if indexByte(b, ',') >= 0 {
			// ClientIP keeps no reference to its argument.
			if a := ClientIP(unsafe.String(unsafe.SliceData(b), len(b)), netip.Addr{}, p.trusted); a.IsValid() {
				return a, true
			}
		}
		return firstIP(b)
	case jsonArray:
		var addr netip.Addr
		ok := true
		arrayElems(v.raw, func(el jsonValue) bool {
			if el.kind != jsonString {
				ok = false
				return false
			}
			b, _ := p.text(el)
			addr, ok = firstIP(b)
			return ok && !addr.IsValid()
		})
		return addr, ok
	}
	return netip.Addr{}, false
}

// firstIP returns the left-most valid address of a comma-separated list.
// The zero Addr with ok is returned when the list holds only placeholders.
func firstIP(b []byte) (netip.Addr, bool) {
	seen := false
	for len(b) > 0 {
		var item []byte
		if i := indexByte(b, ','); i >= 0 {
			item, b = b[:i], b[i+1:]
		} else {
			item, b = b, nil
		}
		item = trimSpace(item)
		switch string(item) {
		case "", "-", "unknown":
			continue
		}
		seen = true
		if a, ok := parseIP(item); ok {
			return a, true
		}
		if a, ok := parseIPWithPort(item); ok {
			return a, true
		}
	}
	return netip.Addr{}, !seen
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}

// parseIPWithPort reads host:port and [v6]:port forms.
func parseIPWithPort(b []byte) (netip.Addr, bool) {
	if len(b) > 0 && b[0] == '[' {
		if i := indexByte(b, ']'); i > 0 {
			return parseIP(b[1:i])
		}
		return netip.Addr{}, false
	}
	i := len(b) - 1
	for i >= 0 && b[i] >= '0' && b[i] <= '9' {
		i--
	}
	if i <= 0 || i == len(b)-1 || b[i] != ':' {
		return netip.Addr{}, false
	}
	return parseIPv4(b[:i])
}

// status reads an HTTP status written as a number or a numeric string.
// Empty and "-" mean unknown (0).
func (p *jsonParser) status(v jsonValue) (int, bool) {
	switch v.kind {
	case jsonAbsent, jsonNull:
		return 0, true
	case jsonString, jsonNumber:
	default:
		return 0, false
	}
	b, _ := p.text(v)
	if len(b) == 0 || string(b) == "-" {
		return 0, true
	}
	n := 0
	for i, c := range b {
		if c < '0' || c > '9' || i >= 4 {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

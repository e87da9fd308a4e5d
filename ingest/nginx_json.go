package ingest

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/scopewatch/scopewatch/rules"
)

// This file holds the engine of the JSON access-log formats (nginx-json,
// envoy-json, kong, traefik, apigw): each is a preset, a list of the
// paths where its writers put each field, tried in order. A path set in
// the source's fields comes first; for the time it replaces the preset.

// gwTimePath is a candidate path of the event time and how it is written.
type gwTimePath struct {
	path   string
	format timeFormat
}

// timeAuto reads numbers as epoch seconds, milliseconds, microseconds or
// nanoseconds by their magnitude, and strings as nginx or ISO-8601 times.
const timeAuto timeFormat = 255

// gwPreset names the default paths of a JSON access-log format.
type gwPreset struct {
	time    []gwTimePath
	client  []string
	subject []string
	scopes  []string
	xff     []string // X-Forwarded-For values
	remote  []string // the peer's address, possibly with a port
	method  []string
	target  []string // path, possibly with a query string
	query   []string // query string, when the target has none
	request []string // "METHOD target [PROTOCOL]", when method or target are missing
	status  []string
	country []string // an ISO 3166-1 code or a country name
}

// gwField is a field's candidate slots, in order, with their paths for
// error messages.
type gwField struct {
	name  string
	slots []int
	paths []string
}

type gwTimeSlot struct {
	slot   int
	path   string
	format timeFormat
}

// gwJSONParser reads one JSON access-log object per line through a preset.
// It is not safe for concurrent use.
type gwJSONParser struct {
	gateway
	loc                                                                                  *time.Location
	layout                                                                               string
	times                                                                                []gwTimeSlot
	client, subject, grant, xff, remote, method, target, query, request, status, country gwField
	scan                                                                                 jsonScanner
	buf                                                                                  []byte
	arrays                                                                               scopeLists
}

var _ Parser = (*gwJSONParser)(nil)

// nginxJSONPreset covers log_format … escape=json with nginx's variable
// names as keys, the convention of the published examples. The country
// is the geoip module's $geoip_country_code by default; fields.country
// names another key (a geoip2 variable, a header set by a CDN).
var nginxJSONPreset = gwPreset{
	time: []gwTimePath{
		{"time_local", timeNginx}, {"time_iso8601", timeRFC3339}, {"msec", timeEpochS},
		{"timestamp", timeAuto}, {"time", timeAuto}, {"@timestamp", timeAuto},
	},
	subject: []string{"remote_user"},
	xff:     []string{"http_x_forwarded_for"},
	remote:  []string{"remote_addr"},
	method:  []string{"request_method"},
	target:  []string{"request_uri", "uri"},
	query:   []string{"args", "query_string"},
	request: []string{"request"},
	status:  []string{"status"},
	country: []string{"geoip_country_code"},
}

func newGWJSONParser(src rules.Source, pre gwPreset) (*gwJSONParser, error) {
	var errs []error
	loc, err := loadZone(src)
	if err != nil {
		errs = append(errs, err)
	}
	p := &gwJSONParser{gateway: newGateway(src), loc: loc}
	paths := newJSONPaths()
	add := func(name, path string) (int, bool) {
		for _, part := range strings.Split(path, ".") {
			if part == "" {
				errs = append(errs, fmt.Errorf("source %s: fields.%s %q: empty key in dotted path", src.Name, name, path))
				return 0, false
			}
		}
		return paths.addDotted(path), true
	}
	field := func(name, user string, defaults []string) gwField {
		f := gwField{name: name}
		list := defaults
		if user != "" {
			list = append([]string{user}, defaults...)
		}
		for _, path := range list {
			if slot, ok := add(name, path); ok {
				f.slots = append(f.slots, slot)
				f.paths = append(f.paths, path)
			}
		}
		return f
	}
	fs := src.Fields
	times := pre.time
	if fs.Time != "" {
		tf, ok := parseTimeFormat(src.TimeFormat)
		if src.TimeFormat == "" {
			tf = timeAuto
		}
		if !ok {
			ref := time.Date(2006, 1, 2, 15, 4, 5, 0, time.UTC)
			if _, err := time.Parse(src.TimeFormat, ref.Format(src.TimeFormat)); err != nil || !strings.ContainsAny(src.TimeFormat, "0123456789") {
				errs = append(errs, fmt.Errorf("source %s: time_format %q is neither a known format nor a Go reference layout", src.Name, src.TimeFormat))
			}
			p.layout = src.TimeFormat
		}
		times = []gwTimePath{{fs.Time, tf}}
	}
	for _, tp := range times {
		if slot, ok := add("time", tp.path); ok {
			p.times = append(p.times, gwTimeSlot{slot: slot, path: tp.path, format: tp.format})
		}
	}
	xff, remote := pre.xff, pre.remote
	if fs.IP != "" {
		// A configured address replaces both: it is read as a forwarded chain.
		xff, remote = []string{fs.IP}, nil
	}
	p.client = field("client", fs.Client, pre.client)
	p.subject = field("subject", fs.Subject, pre.subject)
	p.grant = field("scopes", fs.Scopes, pre.scopes)
	p.xff = field("ip", "", xff)
	p.remote = field("ip", "", remote)
	p.method = field("method", fs.Method, pre.method)
	p.target = field("path", fs.Path, pre.target)
	p.query = field("query", "", pre.query)
	p.request = field("request", "", pre.request)
	p.status = field("status", fs.Status, pre.status)
	p.country = field("country", fs.Country, pre.country)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	p.scan = newJSONScanner(paths)
	return p, nil
}

// text returns a scalar's text, unescaped into p.buf when needed; ok is
// false for objects and arrays.
func (p *gwJSONParser) text(v jsonValue) ([]byte, bool) {
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

// str returns the first candidate of f with a non-empty value ("-"
// counts as empty). bad names the path of a value that is not a scalar.
func (p *gwJSONParser) str(f *gwField) (b []byte, bad string) {
	for i, slot := range f.slots {
		v := p.scan.vals[slot]
		if !v.present() {
			continue
		}
		t, ok := p.text(v)
		if !ok {
			return nil, f.paths[i]
		}
		if t = dashless(t); len(t) > 0 {
			return t, ""
		}
	}
	return nil, ""
}

// present reports whether the record holds f, empty or "-" included.
func (p *gwJSONParser) present(f *gwField) bool {
	for _, slot := range f.slots {
		if p.scan.vals[slot].present() {
			return true
		}
	}
	return false
}

func (p *gwJSONParser) fail(pos Position, field, path, reason, msg string) error {
	return lineError(pos, p.name, field, reason, path+": "+msg)
}

// Parse implements Parser.
func (p *gwJSONParser) Parse(line []byte, pos Position, dst []Event) ([]Event, error) {
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
	e := p.event(pos)

	found := false
	for _, ts := range p.times {
		v := p.scan.vals[ts.slot]
		if !v.present() {
			continue
		}
		t, ok := p.parseTime(v, ts.format)
		if !ok {
			return dst, p.fail(pos, "time", ts.path, ReasonBadTime, "unparsable time")
		}
		e.Time, found = t, true
		break
	}
	if !found {
		return dst, lineError(pos, p.name, "time", ReasonNoTime, "no time")
	}

	b, bad := p.str(&p.client)
	if bad != "" {
		return dst, p.fail(pos, "client", bad, ReasonBadField, "client is not a string")
	}
	e.Client = p.strs.bytes(b)
	if b, bad = p.str(&p.subject); bad != "" {
		return dst, p.fail(pos, "subject", bad, ReasonBadField, "subject is not a string")
	}
	e.Subject = p.strs.subject(b)
	for i, slot := range p.grant.slots {
		l, ok := p.scopeList(p.scan.vals[slot])
		if !ok {
			return dst, p.fail(pos, "scopes", p.grant.paths[i], ReasonBadField, "scopes are neither a string nor an array of strings")
		}
		if len(l) > 0 {
			e.Granted = l
			break
		}
	}

	method, bad := p.str(&p.method)
	if bad != "" {
		return dst, p.fail(pos, "method", bad, ReasonBadField, "method is not a string")
	}
	target, bad := p.str(&p.target)
	if bad != "" {
		return dst, p.fail(pos, "path", bad, ReasonBadField, "path is not a string")
	}
	// unread: the record's request line is all it says of the request,
	// and it is not one (see below).
	var unread, noLine bool
	if len(method) == 0 || len(target) == 0 {
		req, bad := p.str(&p.request)
		if bad != "" {
			return dst, p.fail(pos, "request", bad, ReasonBadField, "request is not a string")
		}
		// An unreadable request line (a TLS probe answered with 400, API
		// Gateway's "$default" route) leaves method and path empty.
		if m, t, ok := splitRequest(req); ok {
			if len(method) == 0 {
				method = m
			}
			if len(target) == 0 {
				target = t
			}
		} else if len(method) == 0 && len(target) == 0 && p.present(&p.request) {
			unread, noLine = true, len(req) == 0
		}
	}
	e.Method = p.strs.bytes(method)
	setTarget(&e, target)
	if e.Query == "" && e.Path != "" {
		q, bad := p.str(&p.query)
		if bad != "" {
			return dst, p.fail(pos, "query", bad, ReasonBadField, "query is not a string")
		}
		if len(q) > 0 && q[0] == '?' {
			q = q[1:]
		}
		if len(q) > 0 {
			e.Query = string(q)
		}
	}

	for i, slot := range p.status.slots {
		v := p.scan.vals[slot]
		if !v.present() {
			continue
		}
		b, ok := p.text(v)
		if ok && (v.kind == jsonString || v.kind == jsonNumber) {
			e.Status, ok = parseStatus(b)
		} else {
			ok = false
		}
		if !ok {
			return dst, p.fail(pos, "status", p.status.paths[i], ReasonBadField, "status is not a number")
		}
		break
	}

	if unread && (noLine || refusedRequestLine(e.Status)) {
		// No request was read ("" or "-", a timeout or a closed
		// connection), or the server refused what it read as not HTTP:
		// no call, as in nginx's text log.
		return dst, SkipNoRequest
	}
	if e.Method == "" && e.Path == "" && e.Status == 0 {
		// Not a request record: a gateway's own message in the same stream.
		return dst, SkipOtherLogger
	}
	xff, bad := p.str(&p.xff)
	if bad != "" {
		return dst, p.fail(pos, "ip", bad, ReasonBadField, "X-Forwarded-For is not a string")
	}
	remote, bad := p.str(&p.remote)
	if bad != "" {
		return dst, p.fail(pos, "ip", bad, ReasonBadField, "address is not a string")
	}
	e.IP = p.clientIP(xff, remote)
	// The address and the country are optional: a value that names none
	// is left out and counted as dropped, and the call is kept. A Unix
	// socket peer ("unix:") has no address to drop.
	if !e.IP.IsValid() && (len(xff) > 0 || (len(remote) > 0 && !bytes.HasPrefix(remote, []byte("unix:")))) {
		e.Dropped |= FieldIP
	}
	country, bad := p.str(&p.country)
	if bad != "" {
		return dst, p.fail(pos, "country", bad, ReasonBadField, "country is not a string")
	}
	if len(country) > 0 {
		var ok bool
		if e.Country, ok = countryLookup(country); !ok {
			e.Dropped |= FieldCountry
		}
	}
	return append(dst, e), nil
}

func (p *gwJSONParser) parseTime(v jsonValue, f timeFormat) (time.Time, bool) {
	b, ok := p.text(v)
	if !ok || len(b) == 0 {
		return time.Time{}, false
	}
	isNum := v.kind == jsonNumber
	if f == timeAuto {
		f = autoTimeFormat(b, isNum)
	}
	switch f {
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
	switch f {
	case timeNginx:
		return parseNginxTime(b)
	case timeLayout:
		t, err := time.ParseInLocation(p.layout, string(b), p.loc)
		return t, err == nil
	}
	return parseISOTime(b, p.loc)
}

// autoTimeFormat guesses how a time is written. Epoch numbers are told
// apart by their count of integer digits: seconds have 10 until 2286.
func autoTimeFormat(b []byte, isNum bool) timeFormat {
	digits := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			break
		}
		digits++
	}
	if isNum || digits == len(b) || (digits > 0 && digits < len(b) && b[digits] == '.') {
		switch {
		case digits <= 11:
			return timeEpochS
		case digits <= 14:
			return timeEpochMS
		case digits <= 17:
			return timeEpochUS
		}
		return timeEpochNS
	}
	if len(b) == 26 && b[2] == '/' {
		return timeNginx
	}
	return timeRFC3339
}

// scopeList reads a space-separated string ("-" for none) or an array of
// strings.
func (p *gwJSONParser) scopeList(v jsonValue) ([]string, bool) {
	if v.kind == jsonString {
		b, _ := p.text(v)
		return p.scopes.split(dashless(b)), true
	}
	return jsonScopeList(v, func(v jsonValue) []byte { b, _ := p.text(v); return b }, &p.scopes, &p.arrays)
}

// newPresetParser returns the parser of a JSON access-log preset, or a nil
// Parser with the configuration errors.
func newPresetParser(src rules.Source, pre gwPreset) (Parser, error) {
	p, err := newGWJSONParser(src, pre)
	if err != nil {
		return nil, err
	}
	return p, nil
}

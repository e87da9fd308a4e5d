package ingest

import (
	"bytes"
	"time"

	"github.com/scopewatch/scopewatch/rules"
)

// keycloakParser reads Keycloak event logs in every shape Keycloak writes
// them, told apart line by line:
//
//   - the jboss-logging listener's text, in the old unquoted style
//     (scope='openid profile') and the newer quoted one (scope="openid
//     profile"), after a JBoss or ISO-8601 timestamp prefix, optionally
//     behind a syslog (RFC 3164, RFC 5424, rsyslog RFC 3339) or
//     docker-compose prefix;
//   - the same text as the message of Quarkus JSON logging (or its ECS
//     variant);
//   - structured JSON events from event listeners and the admin REST API,
//     one object or an array of them per line, including admin events;
//   - any of the above inside docker's json-file wrapper.
//
// Token-issuing events become KindGrant, their *_ERROR twins KindDeny, admin
// events KindAdmin; every other line yields nothing. It is not safe for
// concurrent use.
type keycloakParser struct {
	name   string
	loc    *time.Location
	now    func() time.Time // for the year of RFC 3164 timestamps
	scan   jsonScanner
	slot   kcSlots
	buf    []byte // unescaped strings of the current line
	strs   interner
	scopes scopeLists
}

var _ Parser = (*keycloakParser)(nil)

// kcSlots are the capture slots of the keys the parser reads from JSON.
type kcSlots struct {
	log, stream, time, timestamp, ecsTimestamp, loggerName, ecsLogger, message int
	typ, realmID, clientID, userID, ipAddress, errorKey                        int
	scope, username                                                            int
	opType, resType, resPath, authClient, authUser, authIP                     int
}

func newKeycloakParser(src rules.Source) (*keycloakParser, error) {
	loc, err := loadZone(src)
	if err != nil {
		return nil, err
	}
	p := newJSONPaths()
	s := kcSlots{
		log:          p.add("log"),
		stream:       p.add("stream"),
		time:         p.add("time"),
		timestamp:    p.add("timestamp"),
		ecsTimestamp: p.add("@timestamp"),
		loggerName:   p.add("loggerName"),
		ecsLogger:    p.add("log.logger"),
		message:      p.add("message"),
		typ:          p.add("type"),
		realmID:      p.add("realmId"),
		clientID:     p.add("clientId"),
		userID:       p.add("userId"),
		ipAddress:    p.add("ipAddress"),
		errorKey:     p.add("error"),
		scope:        p.add("details", "scope"),
		username:     p.add("details", "username"),
		opType:       p.add("operationType"),
		resType:      p.add("resourceType"),
		resPath:      p.add("resourcePath"),
		authClient:   p.add("authDetails", "clientId"),
		authUser:     p.add("authDetails", "userId"),
		authIP:       p.add("authDetails", "ipAddress"),
	}
	return &keycloakParser{
		name: src.Name,
		loc:  loc,
		now:  time.Now,
		scan: newJSONScanner(p),
		slot: s,
	}, nil
}

// kcEvent is one Keycloak event as read from a line, before mapping.
type kcEvent struct {
	typ, opType, resType, resPath []byte
	client, user, ip, errStr      []byte
	scope, username               []byte
	time                          time.Time
	hasTime                       bool
	badTime                       bool   // only a header's unparsable time was found
	timeField                     string // where the time came from, for errors
}

// prefixTime is the time of a wrapper or syslog header around the event.
type prefixTime struct {
	t   time.Time
	ok  bool // t is set
	bad bool // a header had a time that did not parse
}

// fallback uses the header's time when the event carries none.
func (ev *kcEvent) fallback(o prefixTime) {
	if ev.hasTime {
		return
	}
	if o.ok {
		ev.time, ev.hasTime = o.t, true
	} else if o.bad {
		ev.badTime = true
	}
}

// Parse implements Parser.
func (p *keycloakParser) Parse(line []byte, pos Position, dst []Event) ([]Event, error) {
	p.buf = p.buf[:0]
	return p.parseLine(line, pos, dst, prefixTime{}, 0)
}

// parseLine parses one line or the line carried inside a wrapper (docker
// json-file); outer is the time of the wrapper or syslog header.
func (p *keycloakParser) parseLine(line []byte, pos Position, dst []Event, outer prefixTime, depth int) ([]Event, error) {
	s := trimSpace(line)
	for range 4 {
		if len(s) == 0 {
			return dst, nil
		}
		if s[0] == '{' || (s[0] == '[' && looksLikeJSONArray(s)) {
			return p.parseJSON(s, pos, dst, outer, depth)
		}
		rest, pt, ok := p.stripPrefix(s)
		if !ok {
			break
		}
		if pt.ok || !outer.ok {
			outer = pt
		}
		s = rest
	}
	return p.parseText(s, pos, dst, outer)
}

// stripPrefix removes one syslog or docker-compose prefix from s, returning
// the rest and the prefix's time if it has one. ok is false when s has no
// such prefix.
func (p *keycloakParser) stripPrefix(s []byte) (rest []byte, pt prefixTime, ok bool) {
	// RFC 5424: <PRI>1 TIMESTAMP HOST APP PROCID MSGID SD MSG
	if s[0] == '<' {
		i := 1
		for i < len(s) && i < 5 && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == 1 || i >= len(s) || s[i] != '>' {
			return nil, pt, false
		}
		i++
		if i+1 < len(s) && s[i] == '1' && s[i+1] == ' ' {
			return p.rfc5424(s[i+2:])
		}
		// RFC 3164 with its priority.
		return p.rfc3164(s[i:])
	}
	if _, isMonth := monthAbbr(s); isMonth && len(s) > 16 && s[3] == ' ' {
		return p.rfc3164(s)
	}
	// rsyslog's RFC 3339 file format: TIMESTAMP HOST TAG: MSG
	if len(s) > 20 && s[4] == '-' && s[10] == 'T' {
		f1, r := nextField(s)
		_, r = nextField(r)
		tag, r := nextField(r)
		if len(tag) > 1 && tag[len(tag)-1] == ':' {
			pt.t, pt.ok = parseISOTime(f1, p.loc)
			pt.bad = !pt.ok
			return r, pt, true
		}
		return nil, pt, false
	}
	// docker compose: SERVICE  | MSG, the service name possibly coloured.
	if r, ok := stripCompose(s); ok {
		return r, pt, true
	}
	return nil, pt, false
}

func (p *keycloakParser) rfc5424(s []byte) (rest []byte, pt prefixTime, ok bool) {
	ts, r := nextField(s)
	_, r = nextField(r) // host
	_, r = nextField(r) // app
	_, r = nextField(r) // procid
	_, r = nextField(r) // msgid
	// structured data: "-" or one or more [id k="v" ...] elements
	switch {
	case len(r) > 0 && r[0] == '-':
		r = r[1:]
	case len(r) > 0 && r[0] == '[':
		i := 0
		for i < len(r) && r[i] == '[' {
			inQuote := false
			for i++; i < len(r); i++ {
				c := r[i]
				if c == '\\' && inQuote {
					i++
					continue
				}
				if c == '"' {
					inQuote = !inQuote
				} else if c == ']' && !inQuote {
					i++
					break
				}
			}
		}
		r = r[i:]
	default:
		return nil, pt, false
	}
	r = trimLeftSpace(r)
	r = bytes.TrimPrefix(r, []byte("\xef\xbb\xbf"))
	if len(ts) == 1 && ts[0] == '-' {
		return r, pt, true
	}
	pt.t, pt.ok = parseISOTime(ts, p.loc)
	pt.bad = !pt.ok
	return r, pt, true
}

func (p *keycloakParser) rfc3164(s []byte) (rest []byte, pt prefixTime, ok bool) {
	if len(s) < 16 || s[3] != ' ' || s[6] != ' ' || s[9] != ':' || s[12] != ':' || s[15] != ' ' {
		return nil, pt, false
	}
	_, r := nextField(s[16:]) // host
	tag, r := nextField(r)
	if len(tag) == 0 || tag[len(tag)-1] != ':' {
		return nil, pt, false
	}
	pt.t, pt.ok = parseSyslogTime(s[:15], p.loc, p.now())
	pt.bad = !pt.ok
	return r, pt, true
}

// stripCompose removes a docker compose prefix "name  | ", with or without
// ANSI colours around the name and bar.
func stripCompose(s []byte) ([]byte, bool) {
	s = skipANSI(s)
	i := 0
	for i < len(s) && isNameChar(s[i]) {
		i++
	}
	j := i
	for j < len(s) && s[j] == ' ' {
		j++
	}
	if i == 0 || j == i {
		return nil, false
	}
	r := skipANSI(s[j:])
	if len(r) == 0 || r[0] != '|' {
		return nil, false
	}
	r = skipANSI(r[1:])
	if len(r) > 0 && r[0] == ' ' {
		r = r[1:]
	}
	return skipANSI(r), true
}

// skipANSI skips ANSI CSI colour sequences at the start of s.
func skipANSI(s []byte) []byte {
	for len(s) > 1 && s[0] == 0x1b && s[1] == '[' {
		i := 2
		for i < len(s) && (s[i] < 0x40 || s[i] > 0x7e) {
			i++
		}
		if i >= len(s) {
			return s
		}
		s = s[i+1:]
	}
	return s
}

func isNameChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.'
}

func isKeyChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.'
}

// looksLikeJSONArray tells a JSON array of objects from text that happens
// to start with '['.
func looksLikeJSONArray(s []byte) bool {
	r := trimLeftSpace(s[1:])
	return len(r) > 0 && (r[0] == '{' || r[0] == ']')
}

// nextField splits off the first space-separated field of s.
func nextField(s []byte) (field, rest []byte) {
	s = trimLeftSpace(s)
	i := bytes.IndexByte(s, ' ')
	if i < 0 {
		return s, nil
	}
	return s[:i], trimLeftSpace(s[i+1:])
}

func trimLeftSpace(s []byte) []byte {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	return s
}

func trimSpace(s []byte) []byte {
	s = trimLeftSpace(s)
	for len(s) > 0 {
		switch s[len(s)-1] {
		case ' ', '\t', '\r', '\n':
			s = s[:len(s)-1]
			continue
		}
		break
	}
	return s
}

// Keycloak's event logger; Quarkus may abbreviate categories (%c{1.}).
var (
	kcCategory      = []byte("[org.keycloak.events]")
	kcCategoryShort = []byte("[o.k.events]")
)

// categorySearch bounds where the logger category may start: it follows
// the timestamp and the level, never the message.
const categorySearch = 96

// parseText parses the jboss-logging text form, s being the line after
// any syslog or compose prefix.
func (p *keycloakParser) parseText(s []byte, pos Position, dst []Event, outer prefixTime) ([]Event, error) {
	var msg, ts []byte
	if hasKVStart(s) {
		msg = s
	} else {
		head := s
		if len(head) > categorySearch {
			head = head[:categorySearch]
		}
		cat := kcCategory
		i := bytes.Index(head, cat)
		if i < 0 {
			cat = kcCategoryShort
			if i = bytes.Index(head, cat); i < 0 {
				return dst, nil
			}
		}
		// Before the category: [timestamp] level.
		before := trimSpace(s[:i])
		j := bytes.LastIndexByte(before, ' ')
		level := before[j+1:]
		if !isLevel(level) {
			return dst, nil
		}
		if j >= 0 {
			ts = trimSpace(before[:j])
		}
		msg = trimLeftSpace(s[i+len(cat):])
		if len(msg) > 0 && msg[0] == '(' {
			k := bytes.Index(msg, []byte(") "))
			if k < 0 {
				return dst, nil
			}
			msg = trimLeftSpace(msg[k+2:])
		}
		if !hasKVStart(msg) {
			return dst, nil
		}
	}
	var ev kcEvent
	switch {
	case len(ts) > 0:
		t, ok := parseISOTime(ts, p.loc)
		if !ok {
			return dst, lineError(pos, p.name, "time", ReasonBadTime, "unparsable timestamp prefix")
		}
		ev.time, ev.hasTime = t, true
	}
	ev.fallback(outer)
	ev.timeField = "time"
	if field, msg := p.parseKV(msg, &ev); field != "" {
		return dst, lineError(pos, p.name, field, ReasonBadSyntax, msg)
	}
	return p.emit(&ev, pos, dst)
}

func hasKVStart(s []byte) bool {
	return bytes.HasPrefix(s, []byte("type=")) || bytes.HasPrefix(s, []byte("operationType="))
}

func isLevel(b []byte) bool {
	switch string(b) {
	case "TRACE", "DEBUG", "INFO", "WARN", "WARNING", "ERROR", "FATAL", "SEVERE", "FINE", "FINER", "FINEST", "CONFIG":
		return true
	}
	return false
}

// parseKV reads the key=value pairs of a jboss-logging event message into
// ev. On a syntax error it returns the field it was reading and a message.
func (p *keycloakParser) parseKV(msg []byte, ev *kcEvent) (field, errMsg string) {
	i := 0
	for i < len(msg) {
		ks := i
		for i < len(msg) && isKeyChar(msg[i]) {
			i++
		}
		if i == ks || i >= len(msg) || msg[i] != '=' {
			return "message", "expected key=value"
		}
		key := msg[ks:i]
		i++
		var val []byte
		if i < len(msg) && (msg[i] == '"' || msg[i] == '\'') {
			q := msg[i]
			j, esc := i+1, false
			for {
				k := bytes.IndexByte(msg[j:], q)
				if k < 0 {
					return string(key), "unterminated quoted value"
				}
				if b := bytes.IndexByte(msg[j:j+k], '\\'); b >= 0 {
					// An escaped character: skip it and look again.
					esc = true
					j += b + 2
					continue
				}
				j += k
				// Old-style single quotes are not escaped, so a quote
				// ends the value only where a new pair or the end follows.
				if q == '"' || j+1 == len(msg) || pairFollows(msg, j+1) {
					break
				}
				j++
			}
			val = msg[i+1 : j]
			if esc && p.wanted(key) {
				val = p.unescapeKV(val)
			}
			i = j + 1
			if i < len(msg) {
				if !pairFollows(msg, i) {
					return string(key), "expected ', ' after quoted value"
				}
				i += 2
				i += len(trimLeftSpaceLen(msg[i:]))
			}
		} else {
			j := i
			for {
				k := bytes.Index(msg[j:], []byte(", "))
				if k < 0 {
					j = len(msg)
					break
				}
				j += k
				if pairFollows(msg, j) {
					break
				}
				j += 2
			}
			val = msg[i:j]
			i = j
			if i < len(msg) {
				i += 2
				i += len(trimLeftSpaceLen(msg[i:]))
			}
		}
		p.assign(ev, key, val)
	}
	return "", ""
}

// trimLeftSpaceLen returns the leading spaces of s.
func trimLeftSpaceLen(s []byte) []byte {
	i := 0
	for i < len(s) && s[i] == ' ' {
		i++
	}
	return s[:i]
}

// pairFollows reports whether msg[i:] is ", " followed by key=.
func pairFollows(msg []byte, i int) bool {
	if i+1 >= len(msg) || msg[i] != ',' || msg[i+1] != ' ' {
		return false
	}
	i += 2
	for i < len(msg) && msg[i] == ' ' {
		i++
	}
	ks := i
	for i < len(msg) && isKeyChar(msg[i]) {
		i++
	}
	return i > ks && i < len(msg) && msg[i] == '='
}

// wanted reports whether the parser keeps the value of key.
func (p *keycloakParser) wanted(key []byte) bool {
	switch string(key) {
	case "type", "operationType", "clientId", "userId", "ipAddress", "error", "scope", "username", "resourceType", "resourcePath":
		return true
	}
	return false
}

func (p *keycloakParser) assign(ev *kcEvent, key, val []byte) {
	switch string(key) {
	case "type":
		ev.typ = val
	case "operationType":
		ev.opType = val
	case "clientId":
		ev.client = val
	case "userId":
		ev.user = val
	case "ipAddress":
		ev.ip = val
	case "error":
		ev.errStr = val
	case "scope":
		ev.scope = val
	case "username":
		ev.username = val
	case "resourceType":
		ev.resType = val
	case "resourcePath":
		ev.resPath = val
	}
}

// unescapeKV undoes the backslash escaping of the quoted style (\" \' \\
// and the \n \r \t of sanitised values), into p.buf.
func (p *keycloakParser) unescapeKV(v []byte) []byte {
	start := len(p.buf)
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c == '\\' && i+1 < len(v) {
			i++
			switch v[i] {
			case 'n':
				c = '\n'
			case 'r':
				c = '\r'
			case 't':
				c = '\t'
			case '"', '\'', '\\':
				c = v[i]
			default:
				p.buf = append(p.buf, '\\')
				c = v[i]
			}
		}
		p.buf = append(p.buf, c)
	}
	return p.buf[start:len(p.buf):len(p.buf)]
}

// str returns the text of a captured JSON string, unescaped into p.buf
// when needed; other kinds give their raw text and null gives nil.
func (p *keycloakParser) str(v jsonValue) []byte {
	switch v.kind {
	case jsonString:
		if !v.esc {
			return v.raw
		}
		start := len(p.buf)
		p.buf = appendJSONUnescaped(p.buf, v.raw)
		return p.buf[start:len(p.buf):len(p.buf)]
	case jsonNumber, jsonTrue, jsonFalse:
		return v.raw
	}
	return nil
}

// parseJSON handles a line that is a JSON object or array of objects.
func (p *keycloakParser) parseJSON(s []byte, pos Position, dst []Event, outer prefixTime, depth int) ([]Event, error) {
	if s[0] == '[' {
		return p.parseJSONArray(s, pos, dst)
	}
	kind, err := p.scan.scan(s)
	if err != nil {
		return dst, wrapLineError(pos, p.name, "", ReasonBadJSON, err)
	}
	if kind != jsonObject {
		return dst, nil
	}
	v := p.scan.vals
	sl := &p.slot
	// docker json-file: {"log":"...\n","stream":"stdout","time":"..."}
	if v[sl.log].kind == jsonString && (v[sl.stream].present() || v[sl.time].kind == jsonString) && depth == 0 {
		inner := p.str(v[sl.log])
		if tv := v[sl.time]; tv.kind == jsonString {
			var pt prefixTime
			pt.t, pt.ok = parseISOTime(p.str(tv), p.loc)
			pt.bad = !pt.ok
			if pt.ok || !outer.ok {
				outer = pt
			}
		}
		return p.parseLine(inner, pos, dst, outer, depth+1)
	}
	// Quarkus JSON logging, plain or ECS.
	if logger := v[sl.loggerName]; logger.present() || v[sl.ecsLogger].present() {
		if !logger.present() {
			logger = v[sl.ecsLogger]
		}
		name := p.str(logger)
		if string(name) != "org.keycloak.events" && string(name) != "o.k.events" {
			return dst, nil
		}
		msg := trimSpace(p.str(v[sl.message]))
		if !hasKVStart(msg) {
			return dst, nil
		}
		tsv, field := v[sl.timestamp], "timestamp"
		if !v[sl.loggerName].present() {
			tsv, field = v[sl.ecsTimestamp], "@timestamp"
		}
		ev := kcEvent{timeField: field}
		switch {
		case tsv.kind == jsonString:
			t, ok := parseISOTime(p.str(tsv), p.loc)
			if !ok {
				return dst, lineError(pos, p.name, field, ReasonBadTime, "unparsable timestamp")
			}
			ev.time, ev.hasTime = t, true
		case tsv.present():
			return dst, lineError(pos, p.name, field, ReasonBadTime, "timestamp is not a string")
		}
		ev.fallback(outer)
		if f, m := p.parseKV(msg, &ev); f != "" {
			return dst, lineError(pos, p.name, f, ReasonBadSyntax, m)
		}
		return p.emit(&ev, pos, dst)
	}
	if !p.isEventObject() {
		return dst, nil
	}
	ev, err := p.jsonEvent(pos, outer)
	if err != nil {
		return dst, err
	}
	return p.emit(&ev, pos, dst)
}

// isEventObject reports whether the scanned object is a Keycloak event or
// admin event rather than some other JSON log record.
func (p *keycloakParser) isEventObject() bool {
	v, sl := p.scan.vals, &p.slot
	if v[sl.opType].kind == jsonString && (v[sl.authClient].present() || v[sl.realmID].present()) {
		return true
	}
	return v[sl.typ].kind == jsonString && (v[sl.realmID].present() || v[sl.clientID].present())
}

// jsonEvent reads the structured event captured by the scanner.
func (p *keycloakParser) jsonEvent(pos Position, outer prefixTime) (kcEvent, error) {
	v, sl := p.scan.vals, &p.slot
	ev := kcEvent{
		typ:      p.str(v[sl.typ]),
		opType:   p.str(v[sl.opType]),
		resType:  p.str(v[sl.resType]),
		resPath:  p.str(v[sl.resPath]),
		client:   p.str(v[sl.clientID]),
		user:     p.str(v[sl.userID]),
		ip:       p.str(v[sl.ipAddress]),
		errStr:   p.str(v[sl.errorKey]),
		scope:    p.str(v[sl.scope]),
		username: p.str(v[sl.username]),
	}
	if len(ev.opType) > 0 {
		ev.client = p.str(v[sl.authClient])
		ev.user = p.str(v[sl.authUser])
		ev.ip = p.str(v[sl.authIP])
	}
	ev.timeField = "time"
	tv := v[sl.time]
	switch tv.kind {
	case jsonNumber:
		t, ok := parseEpoch(tv.raw, int64(time.Millisecond))
		if !ok {
			return ev, lineError(pos, p.name, "time", ReasonBadTime, "unparsable epoch milliseconds")
		}
		ev.time, ev.hasTime = t, true
	case jsonString:
		b := p.str(tv)
		t, ok := parseEpoch(b, int64(time.Millisecond))
		if !ok {
			t, ok = parseISOTime(b, p.loc)
		}
		if !ok {
			return ev, lineError(pos, p.name, "time", ReasonBadTime, "unparsable time")
		}
		ev.time, ev.hasTime = t, true
	case jsonAbsent, jsonNull:
		ev.fallback(outer)
	default:
		return ev, lineError(pos, p.name, "time", ReasonBadTime, "time is not a number")
	}
	return ev, nil
}

// parseJSONArray handles the admin REST API's answer: an array of events
// on one line, each element counting on its own.
func (p *keycloakParser) parseJSONArray(s []byte, pos Position, dst []Event) ([]Event, error) {
	return eachRecord(&p.scan, s, pos, p.name, dst, func(d []Event) ([]Event, error) {
		if !p.isEventObject() {
			return d, SkipOtherLogger
		}
		ev, err := p.jsonEvent(pos, prefixTime{})
		if err != nil {
			return d, err
		}
		return p.emit(&ev, pos, d)
	})
}

// kcTokenTypes are the event types that issue tokens.
func isTokenType(t []byte) bool {
	switch string(t) {
	case "CODE_TO_TOKEN", "CLIENT_LOGIN", "REFRESH_TOKEN", "TOKEN_EXCHANGE",
		"OAUTH2_DEVICE_CODE_TO_TOKEN", "PERMISSION_TOKEN", "AUTHREQID_TO_TOKEN":
		return true
	}
	return false
}

// nonNull treats Keycloak's literal "null" (a Java null appended to the
// message) as absent.
func nonNull(b []byte) []byte {
	if string(b) == "null" {
		return nil
	}
	return b
}

// emit maps a read event to zero or one Event.
func (p *keycloakParser) emit(ev *kcEvent, pos Position, dst []Event) ([]Event, error) {
	var kind Kind
	typ := ev.typ
	switch {
	case len(ev.opType) > 0:
		kind = KindAdmin
	case len(typ) == 0:
		return dst, lineError(pos, p.name, "type", ReasonNoType, "event without a type")
	case isTokenType(typ):
		kind = KindGrant
	case bytes.HasSuffix(typ, []byte("_ERROR")):
		kind = KindDeny
		if len(nonNull(ev.client)) == 0 && !isTokenType(typ[:len(typ)-len("_ERROR")]) {
			return dst, nil // a failed login with no client to attribute it to
		}
	default:
		return dst, nil // authentication and other events grant nothing
	}
	if ev.badTime {
		return dst, lineError(pos, p.name, "time", ReasonBadTime, "unparsable timestamp in the line's header")
	}
	if !ev.hasTime {
		return dst, lineError(pos, p.name, ev.timeField, ReasonNoTime, "event without a time")
	}
	client := nonNull(ev.client)
	if kind == KindGrant && len(client) == 0 {
		return dst, lineError(pos, p.name, "clientId", ReasonNoClient, "token event without a client")
	}
	var ip = nonNull(ev.ip)
	e := Event{
		Time:   ev.time,
		Source: pos.Source,
		Kind:   kind,
		Client: p.strs.bytes(client),
		Reason: p.strs.bytes(nonNull(ev.errStr)),
		Pos:    pos,
	}
	if e.Source == "" {
		e.Source = p.name
	}
	if len(ip) > 0 {
		a, ok := parseIP(ip)
		if !ok {
			return dst, lineError(pos, p.name, "ipAddress", ReasonBadField, "unparsable IP address")
		}
		e.IP = a
	}
	if user := nonNull(ev.user); len(user) > 0 {
		e.Subject = p.strs.bytes(user)
	} else {
		e.Subject = p.strs.bytes(nonNull(ev.username))
	}
	switch kind {
	case KindAdmin:
		e.Type = p.adminType(ev)
		e.Path = string(nonNull(ev.resPath))
	case KindGrant:
		e.Type = p.strs.bytes(typ)
		e.Granted = p.scopes.split(nonNull(ev.scope))
	case KindDeny:
		e.Type = p.strs.bytes(typ)
		e.Requested = p.scopes.split(nonNull(ev.scope))
	}
	return append(dst, e), nil
}

// adminType names an admin event RESOURCE_OPERATION (CLIENT_UPDATE), in the
// style of Keycloak's own event types, or OPERATION when the resource type
// is not logged (before Keycloak 4).
func (p *keycloakParser) adminType(ev *kcEvent) string {
	rt := nonNull(ev.resType)
	if len(rt) == 0 {
		return p.strs.bytes(ev.opType)
	}
	start := len(p.buf)
	p.buf = append(p.buf, rt...)
	p.buf = append(p.buf, '_')
	p.buf = append(p.buf, ev.opType...)
	return p.strs.bytes(p.buf[start:])
}

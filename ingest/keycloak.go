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
	scan   jsonScanner
	slot   kcSlots
	buf    []byte // unescaped strings of the current line
	strs   interner
	scopes scopeLists
}

var _ Parser = (*keycloakParser)(nil)

// The advice for a Keycloak log that holds none of its events: by default
// Keycloak logs the successful ones at DEBUG, below what the server writes.
const keycloakDebugHint = "success events are logged at DEBUG: raise the org.keycloak.events category " +
	"(or --spi-events-listener-jboss-logging-success-level=info)"

// kcSlots are the capture slots of the keys the parser reads from JSON.
type kcSlots struct {
	time, timestamp, ecsTimestamp, loggerName, ecsLogger, message int
	typ, realmID, clientID, userID, ipAddress, errorKey           int
	scope, username, flatScope, flatUsername                      int
	reason, flatReason                                            int
	opType, resType, resPath, authClient, authUser, authIP        int
}

func newKeycloakParser(src rules.Source) (*keycloakParser, error) {
	loc, err := loadZone(src)
	if err != nil {
		return nil, err
	}
	p := newJSONPaths()
	s := kcSlots{
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
		flatScope:    p.add("scope"),
		flatUsername: p.add("username"),
		reason:       p.add("details", "reason"),
		flatReason:   p.add("reason"),
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
		scan: newJSONScanner(p),
		slot: s,
	}, nil
}

// kcEvent is one Keycloak event as read from a line, before mapping.
type kcEvent struct {
	typ, opType, resType, resPath []byte
	client, user, ip, errStr      []byte
	realm                         []byte
	scope, username               []byte
	reason                        []byte // the reason detail of an error
	time                          time.Time
	hasTime                       bool
	badTime                       bool   // only a header's unparsable time was found
	timeField                     string // where the time came from, for errors
}

// fallback uses the wrappers' time when the event carries none.
func (ev *kcEvent) fallback(w wrapTime) {
	if ev.hasTime {
		return
	}
	if w.ok {
		ev.time, ev.hasTime = w.t, true
	} else if w.bad {
		ev.badTime = true
	}
}

// Parse implements Parser, for a line without wrappers.
func (p *keycloakParser) Parse(line []byte, pos Position, dst []Event) ([]Event, error) {
	return p.parseWrapped(line, pos, wrapTime{}, dst)
}

// parseWrapped implements wrappedParser: line is what the wrappers held,
// and wt their time.
func (p *keycloakParser) parseWrapped(line []byte, pos Position, wt wrapTime, dst []Event) ([]Event, error) {
	p.buf = p.buf[:0]
	s := trimSpace(line)
	switch {
	case len(s) == 0:
		return dst, SkipBlank
	case s[0] == '{':
		return p.parseJSON(s, pos, dst, wt)
	case s[0] == '[' && looksLikeJSONArray(s):
		return p.parseJSONArray(s, pos, dst)
	}
	return p.parseText(s, pos, dst, wt)
}

// looksLikeJSONArray tells a JSON array of objects from text that happens
// to start with '['.
func looksLikeJSONArray(s []byte) bool {
	r := trimLeftSpace(s[1:])
	return len(r) > 0 && (r[0] == '{' || r[0] == ']')
}

func isKeyChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.'
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
const (
	kcCategory      = "org.keycloak.events"
	kcCategoryShort = "o.k.events"
)

// jbossLine is a line of the jboss-logging text format,
// "[timestamp] LEVEL [category] (thread) message", split up.
type jbossLine struct {
	ts, category, msg []byte
}

// splitJBoss reads the header of a jboss-logging text line: an optional
// timestamp of up to two fields (a date and a time, an ISO-8601 time, or a
// time of day alone), a level, and the logger category in brackets, then
// an optional (thread). The header is read field by field, so nothing but
// its shape decides whether a line is one.
func splitJBoss(s []byte) (jbossLine, bool) {
	rest := s
	for k := 0; k < 3; k++ {
		f, r := nextField(rest)
		if len(f) == 0 {
			return jbossLine{}, false
		}
		if isLevel(f) && len(r) > 1 && r[0] == '[' {
			end := bytes.IndexByte(r, ']')
			if end < 0 {
				return jbossLine{}, false
			}
			l := jbossLine{ts: trimSpace(s[:len(s)-len(rest)]), category: r[1:end]}
			msg := trimLeftSpace(r[end+1:])
			if len(msg) > 0 && msg[0] == '(' {
				if t := bytes.Index(msg, []byte(") ")); t >= 0 {
					msg = msg[t+2:]
				} else if msg[len(msg)-1] == ')' {
					msg = nil
				}
			}
			l.msg = trimLeftSpace(msg)
			return l, true
		}
		rest = r
	}
	return jbossLine{}, false
}

// isContinuation reports whether s continues a multi-line record: a stack
// trace's frames, its "Caused by" and "... N more", or its suppressed
// exceptions. s is trimmed of its spaces, here and by the wrappers before
// (a journald or syslog payload loses its indentation), so a frame is
// told by its words, not by its indentation: an indented line of free
// text is another logger's.
func isContinuation(s []byte) bool {
	return bytes.HasPrefix(s, []byte("at ")) || bytes.HasPrefix(s, []byte("Caused by: ")) ||
		bytes.HasPrefix(s, []byte("... ")) || bytes.HasPrefix(s, []byte("Suppressed: "))
}

// parseText parses the jboss-logging text form, s being the line after
// its wrappers. The event may be the message of Keycloak's event logger,
// the key=value message of any other logger (an event listener of one's
// own), or a JSON event object after a text prefix ("EVENT::{...}").
func (p *keycloakParser) parseText(s []byte, pos Position, dst []Event, wt wrapTime) ([]Event, error) {
	var msg, ts []byte
	eventsLogger := false
	if hasKVStart(s) {
		msg, eventsLogger = s, true
	} else if l, ok := splitJBoss(s); ok {
		ts, msg = l.ts, l.msg
		eventsLogger = string(l.category) == kcCategory || string(l.category) == kcCategoryShort
	} else {
		if i := bytes.IndexByte(s, '{'); i >= 0 {
			if evs, err, ok := p.embeddedJSON(s[i:], pos, dst, wt); ok {
				return evs, err
			}
		}
		if isContinuation(s) {
			return dst, SkipContinuation
		}
		return dst, SkipOtherLogger
	}
	ht, herr := p.headerTime(ts, wt, pos)
	if !hasKVStart(msg) {
		if i := bytes.IndexByte(msg, '{'); i >= 0 {
			// The event's own time first, else the header's (dated by the
			// wrappers), else the wrappers'.
			tw := wt
			if ht.ok || herr != nil {
				tw = ht
			}
			if evs, err, ok := p.embeddedJSON(msg[i:], pos, dst, tw); ok {
				if herr != nil && err != nil {
					if pe, isPE := err.(*ParseError); isPE && pe.Reason == ReasonNoTime {
						return dst, herr // the header's time is why there is none
					}
				}
				return evs, err
			}
		}
		if eventsLogger {
			return dst, SkipOtherEvent // the event logger's own notices
		}
		return dst, SkipOtherLogger
	}
	if herr != nil {
		if !eventsLogger && !p.kvIsEvent(msg) {
			return dst, SkipOtherLogger
		}
		return dst, herr
	}
	var ev kcEvent
	ev.timeField = "time"
	if ht.ok {
		ev.time, ev.hasTime = ht.t, true
	}
	ev.fallback(wt)
	if field, m := p.parseKV(msg, &ev); field != "" {
		if !eventsLogger {
			return dst, SkipOtherLogger // another logger's text that only looks like pairs
		}
		return dst, lineError(pos, p.name, field, ReasonBadSyntax, m)
	}
	if !eventsLogger && len(nonNull(ev.realm)) == 0 && len(nonNull(ev.client)) == 0 {
		return dst, SkipOtherLogger
	}
	return p.emit(&ev, pos, dst)
}

// headerTime reads the time of a jboss-logging header: a date and time,
// or a time of day dated by the wrappers' time (see timeOfDay.date). It is
// zero for a header without a time, and an error when the time does not
// parse or no wrapper gives a time of day its date.
func (p *keycloakParser) headerTime(ts []byte, wt wrapTime, pos Position) (wrapTime, error) {
	if len(ts) == 0 {
		return wrapTime{}, nil
	}
	if t, ok := parseISOTime(ts, p.loc); ok {
		return wrapTime{t: t, ok: true}, nil
	}
	tod, ok := parseTimeOfDay(ts)
	if !ok {
		return wrapTime{}, lineError(pos, p.name, "time", ReasonBadTime, "unparsable timestamp prefix")
	}
	if !wt.ok {
		return wrapTime{}, lineError(pos, p.name, "time", ReasonNoDate,
			"time of day without a date, and no wrapper (docker, journald, syslog) gives one: log the date too (%d{yyyy-MM-dd HH:mm:ss,SSS}) or keep the wrapper")
	}
	return wrapTime{t: tod.date(wt.t, p.loc), ok: true}, nil
}

// kvIsEvent reports whether a key=value message of another logger names
// a realm or client, as an event does.
func (p *keycloakParser) kvIsEvent(msg []byte) bool {
	return bytes.Contains(msg, []byte("realmId=")) || bytes.Contains(msg, []byte("clientId="))
}

// embeddedJSON reads s, the text from a '{' in a text line, as a JSON
// event object. ok is false when s is no Keycloak event (not JSON, or
// another record), so that the line is judged as text.
func (p *keycloakParser) embeddedJSON(s []byte, pos Position, dst []Event, wt wrapTime) ([]Event, error, bool) {
	kind, err := p.scan.scan(s)
	if err != nil || kind != jsonObject || !p.isEventObject() {
		return dst, nil, false
	}
	ev, err := p.jsonEvent(pos, wt)
	if err != nil {
		return dst, err, true
	}
	evs, err := p.emit(&ev, pos, dst)
	return evs, err, true
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
	for len(msg) > 0 && (msg[len(msg)-1] == ',' || msg[len(msg)-1] == ' ') {
		msg = msg[:len(msg)-1] // a trailing separator, as some listeners write
	}
	if eq := bytes.IndexByte(msg, '='); eq >= 0 && eq+2 < len(msg) && msg[eq+1] == '\\' && msg[eq+2] == '"' {
		// Every quote escaped, as a shipper that escapes the message
		// writes it: read it as the quoted style.
		msg = p.unescapeQuotes(msg)
	}
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
				// Skip the escaped characters before that quote, without
				// searching for it again after each (which made a value
				// of many escapes quadratic); the last may escape it.
				end := j + k
				for j < end {
					b := bytes.IndexByte(msg[j:end], '\\')
					if b < 0 {
						break
					}
					esc = true
					j += b + 2
				}
				if j > end {
					continue // the quote was escaped: look for the next
				}
				j = end
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
	case "type", "operationType", "clientId", "realmId", "userId", "ipAddress", "error", "scope", "username", "resourceType", "resourcePath", "reason":
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
	case "realmId":
		ev.realm = val
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
	case "reason":
		ev.reason = val
	}
}

// unescapeQuotes turns the \" of msg into ", into p.buf.
func (p *keycloakParser) unescapeQuotes(msg []byte) []byte {
	start := len(p.buf)
	for i := 0; i < len(msg); i++ {
		if msg[i] == '\\' && i+1 < len(msg) && (msg[i+1] == '"' || msg[i+1] == '\\') {
			i++
		}
		p.buf = append(p.buf, msg[i])
	}
	return p.buf[start:len(p.buf):len(p.buf)]
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

// parseJSON handles a line that is a JSON object: a Keycloak event from
// a listener or the admin API, or a record of Quarkus JSON logging (plain
// or ECS) whose message is an event.
func (p *keycloakParser) parseJSON(s []byte, pos Position, dst []Event, wt wrapTime) ([]Event, error) {
	kind, err := p.scan.scan(s)
	if err != nil {
		return dst, wrapLineError(pos, p.name, "", ReasonBadJSON, err)
	}
	if kind != jsonObject {
		return dst, SkipOtherLogger
	}
	v := p.scan.vals
	sl := &p.slot
	// An event object, whatever logger (if any) the record names.
	if p.isEventObject() {
		ev, err := p.jsonEvent(pos, wt)
		if err != nil {
			return dst, err
		}
		return p.emit(&ev, pos, dst)
	}
	logger := v[sl.loggerName]
	if !logger.present() {
		logger = v[sl.ecsLogger]
	}
	if !logger.present() && !v[sl.message].present() {
		return dst, SkipOtherLogger
	}
	name := p.str(logger)
	eventsLogger := string(name) == kcCategory || string(name) == kcCategoryShort
	msg := trimSpace(p.str(v[sl.message]))
	if !hasKVStart(msg) {
		if i := bytes.IndexByte(msg, '{'); i >= 0 {
			// A listener that logs its event as JSON text in the message.
			tw := wt
			if t, ok := p.recordTime(); ok {
				tw = wrapTime{t: t, ok: true}
			}
			if evs, err, ok := p.embeddedJSON(msg[i:], pos, dst, tw); ok {
				return evs, err
			}
		}
		if eventsLogger {
			return dst, SkipOtherEvent
		}
		return dst, SkipOtherLogger
	}
	if !eventsLogger && !p.kvIsEvent(msg) {
		return dst, SkipOtherLogger
	}
	tsv, field := v[sl.timestamp], "timestamp"
	if !tsv.present() && v[sl.ecsTimestamp].present() {
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
	ev.fallback(wt)
	if f, m := p.parseKV(msg, &ev); f != "" {
		if !eventsLogger {
			return dst, SkipOtherLogger
		}
		return dst, lineError(pos, p.name, f, ReasonBadSyntax, m)
	}
	return p.emit(&ev, pos, dst)
}

// recordTime is the time of the scanned Quarkus record (timestamp or
// @timestamp), when it has one that parses.
func (p *keycloakParser) recordTime() (time.Time, bool) {
	v, sl := p.scan.vals, &p.slot
	tsv := v[sl.timestamp]
	if !tsv.present() {
		tsv = v[sl.ecsTimestamp]
	}
	if tsv.kind != jsonString {
		return time.Time{}, false
	}
	return parseISOTime(p.str(tsv), p.loc)
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
func (p *keycloakParser) jsonEvent(pos Position, outer wrapTime) (kcEvent, error) {
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
		reason:   p.str(v[sl.reason]),
	}
	// Some listeners write the details at the top level.
	if !v[sl.scope].present() {
		ev.scope = p.str(v[sl.flatScope])
	}
	if !v[sl.reason].present() {
		ev.reason = p.str(v[sl.flatReason])
	}
	if !v[sl.username].present() {
		ev.username = p.str(v[sl.flatUsername])
	}
	// Admin events carry who acted in authDetails; some listeners flatten
	// it beside the event's other keys.
	if len(ev.opType) > 0 && (v[sl.authClient].present() || v[sl.authUser].present() || v[sl.authIP].present()) {
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
		if t, ok := p.recordTime(); ok { // a listener's record of Quarkus JSON logging
			ev.time, ev.hasTime = t, true
		}
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
		ev, err := p.jsonEvent(pos, wrapTime{})
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
			return dst, SkipNoClient // a failed login with no client to attribute it to
		}
	default:
		return dst, SkipOtherEvent // authentication and other events grant nothing
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
		e.Subject = p.strs.subject(user)
	} else {
		e.Subject = p.strs.subject(nonNull(ev.username))
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
		scope := nonNull(ev.scope)
		if list, ok := kcInvalidScopes(ev.reason); ok {
			// Keycloak refuses scopes a client may not have with the
			// error invalid_request and a reason naming the request's
			// scope parameter (the client is answered invalid_scope):
			// the line's only record of them.
			if len(scope) == 0 {
				scope = list
			}
			e.Reason = "invalid_scope"
		}
		e.Requested = p.scopes.split(scope)
	}
	return append(dst, e), nil
}

// kcInvalidScopesReason starts the reason Keycloak logs for a token
// request refused for its scopes ("Invalid scopes: a b").
const kcInvalidScopesReason = "Invalid scopes: "

// kcInvalidScopes returns the scopes a reason detail names: the whole
// scope parameter of the refused request, as Keycloak writes it.
func kcInvalidScopes(reason []byte) ([]byte, bool) {
	if !bytes.HasPrefix(reason, []byte(kcInvalidScopesReason)) {
		return nil, false
	}
	return bytes.TrimSpace(reason[len(kcInvalidScopesReason):]), true
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

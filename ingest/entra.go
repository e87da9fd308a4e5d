package ingest

import (
	"bytes"
	"time"

	"github.com/scopewatch/scopewatch/rules"
)

// entraParser reads Microsoft Entra ID sign-in logs as diagnostic settings
// export them: one record per line (Event Hubs, Log Analytics exports) or
// the {"records": [...]} wrapper written to storage accounts; a JSON array
// of records is accepted too. A sign-in with resultType "0" becomes a
// KindGrant without scopes (the records carry none: they feed geography
// and client activity), any other result a KindDeny. Records of other
// categories (AuditLogs, ...) yield nothing. It is not safe for concurrent
// use.
type entraParser struct {
	name string
	loc  *time.Location
	scan jsonScanner
	slot entraSlots
	buf  []byte // unescaped strings and reasons of the current line
	strs interner
}

var _ Parser = (*entraParser)(nil)

// entraSlots are the capture slots of the record fields the parser reads.
type entraSlots struct {
	records, category, time, created, appID, callerIP, ip, country int
	resultType, resultDesc, errorCode, failureReason, userID       int
}

func newEntraParser(src rules.Source) (Parser, error) {
	loc, err := loadZone(src)
	if err != nil {
		return nil, err
	}
	p := newJSONPaths()
	s := entraSlots{
		records:       p.add("records"),
		category:      p.add("category"),
		time:          p.add("time"),
		created:       p.add("properties", "createdDateTime"),
		appID:         p.add("properties", "appId"),
		callerIP:      p.add("callerIpAddress"),
		ip:            p.add("properties", "ipAddress"),
		country:       p.add("properties", "location", "countryOrRegion"),
		resultType:    p.add("resultType"),
		resultDesc:    p.add("resultDescription"),
		errorCode:     p.add("properties", "status", "errorCode"),
		failureReason: p.add("properties", "status", "failureReason"),
		userID:        p.add("properties", "userId"),
	}
	return &entraParser{name: src.Name, loc: loc, scan: newJSONScanner(p), slot: s}, nil
}

// Parse implements Parser.
func (p *entraParser) Parse(line []byte, pos Position, dst []Event) ([]Event, error) {
	p.buf = p.buf[:0]
	s := trimSpace(line)
	if len(s) == 0 {
		return dst, SkipBlank
	}
	if s[0] != '[' {
		kind, err := p.scan.scan(s)
		if err != nil {
			return dst, wrapLineError(pos, p.name, "", ReasonBadJSON, err)
		}
		if kind != jsonObject {
			return dst, lineError(pos, p.name, "", ReasonBadFormat, "line is neither a record nor a records wrapper")
		}
		rv := p.scan.vals[p.slot.records]
		switch {
		case rv.kind == jsonArray:
			s = rv.raw
		case rv.present():
			return dst, lineError(pos, p.name, "records", ReasonBadField, "records is not an array")
		default:
			return p.record(pos, dst)
		}
	}
	return eachRecord(&p.scan, s, pos, p.name, dst, func(d []Event) ([]Event, error) { return p.record(pos, d) })
}

// record maps the record captured by p.scan to zero or one Event.
func (p *entraParser) record(pos Position, dst []Event) ([]Event, error) {
	v, sl := p.scan.vals, &p.slot
	cat, ok := idpText(&p.buf, v[sl.category])
	if !ok {
		return dst, lineError(pos, p.name, "category", ReasonBadField, "category is not a string")
	}
	if len(cat) == 0 {
		return dst, lineError(pos, p.name, "category", ReasonNoType, "record without a category")
	}
	field, tv := "time", v[sl.time]
	if !tv.present() {
		field, tv = "properties.createdDateTime", v[sl.created]
	}
	var t time.Time
	switch tv.kind {
	case jsonAbsent, jsonNull:
		return dst, lineError(pos, p.name, "time", ReasonNoTime, "record without a time")
	case jsonString:
		b, _ := idpText(&p.buf, tv)
		if t, ok = parseISOTime(b, p.loc); !ok {
			t, ok = parseUSTime(b)
		}
		if !ok && field == "time" && v[sl.created].kind == jsonString {
			// The record's own creation time, when the export's is unreadable.
			c, _ := idpText(&p.buf, v[sl.created])
			t, ok = parseISOTime(c, p.loc)
		}
		if !ok {
			return dst, lineError(pos, p.name, field, ReasonBadTime, "unparsable or impossible time")
		}
	default:
		return dst, lineError(pos, p.name, field, ReasonBadTime, "time is not a string")
	}
	// SignInLogs, NonInteractiveUserSignInLogs, ServicePrincipalSignInLogs,
	// ManagedIdentitySignInLogs, ...: every sign-in category ends so.
	if !bytes.HasSuffix(cat, []byte("SignInLogs")) {
		return dst, SkipOtherEvent
	}
	e := Event{Time: t, Source: pos.Source, Type: p.strs.bytes(cat), Pos: pos}
	if e.Source == "" {
		e.Source = p.name
	}
	if e.Kind, e.Reason, ok = p.outcome(); !ok {
		return dst, lineError(pos, p.name, "resultType", ReasonBadField, "resultType or status.errorCode is neither a string nor a number")
	}
	if e.Kind == KindUnknown {
		return dst, SkipUndecided // no result: neither a grant nor a refusal
	}
	client, ok := idpText(&p.buf, v[sl.appID])
	if !ok {
		return dst, lineError(pos, p.name, "properties.appId", ReasonBadField, "appId is not a string")
	}
	if e.Kind == KindGrant && len(client) == 0 {
		return dst, lineError(pos, p.name, "properties.appId", ReasonNoClient, "sign-in without an appId")
	}
	e.Client = p.strs.bytes(client)
	user, ok := idpText(&p.buf, v[sl.userID])
	if !ok {
		return dst, lineError(pos, p.name, "properties.userId", ReasonBadField, "userId is not a string")
	}
	e.Subject = p.strs.subject(user)
	iv := v[sl.callerIP]
	if !iv.present() || (iv.kind == jsonString && len(iv.raw) == 0) {
		iv = v[sl.ip]
	}
	// The address and the country are optional, as in the other
	// identity providers' records.
	idpPlace(&p.buf, &e, iv, v[sl.country], countryLookup)
	return append(dst, e), nil
}

// outcome reads resultType ("0" is success), else status.errorCode (0 is
// success). A failure's reason is the code and its description,
// "50126: Error validating credentials ...". ok is false when the code
// is neither a string nor a number; a record with neither field gives
// KindUnknown.
func (p *entraParser) outcome() (kind Kind, reason string, ok bool) {
	v, sl := p.scan.vals, &p.slot
	code, desc := v[sl.resultType], v[sl.resultDesc]
	if !code.present() || (code.kind == jsonString && len(code.raw) == 0) {
		code, desc = v[sl.errorCode], v[sl.failureReason]
	}
	var c []byte
	switch code.kind {
	case jsonAbsent, jsonNull:
		return KindUnknown, "", true
	case jsonString:
		c, _ = idpText(&p.buf, code)
	case jsonNumber:
		c = code.raw
	default:
		return KindUnknown, "", false
	}
	if string(c) == "0" {
		return KindGrant, "", true
	}
	d, ok := idpText(&p.buf, desc)
	if !ok || len(d) == 0 {
		return KindDeny, p.strs.bytes(c), true
	}
	start := len(p.buf)
	p.buf = append(p.buf, c...)
	p.buf = append(p.buf, ": "...)
	p.buf = append(p.buf, d...)
	return KindDeny, p.strs.bytes(p.buf[start:]), true
}

// parseUSTime reads the en-US time some Azure exports write in "time",
// "11/14/2025 1:48:53 AM": month/day/year, a 12-hour clock, in UTC.
func parseUSTime(b []byte) (time.Time, bool) {
	t, err := time.Parse("1/2/2006 3:04:05 PM", string(b))
	if err != nil {
		return time.Time{}, false
	}
	return t, true
}

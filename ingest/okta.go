package ingest

import (
	"bytes"
	"net/netip"
	"strings"
	"time"

	"github.com/scopewatch/scopewatch/rules"
)

// oktaParser reads the Okta System Log: one LogEvent object per line (event
// hooks, log shippers) or a line holding the JSON array that
// GET /api/v1/logs returns. OAuth authorize and token-grant events of the
// org and custom authorization servers become KindGrant when their outcome
// is SUCCESS or ALLOW and KindDeny when it is FAILURE or DENY; every other
// event yields nothing. It is not safe for concurrent use.
type oktaParser struct {
	name   string
	loc    *time.Location
	scan   jsonScanner
	sub    jsonScanner // items of target[] and request.ipChain[]
	slot   oktaSlots
	sslot  oktaSubSlots
	buf    []byte // unescaped strings of the current line
	strs   interner
	scopes scopeLists // comma-separated lists
}

var _ Parser = (*oktaParser)(nil)

// oktaSlots are the capture slots of the LogEvent fields the parser reads.
type oktaSlots struct {
	eventType, published, actorID, actorType, clientID, clientIP, country int
	ipChain, target, result, reason, requested, granted, userID           int
	// data.events of an event hook's delivery
	hookEvents int
}

// oktaSubSlots are the capture slots inside array items.
type oktaSubSlots struct {
	typ, id, ip, country int
}

func newOktaParser(src rules.Source) (Parser, error) {
	loc, err := loadZone(src)
	if err != nil {
		return nil, err
	}
	p := newJSONPaths()
	s := oktaSlots{
		eventType:  p.add("eventType"),
		hookEvents: p.add("data", "events"),
		published:  p.add("published"),
		actorID:    p.add("actor", "id"),
		actorType:  p.add("actor", "type"),
		clientID:   p.add("client", "id"),
		clientIP:   p.add("client", "ipAddress"),
		country:    p.add("client", "geographicalContext", "country"),
		ipChain:    p.add("request", "ipChain"),
		target:     p.add("target"),
		result:     p.add("outcome", "result"),
		reason:     p.add("outcome", "reason"),
		requested:  p.add("debugContext", "debugData", "requestedScopes"),
		granted:    p.add("debugContext", "debugData", "grantedScopes"),
		userID:     p.add("debugContext", "debugData", "userId"),
	}
	sp := newJSONPaths()
	ss := oktaSubSlots{
		typ: sp.add("type"), id: sp.add("id"), ip: sp.add("ip"),
		country: sp.add("geographicalContext", "country"),
	}
	return &oktaParser{
		name:  src.Name,
		loc:   loc,
		scan:  newJSONScanner(p),
		sub:   newJSONScanner(sp),
		slot:  s,
		sslot: ss,
	}, nil
}

// Parse implements Parser.
func (p *oktaParser) Parse(line []byte, pos Position, dst []Event) ([]Event, error) {
	p.buf = p.buf[:0]
	s := trimSpace(line)
	if len(s) == 0 {
		return dst, SkipBlank
	}
	record := func(d []Event) ([]Event, error) { return p.event(pos, d) }
	if s[0] == '[' {
		return eachRecord(&p.scan, s, pos, p.name, dst, record)
	}
	kind, err := p.scan.scan(s)
	if err != nil {
		return dst, wrapLineError(pos, p.name, "", ReasonBadJSON, err)
	}
	if kind != jsonObject {
		return dst, lineError(pos, p.name, "", ReasonBadFormat, "line is neither a LogEvent object nor an array of them")
	}
	if v := p.scan.vals; v[p.slot.hookEvents].kind == jsonArray {
		if typ, _ := idpText(&p.buf, v[p.slot.eventType]); string(typ) == oktaEventHook {
			// An event hook's delivery, as a receiver that logs the body
			// writes it: its LogEvents are data.events.
			events := v[p.slot.hookEvents].raw
			return eachRecord(&p.scan, events, pos, p.name, dst, record)
		}
	}
	return p.event(pos, dst)
}

// oktaEventHook is the eventType of an event hook's delivery, whose
// data.events holds the LogEvents (Okta's event hooks).
const oktaEventHook = "com.okta.event_hook"

// oktaOAuthType says what an event type of the org (app.oauth2.*) or a
// custom (app.oauth2.as.*) authorization server is to scopewatch.
type oktaOAuthType uint8

const (
	oktaOther oktaOAuthType = iota
	// oktaToken: a token issued, or refused, as the outcome says: an
	// authorization code, a token grant, an implicit flow's tokens (which
	// /authorize issues). The bare ...token.grant types are the failure
	// variants.
	oktaToken
	// oktaScopeDenied: scopes a policy refused at /authorize. The bare
	// app.oauth2.[as.]authorize event stays another event: whether its
	// FAILURE repeats a scope_denied of the same request is not
	// documented, and a refusal counted twice would double probing.
	oktaScopeDenied
)

func oktaOAuthTypeOf(t []byte) oktaOAuthType {
	switch string(t) {
	case "app.oauth2.authorize.code", "app.oauth2.as.authorize.code",
		"app.oauth2.authorize.implicit.access_token", "app.oauth2.as.authorize.implicit.access_token",
		"app.oauth2.authorize.implicit.id_token", "app.oauth2.as.authorize.implicit.id_token",
		"app.oauth2.token.grant", "app.oauth2.as.token.grant":
		return oktaToken
	case "app.oauth2.as.authorize.scope_denied":
		return oktaScopeDenied
	}
	for _, prefix := range [...]string{"app.oauth2.token.grant.", "app.oauth2.as.token.grant."} {
		if len(t) > len(prefix) && string(t[:len(prefix)]) == prefix {
			return oktaToken
		}
	}
	return oktaOther
}

// event maps the LogEvent captured by p.scan to zero or one Event.
func (p *oktaParser) event(pos Position, dst []Event) ([]Event, error) {
	v, sl := p.scan.vals, &p.slot
	typ, ok := idpText(&p.buf, v[sl.eventType])
	if !ok {
		return dst, lineError(pos, p.name, "eventType", ReasonBadField, "eventType is not a string")
	}
	if len(typ) == 0 {
		return dst, lineError(pos, p.name, "eventType", ReasonNoType, "event without an eventType")
	}
	// The time is checked on every event, not only the OAuth ones: a log
	// whose times are broken should be counted as malformed, not as quiet.
	t, err := p.time(pos, v[sl.published])
	if err != nil {
		return dst, err
	}
	oauth := oktaOAuthTypeOf(typ)
	if oauth == oktaOther {
		return dst, SkipOtherEvent
	}
	res, ok := idpText(&p.buf, v[sl.result])
	if !ok {
		return dst, lineError(pos, p.name, "outcome.result", ReasonBadField, "outcome.result is not a string")
	}
	var kind Kind
	switch string(res) {
	case "SUCCESS", "ALLOW":
		kind = KindGrant
	case "FAILURE", "DENY":
		kind = KindDeny
	default:
		return dst, SkipUndecided // UNKNOWN, CHALLENGE, SKIPPED, ...: nothing was decided
	}
	if oauth == oktaScopeDenied {
		kind = KindDeny
	}
	e := Event{Time: t, Source: pos.Source, Kind: kind, Type: p.strs.bytes(typ), Pos: pos}
	if e.Source == "" {
		e.Source = p.name
	}

	actorType, ok := idpText(&p.buf, v[sl.actorType])
	if !ok {
		return dst, lineError(pos, p.name, "actor.type", ReasonBadField, "actor.type is not a string")
	}
	client, clientField, err := p.client(pos, isOktaAppActor(actorType))
	if err != nil {
		return dst, err
	}
	if kind == KindGrant && len(client) == 0 {
		return dst, lineError(pos, p.name, clientField, ReasonNoClient, "grant without a client")
	}
	e.Client = p.strs.bytes(client)

	if e.Subject, err = p.subject(pos); err != nil {
		return dst, err
	}
	var readable bool
	if e.IP, readable = p.ip(); !readable {
		e.Dropped |= FieldIP
	}
	// The country is optional: a value that is no string or names no
	// country Okta's geography uses is left out and counted. Without
	// client.geographicalContext (a client-credentials grant), the
	// address's entry of request.ipChain has it.
	country, ok := idpText(&p.buf, v[sl.country])
	if ok && !v[sl.country].present() {
		country, ok = p.chainCountry(e.IP)
	}
	if e.Country, readable = countryLookup(country); !ok || !readable {
		e.Country = ""
		e.Dropped |= FieldCountry
	}

	req, ok := idpText(&p.buf, v[sl.requested])
	if !ok {
		return dst, lineError(pos, p.name, "debugContext.debugData.requestedScopes", ReasonBadField, "requestedScopes is not a string")
	}
	e.Requested = p.scopeList(req)
	switch kind {
	case KindGrant:
		granted, ok := idpText(&p.buf, v[sl.granted])
		if !ok {
			return dst, lineError(pos, p.name, "debugContext.debugData.grantedScopes", ReasonBadField, "grantedScopes is not a string")
		}
		e.Granted = p.scopeList(granted)
	case KindDeny:
		reason, ok := idpText(&p.buf, v[sl.reason])
		if !ok {
			return dst, lineError(pos, p.name, "outcome.reason", ReasonBadField, "outcome.reason is not a string")
		}
		e.Reason = p.strs.bytes(reason)
	}
	return append(dst, e), nil
}

// time reads published, an ISO-8601 string.
func (p *oktaParser) time(pos Position, v jsonValue) (time.Time, error) {
	switch v.kind {
	case jsonAbsent, jsonNull:
		return time.Time{}, lineError(pos, p.name, "published", ReasonNoTime, "event without a published time")
	case jsonString:
		b, _ := idpText(&p.buf, v)
		if t, ok := parseISOTime(b, p.loc); ok {
			return t, nil
		}
		return time.Time{}, lineError(pos, p.name, "published", ReasonBadTime, "unparsable or impossible published time")
	}
	return time.Time{}, lineError(pos, p.name, "published", ReasonBadTime, "published is not a string")
}

// subject returns the id of the first target of type User, else
// debugData.userId.
func (p *oktaParser) subject(pos Position) (string, error) {
	v, sl := p.scan.vals, &p.slot
	var user []byte
	switch tv := v[sl.target]; tv.kind {
	case jsonAbsent, jsonNull:
	case jsonArray:
		bad := false
		arrayElems(tv.raw, func(el jsonValue) bool {
			if el.kind != jsonObject {
				return true
			}
			if _, err := p.sub.scan(el.raw); err != nil {
				bad = true
				return false
			}
			typ, ok1 := idpText(&p.buf, p.sub.vals[p.sslot.typ])
			if !ok1 || string(typ) != "User" {
				return true
			}
			id, ok2 := idpText(&p.buf, p.sub.vals[p.sslot.id])
			if !ok2 {
				bad = true
				return false
			}
			user = id
			return len(user) == 0
		})
		if bad {
			return "", lineError(pos, p.name, "target", ReasonBadField, "target of type User has an id that is not a string")
		}
	default:
		return "", lineError(pos, p.name, "target", ReasonBadField, "target is not an array")
	}
	if len(user) == 0 {
		var ok bool
		if user, ok = idpText(&p.buf, v[sl.userID]); !ok {
			return "", lineError(pos, p.name, "debugContext.debugData.userId", ReasonBadField, "userId is not a string")
		}
	}
	return p.strs.subject(user), nil
}

// ip returns client.ipAddress, else the first address of
// request.ipChain (the client's, then the proxies'). Both are optional:
// readable is false when one of them was given but could not be read (not
// a string or an array of objects, an unparsable or unspecified address)
// and no address was found, so the event keeps no IP and counts it as
// dropped.
func (p *oktaParser) ip() (a netip.Addr, readable bool) {
	v, sl := p.scan.vals, &p.slot
	readable = true
	b, ok := idpText(&p.buf, v[sl.clientIP])
	if !ok {
		readable = false
	} else if len(b) > 0 {
		if a, ok = parseClientIP(b); ok {
			return a, true
		}
		readable = false
	}
	switch cv := v[sl.ipChain]; cv.kind {
	case jsonAbsent, jsonNull:
	case jsonArray:
		arrayElems(cv.raw, func(el jsonValue) bool {
			if el.kind != jsonObject {
				readable = false
				return true
			}
			if _, err := p.sub.scan(el.raw); err != nil {
				readable = false
				return true
			}
			ipb, ok := idpText(&p.buf, p.sub.vals[p.sslot.ip])
			if !ok {
				readable = false
				return true
			}
			if len(ipb) == 0 {
				return true
			}
			if a, ok = parseClientIP(ipb); ok {
				return false
			}
			readable = false
			return true
		})
	default:
		readable = false
	}
	if a.IsValid() {
		return a, true
	}
	return netip.Addr{}, readable
}

// chainCountry returns the country of addr's entry in request.ipChain;
// ok is false when that entry's country is there but no string.
func (p *oktaParser) chainCountry(addr netip.Addr) (country []byte, ok bool) {
	cv := p.scan.vals[p.slot.ipChain]
	if cv.kind != jsonArray || !addr.IsValid() {
		return nil, true
	}
	ok = true
	arrayElems(cv.raw, func(el jsonValue) bool {
		if el.kind != jsonObject {
			return true
		}
		if _, err := p.sub.scan(el.raw); err != nil {
			return true
		}
		ipb, good := idpText(&p.buf, p.sub.vals[p.sslot.ip])
		if a, parsed := parseClientIP(ipb); !good || !parsed || a != addr {
			return true
		}
		country, ok = idpText(&p.buf, p.sub.vals[p.sslot.country])
		return false
	})
	return country, ok
}

// parseClientIP parses the address of a client as an identity provider
// logs it. The unspecified addresses (0.0.0.0, ::), which some write for
// an unknown client, are placeholders, not addresses.
func parseClientIP(b []byte) (netip.Addr, bool) {
	a, ok := parseIP(b)
	if !ok || a.IsUnspecified() {
		return netip.Addr{}, false
	}
	return a, true
}

// isOktaAppActor reports whether an actor.type is an app, whose actor.id
// is the OAuth client's id: PublicClientApp (an OIDC app acting for
// itself or a user), PublicClientAppEntity (a service app, as in the
// client-credentials flow) and AppInstance (an app integration; an OIDC
// app's instance id is its client id).
func isOktaAppActor(t []byte) bool {
	switch string(t) {
	case "PublicClientApp", "PublicClientAppEntity", "AppInstance":
		return true
	}
	return false
}

// client returns the OAuth client of the event and the field it came
// from: actor.id when the actor is an app, else (or when an app actor
// has no id) client.id, which Okta documents as the id of the OAuth client
// making the request.
func (p *oktaParser) client(pos Position, app bool) (client []byte, field string, err error) {
	v, sl := p.scan.vals, &p.slot
	if app {
		id, ok := idpText(&p.buf, v[sl.actorID])
		if !ok {
			return nil, "actor.id", lineError(pos, p.name, "actor.id", ReasonBadField, "actor.id is not a string")
		}
		if len(id) > 0 {
			return id, "actor.id", nil
		}
	}
	id, ok := idpText(&p.buf, v[sl.clientID])
	if !ok {
		return nil, "client.id", lineError(pos, p.name, "client.id", ReasonBadField, "client.id is not a string")
	}
	return id, "client.id", nil
}

// scopeList splits Okta's comma+space separated scope list
// ("openid, profile, email"). Only commas separate: the spaces around them
// are trimmed, and nothing else splits a scope.
func (p *oktaParser) scopeList(raw []byte) []string {
	if len(raw) == 0 {
		return nil
	}
	if l, ok := p.scopes.lookup(raw); ok {
		return l
	}
	s := string(raw)
	l := make([]string, 0, bytes.Count(raw, []byte(","))+1)
	for len(s) > 0 {
		item := s
		if i := strings.IndexByte(s, ','); i >= 0 {
			item, s = s[:i], s[i+1:]
		} else {
			s = ""
		}
		for len(item) > 0 && item[0] == ' ' {
			item = item[1:]
		}
		for len(item) > 0 && item[len(item)-1] == ' ' {
			item = item[:len(item)-1]
		}
		if item != "" {
			l = append(l, item)
		}
	}
	if len(l) == 0 {
		l = nil
	}
	return p.scopes.store(raw, l)
}

// idpPlace sets e's address and country from an identity provider's
// values ip and cc, both optional: a value that cannot be read (no string,
// a placeholder, garbage, no country) is left out and counted in
// e.Dropped, and the event is kept. country reads the country's text.
func idpPlace(buf *[]byte, e *Event, ip, cc jsonValue, country func([]byte) (string, bool)) {
	if text, ok := idpText(buf, ip); !ok {
		e.Dropped |= FieldIP
	} else if len(text) > 0 {
		if e.IP, ok = parseClientIP(text); !ok {
			e.Dropped |= FieldIP
		}
	}
	if text, ok := idpText(buf, cc); !ok {
		e.Dropped |= FieldCountry
	} else if len(text) > 0 {
		if e.Country, ok = country(text); !ok {
			e.Dropped |= FieldCountry
		}
	}
}

// idpText returns the text of a captured JSON string, unescaped into *buf
// when it has escapes. Absent and null give nil; ok is false for any
// other kind, which the identity-provider formats never use for the
// fields read through it.
func idpText(buf *[]byte, v jsonValue) (b []byte, ok bool) {
	switch v.kind {
	case jsonAbsent, jsonNull:
		return nil, true
	case jsonString:
		if !v.esc {
			return v.raw, true
		}
		start := len(*buf)
		*buf = appendJSONUnescaped(*buf, v.raw)
		return (*buf)[start:len(*buf):len(*buf)], true
	}
	return nil, false
}

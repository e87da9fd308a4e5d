package ingest

import (
	"encoding/binary"
	"slices"
	"time"

	"github.com/scopewatch/scopewatch/rules"
)

// auth0Parser reads Auth0 tenant logs: log-stream (webhook, EventBridge)
// objects {"log_id": ..., "data": {...}}, the Management API's log objects
// (the data object on its own) and lines holding a JSON array of either,
// as webhook batches and GET /api/v2/logs write them. Token exchanges and
// logins (seacft, sertft, seccft, sepft, s, and the other exchanges of
// auth0Kind) become KindGrant, their failures (feacft, fertft, feccft,
// fepft, f, fp, fu, fcoa, ...) KindDeny; other event codes yield nothing.
// It is not safe for concurrent use.
type auth0Parser struct {
	name   string
	loc    *time.Location
	scan   jsonScanner
	inner  jsonScanner // the data object of a log-stream record
	prompt jsonScanner // an item of details.prompts
	slot   auth0Slots
	grant  int      // the slot of grantInfo.scope in a prompt
	buf    []byte   // unescaped strings of the current line
	key    []byte   // the key of a merged scope list
	rest   []string // the scopes of the prompts after the first
	strs   interner
	scopes scopeLists // space-separated strings
	arrays scopeLists // JSON arrays, keyed by their text
	merged scopeLists // unions of requested lists, keyed by their scopes
}

var _ Parser = (*auth0Parser)(nil)

// auth0Slots are the capture slots of the log fields the parser reads.
type auth0Slots struct {
	data, typ, date, clientID, userID, ip, country, scope int
	qsScope, errVal, errMessage, oauthError, description  int
	prompts, qsClient, payloadCode, payloadClient         int
}

func newAuth0Parser(src rules.Source) (Parser, error) {
	loc, err := loadZone(src)
	if err != nil {
		return nil, err
	}
	p := newJSONPaths()
	s := auth0Slots{
		data:        p.add("data"),
		typ:         p.add("type"),
		date:        p.add("date"),
		clientID:    p.add("client_id"),
		userID:      p.add("user_id"),
		ip:          p.add("ip"),
		country:     p.add("location_info", "country_code"),
		scope:       p.add("scope"),
		qsScope:     p.add("details", "qs", "scope"),
		errVal:      p.add("details", "error"),
		errMessage:  p.add("details", "error", "message"),
		oauthError:  p.add("details", "error", "oauthError"),
		description: p.add("description"),
		prompts:     p.add("details", "prompts"),
		// A failure at /authorize may name its client only in the query
		// string or the error's payload, and carry its OAuth code there.
		qsClient:      p.add("details", "qs", "client_id"),
		payloadCode:   p.add("details", "error", "payload", "code"),
		payloadClient: p.add("details", "error", "payload", "client", "clientID"),
	}
	pp := newJSONPaths()
	grant := pp.add("grantInfo", "scope")
	return &auth0Parser{
		name:   src.Name,
		loc:    loc,
		scan:   newJSONScanner(p),
		inner:  newJSONScanner(p),
		prompt: newJSONScanner(pp),
		slot:   s,
		grant:  grant,
	}, nil
}

// Parse implements Parser.
func (p *auth0Parser) Parse(line []byte, pos Position, dst []Event) ([]Event, error) {
	p.buf = p.buf[:0]
	s := trimSpace(line)
	if len(s) == 0 {
		return dst, SkipBlank
	}
	if s[0] == '[' {
		return eachRecord(&p.scan, s, pos, p.name, dst, func(d []Event) ([]Event, error) { return p.record(pos, d) })
	}
	kind, err := p.scan.scan(s)
	if err != nil {
		return dst, wrapLineError(pos, p.name, "", ReasonBadJSON, err)
	}
	if kind != jsonObject {
		return dst, lineError(pos, p.name, "", ReasonBadFormat, "line is neither a log object nor an array of them")
	}
	return p.record(pos, dst)
}

// record maps the object captured by p.scan, a log-stream record or a
// Management API log, to zero or one Event.
func (p *auth0Parser) record(pos Position, dst []Event) ([]Event, error) {
	v := p.scan.vals
	if d := v[p.slot.data]; d.kind == jsonObject {
		if _, err := p.inner.scan(d.raw); err != nil {
			return dst, wrapLineError(pos, p.name, "data", ReasonBadJSON, err)
		}
		v = p.inner.vals
	}
	return p.event(v, pos, dst)
}

// auth0Kind classifies an event type code.
func auth0Kind(code []byte) Kind {
	switch string(code) {
	case "seacft", "sertft", "seccft", "sepft", "s",
		// the other token exchanges: device code, native social login,
		// password with an OOB or OTP challenge, passwordless OTP, MFA
		// recovery code, CIBA
		"sede", "sens", "seoobft", "seotpft", "sepotpft", "sercft", "ciba_exchange_succeeded":
		return KindGrant
	case "feacft", "fertft", "feccft", "fepft", "f", "fp", "fu", "fcoa",
		"fede", "fens", "feoobft", "feotpft", "fepotpft", "fercft", "ciba_exchange_failed":
		return KindDeny
	}
	return KindUnknown
}

func (p *auth0Parser) event(v []jsonValue, pos Position, dst []Event) ([]Event, error) {
	sl := &p.slot
	typ, ok := idpText(&p.buf, v[sl.typ])
	if !ok {
		return dst, lineError(pos, p.name, "type", ReasonBadField, "type is not a string")
	}
	if len(typ) == 0 {
		return dst, lineError(pos, p.name, "type", ReasonNoType, "log without a type")
	}
	var t time.Time
	switch dv := v[sl.date]; dv.kind {
	case jsonAbsent, jsonNull:
		return dst, lineError(pos, p.name, "date", ReasonNoTime, "log without a date")
	case jsonString:
		b, _ := idpText(&p.buf, dv)
		if t, ok = parseISOTime(b, p.loc); !ok {
			return dst, lineError(pos, p.name, "date", ReasonBadTime, "unparsable or impossible date")
		}
	default:
		return dst, lineError(pos, p.name, "date", ReasonBadTime, "date is not a string")
	}
	kind := auth0Kind(typ)
	if kind == KindUnknown {
		return dst, SkipOtherEvent
	}
	e := Event{Time: t, Source: pos.Source, Kind: kind, Type: p.strs.bytes(typ), Pos: pos}
	if e.Source == "" {
		e.Source = p.name
	}
	client, ok := idpText(&p.buf, v[sl.clientID])
	if !ok {
		return dst, lineError(pos, p.name, "client_id", ReasonBadField, "client_id is not a string")
	}
	if len(client) == 0 && kind == KindDeny {
		// A failed authorization names the client the request asked for.
		for _, slot := range [...]int{sl.qsClient, sl.payloadClient} {
			if c, ok := idpText(&p.buf, v[slot]); ok && len(c) > 0 {
				client = c
				break
			}
		}
	}
	if kind == KindGrant && len(client) == 0 {
		return dst, lineError(pos, p.name, "client_id", ReasonNoClient, "grant without a client_id")
	}
	e.Client = p.strs.bytes(client)
	user, ok := idpText(&p.buf, v[sl.userID])
	if !ok {
		return dst, lineError(pos, p.name, "user_id", ReasonBadField, "user_id is not a string")
	}
	e.Subject = p.strs.subject(user)
	// ip and country_code are optional; the country is a code.
	idpPlace(&p.buf, &e, v[sl.ip], v[sl.country], countryAlpha2)

	scope, ok := p.scopeList(v[sl.scope])
	if !ok {
		return dst, lineError(pos, p.name, "scope", ReasonBadField, "scope is neither a string nor an array of strings")
	}
	qs, ok := idpText(&p.buf, v[sl.qsScope])
	if !ok {
		return dst, lineError(pos, p.name, "details.qs.scope", ReasonBadField, "details.qs.scope is not a string")
	}
	requested := p.scopes.split(qs)
	prompted, err := p.promptScopes(v, pos)
	if err != nil {
		return dst, err
	}
	switch kind {
	case KindGrant:
		e.Granted = scope
	case KindDeny:
		// The scope of a failure is what was asked for; the authorize
		// request's own query string says it best when it was logged.
		if len(qs) == 0 {
			requested = scope
		}
		reason, err := p.reason(v, pos)
		if err != nil {
			return dst, err
		}
		e.Reason = reason
	}
	// Scopes the user was asked to consent to were asked for too.
	e.Requested = p.union(requested, prompted)
	return append(dst, e), nil
}

// promptScopes reads the scopes of details.prompts[].grantInfo.scope (a
// space-separated string or an array of strings), the scopes a consent
// prompt showed, merged over the prompts.
func (p *auth0Parser) promptScopes(v []jsonValue, pos Position) ([]string, error) {
	pv := v[p.slot.prompts]
	switch pv.kind {
	case jsonAbsent, jsonNull:
		return nil, nil
	case jsonArray:
	default:
		return nil, lineError(pos, p.name, "details.prompts", ReasonBadField, "details.prompts is not an array")
	}
	// The first prompt's list, and the others' scopes after it, merged
	// once: merging prompt by prompt copied the growing list each time.
	var first []string
	rest := p.rest[:0]
	bad := false
	arrayElems(pv.raw, func(el jsonValue) bool {
		if el.kind != jsonObject {
			return true
		}
		if _, err := p.prompt.scan(el.raw); err != nil {
			bad = true
			return false
		}
		l, ok := jsonScopeList(p.prompt.vals[p.grant], func(v jsonValue) []byte { b, _ := idpText(&p.buf, v); return b }, &p.scopes, &p.arrays)
		if !ok {
			bad = true
			return false
		}
		if len(first) == 0 {
			first = l
		} else {
			rest = append(rest, l...)
		}
		return true
	})
	var list []string
	if !bad {
		list = p.union(first, rest)
	}
	clear(rest) // so as not to pin the line's scopes
	p.rest = rest[:0]
	if bad {
		return nil, lineError(pos, p.name, "details.prompts.grantInfo.scope", ReasonBadField, "grantInfo.scope is neither a string nor an array of strings")
	}
	return list, nil
}

// unionSetMin is the size of a union from which membership is looked up
// in a map: below it a linear search is cheaper and allocates nothing,
// above it the search made a union of long lists quadratic.
const unionSetMin = 32

// union returns the scopes of a followed by those of b that a lacks. When
// either adds nothing the other is returned as it is; a new list is kept
// in p.merged, so a repeated union costs no allocation.
func (p *auth0Parser) union(a, b []string) []string {
	if len(b) == 0 {
		return a
	}
	if len(a) == 0 {
		return b
	}
	var set map[string]struct{}
	if len(a)+len(b) > unionSetMin {
		set = make(map[string]struct{}, len(a)+len(b))
		for _, s := range a {
			set[s] = struct{}{}
		}
	}
	extra := false
	for _, s := range b {
		if !inList(set, a, s) {
			extra = true
			break
		}
	}
	if !extra {
		return a
	}
	// The key spells the lists with the length of each and of each scope
	// before it, so that no two unions share one, whatever bytes a scope
	// of a JSON array holds.
	k := binary.AppendUvarint(p.key[:0], uint64(len(a)))
	for _, s := range a {
		k = append(binary.AppendUvarint(k, uint64(len(s))), s...)
	}
	for _, s := range b {
		k = append(binary.AppendUvarint(k, uint64(len(s))), s...)
	}
	p.key = k
	if l, ok := p.merged.lookup(k); ok {
		return l
	}
	l := make([]string, len(a), len(a)+len(b))
	copy(l, a)
	for _, s := range b {
		if !inList(set, l, s) {
			l = append(l, s)
			if set != nil {
				set[s] = struct{}{}
			}
		}
	}
	return p.merged.store(k, l)
}

// inList reports whether s is in l, whose scopes set holds when it is
// not nil.
func inList(set map[string]struct{}, l []string, s string) bool {
	if set != nil {
		_, ok := set[s]
		return ok
	}
	return slices.Contains(l, s)
}

// reason reads details.error: a string (an OAuth error code such as
// invalid_grant), or an object whose oauthError is the code
// (invalid_scope, unauthorized_client, access_denied, ...). Only without
// a code does the object's human message, then the description, stand
// in for it.
func (p *auth0Parser) reason(v []jsonValue, pos Position) (string, error) {
	sl := &p.slot
	var b []byte
	switch ev := v[sl.errVal]; ev.kind {
	case jsonString:
		b, _ = idpText(&p.buf, ev)
	case jsonObject:
		var ok bool
		if b, ok = idpText(&p.buf, v[sl.oauthError]); !ok {
			return "", lineError(pos, p.name, "details.error.oauthError", ReasonBadField, "details.error.oauthError is not a string")
		}
		// oauthError is the code (invalid_scope) in most failures, but a
		// sentence in some (a callback mismatch), whose code is then the
		// payload's.
		if !isOAuthCode(b) {
			if c, ok := idpText(&p.buf, v[sl.payloadCode]); ok && isOAuthCode(c) {
				b = c
			}
		}
		if len(b) == 0 {
			if b, ok = idpText(&p.buf, v[sl.errMessage]); !ok {
				return "", lineError(pos, p.name, "details.error.message", ReasonBadField, "details.error.message is not a string")
			}
		}
	}
	if len(b) == 0 {
		var ok bool
		if b, ok = idpText(&p.buf, v[sl.description]); !ok {
			return "", lineError(pos, p.name, "description", ReasonBadField, "description is not a string")
		}
	}
	return p.strs.bytes(b), nil
}

// isOAuthCode reports whether b looks like an OAuth error code
// (RFC 6749 section 5.2: invalid_scope, unauthorized_client, ...): lower
// case letters and underscores.
func isOAuthCode(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if (c < 'a' || c > 'z') && c != '_' {
			return false
		}
	}
	return true
}

// scopeList reads scope: a space-separated string or an array of strings
// (Auth0 writes both, even for one event type).
func (p *auth0Parser) scopeList(v jsonValue) ([]string, bool) {
	return jsonScopeList(v, func(v jsonValue) []byte { b, _ := idpText(&p.buf, v); return b }, &p.scopes, &p.arrays)
}

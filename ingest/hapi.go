package ingest

import (
	"bytes"
	"fmt"
	"strings"
	"time"

	"github.com/scopewatch/scopewatch/rules"
)

// DefaultHAPITemplate is HAPI FHIR LoggingInterceptor's default message
// format.
const DefaultHAPITemplate = "${operationType} - ${idOrResourceName}"

// hapiVar is a LoggingInterceptor variable the parser reads; the others
// are matched and skipped.
type hapiVar uint8

const (
	hapiOther hapiVar = iota
	hapiOperationType
	hapiOperationName
	hapiIDOrResourceName
	hapiID
	hapiRemoteAddr
	hapiForwardedFor
	hapiRequestParameters
	hapiRequestVerb
	hapiClient // the request header named by fields.client
	hapiVarCount
)

// hapiSegment is a piece of a compiled template: a literal, or a variable
// whose value runs up to the next literal.
type hapiSegment struct {
	lit   string
	v     hapiVar
	isVar bool
}

// hapiParser reads the lines HAPI FHIR's LoggingInterceptor writes from a
// ${…} template (LoggingInterceptor.java), usually behind a logback
// prefix that starts with the time ("2024-01-02 10:11:12.345 [qtp-12]
// INFO  fhirtest.access - "). The template is compiled once into literals
// and variables; a variable's value runs up to the next literal. The
// event's Type is the FHIR interaction code of ${operationType}; its Path
// is "/" + ${idOrResourceName} (plus "/_history" or "/$op" where the
// interaction says so), relative to the FHIR base, and its Method is the
// one the interaction implies unless ${requestVerb} is logged. HAPI has no
// client variable: when fields.client names a request header and the
// template logs it (${requestHeader.x-client-id}), that is the client;
// otherwise events are unattributed.
type hapiParser struct {
	gateway
	loc      *time.Location
	segs     []hapiSegment
	startLit bool // the template starts with a literal, found by search
	vals     [hapiVarCount][]byte
	buf      []byte
}

var _ Parser = (*hapiParser)(nil)

func newHAPIParser(src rules.Source) (Parser, error) {
	loc, err := loadZone(src)
	if err != nil {
		return nil, err
	}
	tmpl := src.Template
	if tmpl == "" {
		tmpl = DefaultHAPITemplate
	}
	segs, err := compileHAPITemplate(tmpl, src.Fields.Client)
	if err != nil {
		return nil, fmt.Errorf("source %s: template: %w", src.Name, err)
	}
	return &hapiParser{gateway: newGateway(src), loc: loc, segs: segs, startLit: !segs[0].isVar}, nil
}

// compileHAPITemplate splits a template into segments. Two variables with
// nothing between them cannot be told apart, so they are refused.
func compileHAPITemplate(tmpl, clientHeader string) ([]hapiSegment, error) {
	var segs []hapiSegment
	for rest := tmpl; rest != ""; {
		i := strings.Index(rest, "${")
		if i < 0 {
			segs = append(segs, hapiSegment{lit: rest})
			break
		}
		if i > 0 {
			segs = append(segs, hapiSegment{lit: rest[:i]})
		}
		j := strings.IndexByte(rest[i:], '}')
		if j < 0 {
			return nil, fmt.Errorf("unterminated ${ at %q", rest[i:])
		}
		name := strings.TrimSpace(rest[i+2 : i+j])
		if name == "" {
			return nil, fmt.Errorf("empty ${} in %q", tmpl)
		}
		if n := len(segs); n > 0 && segs[n-1].isVar {
			return nil, fmt.Errorf("${%s} follows another variable with no text between them", name)
		}
		v := hapiVarOf(name)
		if clientHeader != "" && strings.EqualFold(name, "requestHeader."+clientHeader) {
			v = hapiClient
		}
		segs = append(segs, hapiSegment{v: v, isVar: true})
		rest = rest[i+j+1:]
	}
	if len(segs) == 0 {
		return nil, fmt.Errorf("empty template")
	}
	for _, s := range segs {
		if s.isVar && s.v == hapiOperationType {
			return segs, nil
		}
	}
	return nil, fmt.Errorf("no ${operationType}: the interaction cannot be told")
}

func hapiVarOf(name string) hapiVar {
	switch {
	case name == "operationType":
		return hapiOperationType
	case name == "operationName":
		return hapiOperationName
	case name == "idOrResourceName":
		return hapiIDOrResourceName
	case name == "id":
		return hapiID
	case name == "remoteAddr":
		return hapiRemoteAddr
	case name == "requestParameters":
		return hapiRequestParameters
	case name == "requestVerb":
		return hapiRequestVerb
	case strings.EqualFold(name, "requestHeader.x-forwarded-for"):
		return hapiForwardedFor
	}
	return hapiOther
}

func (p *hapiParser) fail(pos Position, field, reason, msg string) error {
	return lineError(pos, p.name, field, reason, msg)
}

// Parse implements Parser.
func (p *hapiParser) Parse(line []byte, pos Position, dst []Event) ([]Event, error) {
	s := trimSpace(line)
	if len(s) == 0 {
		return dst, SkipBlank
	}
	prefix, _, ok := p.split(s)
	if !ok {
		return dst, p.fail(pos, "", ReasonBadFormat, "line does not match the template")
	}
	if len(prefix) == 0 {
		return dst, p.fail(pos, "time", ReasonNoTime, "no timestamp before the message")
	}
	t, ok := p.prefixTime(prefix)
	if !ok {
		return dst, p.fail(pos, "time", ReasonBadTime, "unparsable timestamp before the message")
	}
	op := p.vals[hapiOperationType]
	if len(op) == 0 {
		return dst, p.fail(pos, "operationType", ReasonBadField, "empty operationType")
	}
	var codeBuf [40]byte
	code := hapiCode(&codeBuf, op)
	e := p.event(pos)
	e.Time = t
	e.Type = p.strs.bytes(op)
	if verb := p.vals[hapiRequestVerb]; len(verb) > 0 {
		e.Method = p.strs.bytes(verb)
	} else {
		e.Method = hapiMethod(code)
	}
	e.Path = p.path(code, e.Method)
	if q := p.vals[hapiRequestParameters]; len(q) > 0 {
		if q[0] == '?' {
			q = q[1:]
		}
		if len(q) > 0 {
			e.Query = string(q)
		}
	}
	e.IP = p.clientIP(p.vals[hapiForwardedFor], p.vals[hapiRemoteAddr])
	if c := trimSpace(p.vals[hapiClient]); len(c) > 0 && string(c) != "-" && string(c) != "null" {
		e.Client = p.strs.bytes(c)
	}
	return append(dst, e), nil
}

// split cuts the line into the logging prefix and the message and reads
// the message's variables (match). A template that starts with text is
// found by searching for it. One that starts with a variable takes the
// whole line when it has no leading timestamp. Behind one, the message
// follows logback's first " - " ("%d [%thread] %level %logger - %msg")
// when it matches there with an operation type of one word; otherwise it
// follows the first separator after the line's level from which it
// does: "] " after HAPI's documented "… %-5level %logger{36}
// [%file:%line] %msg", " : " in Spring Boot's "%d %5p %pid --- [%t]
// %logger : %msg", ") " in JBoss's "%d %-5p [%c] (%t) %s". A separator
// before the level is the thread's, inside the prefix; one inside the
// message (the " - " of the default template) comes after the one that
// ends the prefix.
func (p *hapiParser) split(s []byte) (prefix, msg []byte, ok bool) {
	if p.startLit {
		i := bytes.Index(s, []byte(p.segs[0].lit))
		if i < 0 {
			return nil, nil, false
		}
		return s[:i], s[i:], p.match(s[i:])
	}
	if len(s) < 19 || s[0] < '0' || s[0] > '9' || s[4] != '-' {
		return nil, s, p.match(s)
	}
	if i := bytes.Index(s, []byte(" - ")); i >= 0 {
		if m := s[i+3:]; p.match(m) && isHAPIWord(p.vals[hapiOperationType]) {
			return s[:i+3], m, true
		}
	}
	from := levelEnd(s)
	if from < 0 {
		return nil, nil, false
	}
	tries := 0
	for i := from; i < len(s)-1 && tries < maxPrefixSeparators; i++ {
		switch {
		case (s[i] == ']' || s[i] == ')') && s[i+1] == ' ':
		case s[i] == ':' && s[i-1] == ' ' && s[i+1] == ' ':
		default:
			continue
		}
		tries++
		if m := s[i+2:]; p.match(m) && isHAPIWord(p.vals[hapiOperationType]) {
			return s[:i+2], m, true
		}
	}
	return nil, nil, false
}

// levelEnd returns where the first log level word of s ends (INFO, WARN,
// ERROR, DEBUG, TRACE, and java.util.logging's names), looked for among
// the words of a layout's prefix; -1 when there is none.
func levelEnd(s []byte) int {
	for i, n := 0, min(len(s), maxLevelAt); i < n; {
		for i < n && !isASCIILetter(s[i]) {
			i++
		}
		j := i
		for j < len(s) && isASCIILetter(s[j]) {
			j++
		}
		switch string(s[i:j]) {
		case "TRACE", "DEBUG", "INFO", "WARN", "WARNING", "ERROR", "FATAL", "SEVERE", "FINE", "FINER", "FINEST", "CONFIG":
			if j == len(s) || s[j] == ' ' || s[j] == ']' {
				return j
			}
		}
		i = j
	}
	return -1
}

// maxLevelAt bounds how far into a line its level is looked for: a
// layout puts it within its first fields.
const maxLevelAt = 160

// maxPrefixSeparators bounds the separators split tries after the level:
// a layout's prefix has a few ("] " after the thread or the file and
// line, " : " after the logger), and a long line full of them must not
// cost a match each.
const maxPrefixSeparators = 8

// isHAPIWord reports whether op can be an operation type: a code
// ("search-type", "extended-operation-instance") or an enum name
// (SEARCH_TYPE), one word.
func isHAPIWord(op []byte) bool {
	if len(op) == 0 {
		return false
	}
	for _, c := range op {
		if !isASCIILetter(c) && (c < '0' || c > '9') && c != '-' && c != '_' && c != '$' {
			return false
		}
	}
	return true
}

// match reads the variables of msg, which must match the whole template.
func (p *hapiParser) match(msg []byte) bool {
	p.vals = [hapiVarCount][]byte{}
	i := 0
	for k, seg := range p.segs {
		if !seg.isVar {
			if !bytes.HasPrefix(msg[i:], []byte(seg.lit)) {
				// A line whose last variables are empty may have lost
				// the trailing spaces of the literal before them.
				return p.emptyTail(k, msg[i:])
			}
			i += len(seg.lit)
			continue
		}
		end := len(msg)
		if k+1 < len(p.segs) {
			j := bytes.Index(msg[i:], []byte(p.segs[k+1].lit))
			if j < 0 {
				lit := strings.TrimRight(p.segs[k+1].lit, " ")
				if !bytes.HasSuffix(msg[i:], []byte(lit)) || !p.emptyTail(k+1, []byte(lit)) {
					return false
				}
				p.vals[seg.v] = bytes.TrimSpace(msg[i : len(msg)-len(lit)])
				return true
			}
			end = i + j
		}
		p.vals[seg.v] = bytes.TrimSpace(msg[i:end])
		i = end
	}
	return i == len(msg)
}

// emptyTail reports whether rest is the literal segs[k] without its
// trailing spaces and nothing but variables follow it.
func (p *hapiParser) emptyTail(k int, rest []byte) bool {
	lit := strings.TrimRight(p.segs[k].lit, " ")
	if lit == p.segs[k].lit || string(rest) != lit {
		return false
	}
	for _, seg := range p.segs[k+1:] {
		if !seg.isVar {
			return false
		}
	}
	return true
}

// prefixTime reads the timestamp at the start of the logging prefix:
// ISO-8601 with a space or 'T', a fraction after '.' or ',' (logback's
// default is "2024-01-02 10:11:12,345") and an optional zone; without a
// zone it is read in the source's time zone.
func (p *hapiParser) prefixTime(prefix []byte) (time.Time, bool) {
	if len(prefix) < 19 {
		return time.Time{}, false
	}
	end := len(prefix)
	if i := bytes.IndexByte(prefix[11:], ' '); i >= 0 {
		end = 11 + i
	}
	return parseISOTime(prefix[:end], p.loc)
}

// hapiCode normalises an operation type to HAPI's lower-case code, so
// that RestOperationTypeEnum names (SEARCH_TYPE) read as codes
// (search-type). Codes longer than dst are returned as they are.
func hapiCode(dst *[40]byte, op []byte) []byte {
	if len(op) > len(dst) {
		return op
	}
	for i, c := range op {
		switch {
		case c >= 'A' && c <= 'Z':
			c += 'a' - 'A'
		case c == '_':
			c = '-'
		}
		dst[i] = c
	}
	return dst[:len(op)]
}

// hapiMethod is the HTTP method of a FHIR interaction code. Extended
// operations may be called with GET or POST: none is assumed.
func hapiMethod(code []byte) string {
	switch string(code) {
	case "read", "vread", "metadata", "get-page", "graphql-request":
		return "GET"
	case "create", "transaction", "batch", "validate":
		return "POST"
	case "update":
		return "PUT"
	case "patch":
		return "PATCH"
	case "delete":
		return "DELETE"
	}
	if bytes.HasPrefix(code, []byte("search")) || bytes.HasPrefix(code, []byte("history")) {
		return "GET"
	}
	return ""
}

// path rebuilds the request path, relative to the FHIR base, from the
// logged resource or id and the interaction.
func (p *hapiParser) path(code []byte, method string) string {
	id := p.vals[hapiIDOrResourceName]
	if len(id) == 0 {
		id = p.vals[hapiID]
	}
	id = stripOrigin(id)
	if i := bytes.IndexByte(id, '?'); i >= 0 {
		id = id[:i] // parameters are logged apart, in ${requestParameters}
	}
	for len(id) > 0 && id[0] == '/' {
		id = id[1:]
	}
	b := append(p.buf[:0], '/')
	b = append(b, id...)
	switch {
	case string(code) == "metadata":
		b = append(b[:1], "metadata"...)
	case bytes.HasPrefix(code, []byte("history")) && !bytes.Contains(id, []byte("/_history")):
		if len(id) > 0 {
			b = append(b, '/')
		}
		b = append(b, "_history"...)
	case bytes.HasPrefix(code, []byte("extended-operation")):
		name := p.vals[hapiOperationName]
		if i := bytes.IndexByte(name, '?'); i >= 0 {
			name = name[:i] // as for the id: the parameters are not the path's
		}
		// Without ${operationName} the path still names an operation
		// ("/Patient/1/$"), which no SMART scope maps: read as the
		// instance or the type, it was counted as a read or a create.
		if len(id) > 0 {
			b = append(b, '/')
		}
		if len(name) == 0 || name[0] != '$' {
			b = append(b, '$')
		}
		b = append(b, name...)
	case bytes.HasPrefix(code, []byte("search")) && method != "GET" && !bytes.Contains(id, []byte("_search")):
		// A search sent by POST ([type]/_search with a form body), which
		// ${requestVerb} says: as [type] alone it reads as a create.
		if len(id) > 0 {
			b = append(b, '/')
		}
		b = append(b, "_search"...)
	}
	p.buf = b
	return p.strs.bytes(b)
}

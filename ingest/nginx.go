package ingest

import (
	"bytes"
	"net/netip"
	"strings"
	"unsafe"

	"github.com/scopewatch/scopewatch/rules"
)

// gateway holds what every API access-log parser shares: the source name
// for errors, the trusted proxies for X-Forwarded-For, and the intern
// tables. Every line of an access log is one API call, a KindUse event.
type gateway struct {
	name    string
	trusted []netip.Prefix
	strs    interner
	scopes  scopeLists
}

func newGateway(src rules.Source) gateway {
	return gateway{name: src.Name, trusted: src.Trusted}
}

// event starts the use event of the line at pos.
func (g *gateway) event(pos Position) Event {
	e := Event{Source: pos.Source, Kind: KindUse, Pos: pos}
	if e.Source == "" {
		e.Source = g.name
	}
	return e
}

// clientIP resolves the caller's address from an X-Forwarded-For value
// and the address of the peer (either may be empty or "-"). A peer that
// does not parse (nginx writes "unix:" for Unix sockets) counts as
// unknown, so the forwarded chain decides.
func (g *gateway) clientIP(xff, remote []byte) netip.Addr {
	var peer netip.Addr
	if r := dashless(remote); len(r) > 0 {
		// IPv4 with a port first: it is common and parseIP would take
		// the slower IPv6 path for it.
		if a, ok := parseIPv4(r); ok {
			peer = a
		} else if a, ok := parseIPWithPort(r); ok {
			peer = a
		} else if a, ok := parseIP(r); ok {
			peer = a
		}
	}
	xff = dashless(xff)
	if len(xff) == 0 {
		return peer
	}
	// ClientIP keeps no reference to its argument (netip clones zone
	// names), so the line's bytes can be lent to it without a copy.
	return ClientIP(unsafe.String(unsafe.SliceData(xff), len(xff)), peer, g.trusted)
}

// setTarget sets e.Path and e.Query from a request target
// ("/a/b?x=1"; an absolute-form "https://host/a?x=1" loses its origin),
// with a single allocation shared by both.
func setTarget(e *Event, target []byte) {
	target = stripOrigin(target)
	if len(target) == 0 {
		return
	}
	full := string(target)
	if q := strings.IndexByte(full, '?'); q >= 0 {
		e.Path, e.Query = full[:q], full[q+1:]
		return
	}
	e.Path = full
}

// stripOrigin drops the scheme and authority of an absolute URL.
func stripOrigin(t []byte) []byte {
	var rest []byte
	switch {
	case bytes.HasPrefix(t, []byte("https://")):
		rest = t[len("https://"):]
	case bytes.HasPrefix(t, []byte("http://")):
		rest = t[len("http://"):]
	default:
		return t
	}
	if i := bytes.IndexAny(rest, "/?"); i >= 0 {
		return rest[i:]
	}
	return nil
}

// splitRequest splits an HTTP request line, "GET /a?b=1 HTTP/1.1", into
// method and target; the protocol may be missing (HTTP/0.9, or API
// Gateway's routeKey "GET /pets/{id}"). The method must be upper-case
// letters and the target must not be empty.
func splitRequest(b []byte) (method, target []byte, ok bool) {
	sp := bytes.IndexByte(b, ' ')
	if sp <= 0 {
		return nil, nil, false
	}
	method = b[:sp]
	for _, c := range method {
		if c < 'A' || c > 'Z' {
			return nil, nil, false
		}
	}
	target = b[sp+1:]
	if sp := bytes.LastIndexByte(target, ' '); sp >= 0 {
		if !bytes.HasPrefix(target[sp+1:], []byte("HTTP/")) {
			return nil, nil, false
		}
		target = target[:sp]
	}
	if len(target) == 0 || bytes.IndexByte(target, ' ') >= 0 {
		return nil, nil, false
	}
	return method, target, true
}

// refusedRequestLine reports whether status is how a server answers a
// request line it cannot read as HTTP (RFC 9112 section 3): 400 for one
// that is not METHOD target PROTOCOL (nginx logs the bytes it read, a TLS
// handshake as "\x16\x03\x01..."), 408 when it never came whole, 414
// when its target is too long. A line that names such a request is not a
// call made with a token, whatever it holds.
func refusedRequestLine(status int) bool {
	return status == 400 || status == 408 || status == 414
}

// parseStatus reads an HTTP status code; "-" and empty mean unknown (0).
func parseStatus(b []byte) (int, bool) {
	if len(b) == 0 || (len(b) == 1 && b[0] == '-') {
		return 0, true
	}
	if len(b) > 3 {
		return 0, false
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// quotedField reads a double-quoted field after optional spaces, as nginx
// and Envoy write them: a backslash escapes the next byte (nginx writes
// \x22 for a quote, older versions \"). It returns the raw contents and
// the rest of s after the closing quote.
func quotedField(s []byte) (field, rest []byte, ok bool) {
	s = trimLeftSpace(s)
	if len(s) == 0 || s[0] != '"' {
		return nil, s, false
	}
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '"':
			return s[1:i], s[i+1:], true
		}
	}
	return nil, s, false
}

// nginxParser reads nginx's combined log format, optionally with a
// leading virtual host and a trailing "$http_x_forwarded_for" (the main
// format of the stock nginx.conf). The common log format, without
// referer and user agent, is read too. remote_user becomes the subject;
// the format has no client id, so events are unattributed.
type nginxParser struct {
	gateway
}

var _ Parser = (*nginxParser)(nil)

func newNginxParser(src rules.Source) *nginxParser {
	return &nginxParser{gateway: newGateway(src)}
}

func (p *nginxParser) fail(pos Position, field, reason, msg string) error {
	return lineError(pos, p.name, field, reason, msg)
}

// Parse implements Parser.
func (p *nginxParser) Parse(line []byte, pos Position, dst []Event) ([]Event, error) {
	s := trimSpace(line)
	if len(s) == 0 {
		return dst, SkipBlank
	}
	lb := bytes.IndexByte(s, '[')
	if lb < 0 {
		return dst, p.fail(pos, "", ReasonBadFormat, "no [time_local]")
	}
	// [vhost] remote_addr - remote_user
	var toks [4][]byte
	n := 0
	for head := s[:lb]; ; {
		var tok []byte
		tok, head = nextField(head)
		if len(tok) == 0 {
			break
		}
		if n == len(toks) {
			return dst, p.fail(pos, "", ReasonBadFormat, "too many fields before [time_local]")
		}
		toks[n] = tok
		n++
	}
	if n == 4 {
		copy(toks[:], toks[1:])
		n--
	}
	if n != 3 {
		return dst, p.fail(pos, "", ReasonBadFormat, "want remote_addr - remote_user before [time_local]")
	}
	remote, user := toks[0], toks[2]

	rest := s[lb+1:]
	if len(rest) < 27 || rest[26] != ']' {
		return dst, p.fail(pos, "time", ReasonBadTime, "want [02/Jan/2006:15:04:05 -0700]")
	}
	t, ok := parseNginxTime(rest[:26])
	if !ok {
		return dst, p.fail(pos, "time", ReasonBadTime, "unparsable time_local")
	}
	req, rest, ok := quotedField(rest[27:])
	if !ok {
		return dst, p.fail(pos, "request", ReasonBadFormat, "no quoted request")
	}
	statusTok, rest := nextField(rest)
	status, ok := parseStatus(statusTok)
	if !ok {
		return dst, p.fail(pos, "status", ReasonBadField, "status is not a number")
	}
	_, rest = nextField(rest) // body_bytes_sent
	var xff []byte
	if _, r, ok := quotedField(rest); ok { // referer
		if _, r, ok = quotedField(r); ok { // user agent
			if f, _, ok := quotedField(r); ok {
				xff = f
			}
		}
	}
	if len(req) == 0 || (len(req) == 1 && req[0] == '-') {
		// No request was read (a timeout or a closed connection): no call.
		return dst, SkipNoRequest
	}
	method, target, ok := splitRequest(req)
	if !ok {
		if refusedRequestLine(status) {
			// A TLS handshake on a plain port, a scanner's junk: what
			// nginx read of a line it refused as not HTTP. No call.
			return dst, SkipNoRequest
		}
		return dst, p.fail(pos, "request", ReasonBadField, "request is not METHOD target PROTOCOL")
	}
	e := p.event(pos)
	e.Time = t
	e.Method = p.strs.bytes(method)
	setTarget(&e, target)
	e.Status = status
	e.Subject = p.strs.subject(dashless(user))
	e.IP = p.clientIP(xff, remote)
	return append(dst, e), nil
}

package ingest

import (
	"bytes"
	"time"

	"github.com/scopewatch/scopewatch/rules"
)

// envoyParser reads Envoy's default access-log format (Envoy 1.9–1.16):
//
//	[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%"
//	%RESPONSE_CODE% %RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %DURATION%
//	%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%"
//	"%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%"
//
// The client address is read from the X-Forwarded-For field, the only one
// the format has. Istio's longer default, which puts
// %RESPONSE_CODE_DETAILS% and a quoted transport failure reason before
// the byte counts, is read too: X-Forwarded-For is the first quoted field
// after the run of four or more unquoted fields that follows the status,
// and the peer is %DOWNSTREAM_REMOTE_ADDRESS% near the end (istioRemote).
// TCP proxy lines ("- - -" for the request) are not API calls: they yield
// nothing. The format has no client id.
//
// Lines behind a prefix are read too: Envoy's application-log header,
// "[%Y-%m-%d %T.%e][%t][%l][%n] " and the optional "[%g:%#] " source
// location of its default --log-format, which the access log carries when
// it goes through Envoy's logger (Istio's "[...][28][debug][http]" lines
// have it too), and a tag such as "ACCESS " or "access: " that some
// deployments prepend. A line with the header whose message is not an
// access-log line is the server's own log: ignored as another logger's.
// The address is optional: an X-Forwarded-For value with no readable
// address leaves IP empty and marks it dropped.
type envoyParser struct {
	gateway
	loc *time.Location // for a START_TIME written without a zone
}

var _ Parser = (*envoyParser)(nil)

func newEnvoyParser(src rules.Source) (Parser, error) {
	loc, err := loadZone(src)
	if err != nil {
		return nil, err
	}
	return &envoyParser{gateway: newGateway(src), loc: loc}, nil
}

func (p *envoyParser) fail(pos Position, field, reason, msg string) error {
	return lineError(pos, p.name, field, reason, msg)
}

// Parse implements Parser.
func (p *envoyParser) Parse(line []byte, pos Position, dst []Event) ([]Event, error) {
	s := trimSpace(line)
	if len(s) == 0 {
		return dst, SkipBlank
	}
	s = stripAccessTag(s)
	s, header := stripEnvoyHeader(s)
	if len(s) == 0 || s[0] != '[' {
		if header {
			return dst, SkipOtherLogger
		}
		return dst, p.fail(pos, "", ReasonBadFormat, "no [START_TIME]")
	}
	rb := bytes.IndexByte(s, ']')
	if rb < 0 {
		if header {
			return dst, SkipOtherLogger
		}
		return dst, p.fail(pos, "", ReasonBadFormat, "no [START_TIME]")
	}
	t, ok := parseISOTime(s[1:rb], p.loc)
	if !ok {
		if header && (rb == 1 || s[1] < '0' || s[1] > '9') {
			// [C12][S345] ...: a connection or stream message.
			return dst, SkipOtherLogger
		}
		return dst, p.fail(pos, "time", ReasonBadTime, "unparsable START_TIME")
	}
	req, rest, ok := quotedField(s[rb+1:])
	if !ok {
		return dst, p.fail(pos, "request", ReasonBadFormat, "no quoted request")
	}
	if string(req) == "- - -" {
		return dst, SkipNoRequest // a TCP connection, not an HTTP request
	}
	statusTok, rest := nextField(rest)
	status, ok := parseStatus(statusTok)
	if !ok {
		return dst, p.fail(pos, "status", ReasonBadField, "RESPONSE_CODE is not a number")
	}
	xff, rest, found := envoyXFF(rest)
	if !found {
		return dst, p.fail(pos, "", ReasonBadFormat, "no quoted X-Forwarded-For field after the byte counts")
	}
	method, target, ok := splitRequest(req)
	if !ok {
		return dst, p.fail(pos, "request", ReasonBadField, "request is not METHOD path PROTOCOL")
	}
	e := p.event(pos)
	e.Time = t
	e.Method = p.strs.bytes(method)
	setTarget(&e, target)
	e.Status = status
	// The peer stands in only for a request without the header: with
	// one, the address is the header's, as Envoy's own format gives it,
	// whatever the peer (a load balancer with a public address).
	var remote []byte
	if len(dashless(xff)) == 0 {
		remote = istioRemote(rest)
	}
	e.IP = p.clientIP(xff, remote)
	if !e.IP.IsValid() && (len(dashless(xff)) > 0 || len(dashless(remote)) > 0) {
		e.Dropped |= FieldIP
	}
	return append(dst, e), nil
}

// stripAccessTag removes a leading "ACCESS", "access:", "access_log:"
// (any case, with or without the colon) and the spaces after it.
func stripAccessTag(s []byte) []byte {
	i := 0
	for i < len(s) && (isASCIILetter(s[i]) || s[i] == '_' || s[i] == '-') {
		i++
	}
	if i == 0 || i > len("access_log") {
		return s
	}
	var word [len("access_log")]byte
	for j, c := range s[:i] {
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		word[j] = c
	}
	switch string(word[:i]) {
	case "access", "access_log", "accesslog", "access-log":
	default:
		return s
	}
	j := i
	if j < len(s) && s[j] == ':' {
		j++
	}
	if j >= len(s) || s[j] != ' ' {
		return s
	}
	return trimLeftSpace(s[j:])
}

// stripEnvoyHeader removes Envoy's application-log header: a bracketed
// date and time ("[2024-03-14 09:00:01.234]", %Y-%m-%d %T.%e) followed at
// once by at least two more bracketed fields (thread, level, logger), then
// spaces and an optional bracketed source location ("[source/x.cc:42]").
// header reports whether one was found.
func stripEnvoyHeader(s []byte) (rest []byte, header bool) {
	if len(s) == 0 || s[0] != '[' {
		return s, false
	}
	rb := bytes.IndexByte(s, ']')
	if rb < 0 || rb+1 >= len(s) || s[rb+1] != '[' {
		return s, false
	}
	if _, ok := parseISOTime(s[1:rb], time.UTC); !ok {
		return s, false
	}
	rest, n := s[rb+1:], 0
	for len(rest) > 0 && rest[0] == '[' {
		end := bytes.IndexByte(rest, ']')
		if end < 0 {
			return s, false
		}
		rest = rest[end+1:]
		n++
	}
	if n < 2 {
		return s, false
	}
	rest = trimLeftSpace(rest)
	if len(rest) > 0 && rest[0] == '[' {
		if end := bytes.IndexByte(rest, ']'); end > 0 && isSourceLocation(rest[1:end]) {
			rest = trimLeftSpace(rest[end+1:])
		}
	}
	return rest, true
}

// isSourceLocation reports whether b is "file:line", as %g:%# writes it.
func isSourceLocation(b []byte) bool {
	c := bytes.LastIndexByte(b, ':')
	if c <= 0 || c == len(b)-1 {
		return false
	}
	for _, d := range b[c+1:] {
		if d < '0' || d > '9' {
			return false
		}
	}
	return true
}

// envoyXFF finds the X-Forwarded-For field in what follows the status:
// the first quoted field after at least four unquoted ones in a row.
func envoyXFF(s []byte) (xff, rest []byte, ok bool) {
	run := 0
	for {
		s = trimLeftSpace(s)
		if len(s) == 0 {
			return nil, nil, false
		}
		if s[0] == '"' {
			f, rest, ok := quotedField(s)
			if !ok {
				return nil, nil, false
			}
			if run >= 4 {
				return f, rest, true
			}
			run, s = 0, rest
			continue
		}
		_, s = nextField(s)
		run++
	}
}

// istioRemote returns %DOWNSTREAM_REMOTE_ADDRESS% from what follows
// X-Forwarded-For in Istio's default format, nil in Envoy's, which ends
// with the upstream host:
//
//	"%REQ(USER-AGENT)%" "%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%"
//	%UPSTREAM_CLUSTER_RAW% %UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS%
//	%DOWNSTREAM_REMOTE_ADDRESS% %REQUESTED_SERVER_NAME% %ROUTE_NAME%
//
// A request without X-Forwarded-For (one straight from a client to the
// ingress gateway) has its address there only.
func istioRemote(s []byte) []byte {
	for range 4 {
		var ok bool
		if _, s, ok = quotedField(trimLeftSpace(s)); !ok {
			return nil
		}
	}
	var tok []byte
	for range 4 {
		if s = trimLeftSpace(s); len(s) == 0 || s[0] == '"' {
			return nil
		}
		tok, s = nextField(s)
	}
	return tok
}

// envoyJSONPreset covers json_format dictionaries keyed by the lower-case
// names of Envoy's command operators, as Envoy's and Istio's examples
// write them. Client and scopes have no default: with the jwt_authn
// filter's payload_in_metadata they are wherever the dictionary puts
// %DYNAMIC_METADATA(envoy.filters.http.jwt_authn:<key>:client_id)%,
// named by fields.client and fields.scopes.
var envoyJSONPreset = gwPreset{
	time:    []gwTimePath{{"start_time", timeRFC3339}, {"timestamp", timeAuto}, {"time", timeAuto}, {"@timestamp", timeAuto}},
	xff:     []string{"x_forwarded_for", "x-forwarded-for", "forwarded_for"},
	remote:  []string{"downstream_remote_address", "downstream_direct_remote_address"},
	method:  []string{"method", "request_method", ":method"},
	target:  []string{"x_envoy_original_path", "x-envoy-original-path", "x-envoy-origin-path", "path", "request_path", ":path"},
	request: []string{"request"},
	status:  []string{"response_code", "status", "status_code"},
}

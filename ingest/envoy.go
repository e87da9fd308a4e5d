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
// after the run of four or more unquoted fields that follows the status.
// TCP proxy lines ("- - -" for the request) are not API calls: they yield
// nothing. The format has no client id.
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
	if s[0] != '[' {
		return dst, p.fail(pos, "", ReasonBadFormat, "no [START_TIME]")
	}
	rb := bytes.IndexByte(s, ']')
	if rb < 0 {
		return dst, p.fail(pos, "", ReasonBadFormat, "no [START_TIME]")
	}
	t, ok := parseISOTime(s[1:rb], p.loc)
	if !ok {
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
	xff, found := envoyXFF(rest)
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
	e.IP = p.clientIP(xff, nil)
	return append(dst, e), nil
}

// envoyXFF finds the X-Forwarded-For field in what follows the status:
// the first quoted field after at least four unquoted ones in a row.
func envoyXFF(s []byte) (xff []byte, ok bool) {
	run := 0
	for {
		s = trimLeftSpace(s)
		if len(s) == 0 {
			return nil, false
		}
		if s[0] == '"' {
			f, rest, ok := quotedField(s)
			if !ok {
				return nil, false
			}
			if run >= 4 {
				return f, true
			}
			run, s = 0, rest
			continue
		}
		_, s = nextField(s)
		run++
	}
}

// envoyJSONPreset covers json_format dictionaries keyed by the lower-case
// names of Envoy's command operators, as Envoy's and Istio's examples
// write them. Client and scopes have no default: with the jwt_authn
// filter's payload_in_metadata they are wherever the dictionary puts
// %DYNAMIC_METADATA(envoy.filters.http.jwt_authn:<key>:client_id)%,
// named by fields.client and fields.scopes.
var envoyJSONPreset = gwPreset{
	format:  "envoy-json",
	time:    []gwTimePath{{"start_time", timeRFC3339}, {"timestamp", timeAuto}, {"time", timeAuto}, {"@timestamp", timeAuto}},
	xff:     []string{"x_forwarded_for", "x-forwarded-for", "forwarded_for"},
	remote:  []string{"downstream_remote_address", "downstream_direct_remote_address"},
	method:  []string{"method", "request_method", ":method"},
	target:  []string{"x_envoy_original_path", "path", "request_path", ":path"},
	request: []string{"request"},
	status:  []string{"response_code", "status", "status_code"},
}

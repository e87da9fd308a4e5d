package ingest

import (
	"errors"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/scopewatch/scopewatch/rules"
)

// gwTrusted is the proxy range of the gateway fixtures.
var gwTrusted = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}

// newTestGateway returns the parser of an access-log format for tests.
func newTestGateway(t testing.TB, src rules.Source) Parser {
	t.Helper()
	if src.Name == "" {
		src.Name = src.Format
	}
	if src.Trusted == nil {
		src.Trusted = gwTrusted
	}
	p, err := NewParser(src)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// runGWGolden checks every fixture of a format against its golden file.
func runGWGolden(t *testing.T, src rules.Source) {
	t.Helper()
	for _, path := range fixtures(t, src.Format) {
		t.Run(caseName(path), func(t *testing.T) {
			got := parseFile(t, newTestGateway(t, src), src.Format, path)
			checkGolden(t, got, strings.TrimSuffix(path, ".log")+".golden.json")
		})
	}
}

// gwMalformed is a line a parser must reject, with the reason and
// field of the *ParseError it must return.
type gwMalformed struct {
	name       string
	line       string
	wantReason string
	wantField  string
}

func runGWMalformed(t *testing.T, src rules.Source, tests []gwMalformed) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newTestGateway(t, src)
			checkParseError(t, p, tt.line, Position{Source: "gw-prod", Line: 9, Offset: 1234}, nil, tt.wantReason, tt.wantField)
		})
	}
}

// fuzzGateway seeds f with the fixtures of a format and checks that a
// line gives either use events or a *ParseError, never both.
func fuzzGateway(f *testing.F, src rules.Source) {
	for _, path := range fixturesF(f, src.Format) {
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		for _, line := range strings.Split(string(data), "\n") {
			f.Add([]byte(line))
		}
	}
	p := newTestGateway(f, src)
	f.Fuzz(func(t *testing.T, line []byte) {
		evs, err := p.Parse(line, Position{Source: "fuzz", Line: 7}, nil)
		if !checkOutcome(t, line, evs, err) {
			return
		}
		if len(evs) > 1 {
			t.Fatalf("Parse(%q) = %d events, want at most one", line, len(evs))
		}
		for _, e := range evs {
			if e.Kind != KindUse || e.Source != "fuzz" {
				t.Fatalf("Parse(%q): bad event %+v", line, e)
			}
			if strings.Contains(e.Path, "?") || (e.Status < 0 || e.Status > 999) {
				t.Fatalf("Parse(%q): path %q status %d", line, e.Path, e.Status)
			}
			for _, s := range e.Granted {
				if s == "" || strings.Contains(s, " ") {
					t.Fatalf("Parse(%q): bad scope %q", line, s)
				}
			}
		}
	})
}

func TestParseNginxGolden(t *testing.T) {
	runGWGolden(t, rules.Source{Format: "nginx"})
}

func TestParseNginxJSONGolden(t *testing.T) {
	runGWGolden(t, rules.Source{Format: "nginx-json", Fields: rules.JSONFields{Client: "client_id"}})
}

func TestParseNginxMalformed(t *testing.T) {
	const ok = `203.0.113.9 - - [25/Oct/2016:14:49:33 +0200] "GET /fhir/Patient/1 HTTP/1.1" 200 612 "-" "curl/8"`
	runGWMalformed(t, rules.Source{Format: "nginx"}, []gwMalformed{
		{"no time", `203.0.113.9 - - "GET / HTTP/1.1" 200 612`, ReasonBadFormat, ""},
		{"too few fields", `203.0.113.9 - [25/Oct/2016:14:49:33 +0200] "GET / HTTP/1.1" 200 612`, ReasonBadFormat, ""},
		{"too many fields", `a b 203.0.113.9 - - [25/Oct/2016:14:49:33 +0200] "GET / HTTP/1.1" 200 612`, ReasonBadFormat, ""},
		{"time without zone", `203.0.113.9 - - [25/Oct/2016:14:49:33] "GET / HTTP/1.1" 200 612`, ReasonBadTime, "time"},
		{"bad month", strings.Replace(ok, "Oct", "Okt", 1), ReasonBadTime, "time"},
		{"day 32", strings.Replace(ok, "25/Oct", "32/Oct", 1), ReasonBadTime, "time"},
		{"unterminated request", `203.0.113.9 - - [25/Oct/2016:14:49:33 +0200] "GET /fhir/Patient/1 HTTP/1.1 200 612`, ReasonBadFormat, "request"},
		{"unquoted request", `203.0.113.9 - - [25/Oct/2016:14:49:33 +0200] GET /fhir 200 612`, ReasonBadFormat, "request"},
		{"word status", strings.Replace(ok, " 200 ", " OK ", 1), ReasonBadField, "status"},
		{"long status", strings.Replace(ok, " 200 ", " 20000 ", 1), ReasonBadField, "status"},
		{"garbage request", strings.Replace(ok, "GET /fhir/Patient/1 HTTP/1.1", `\x16\x03\x01`, 1), ReasonBadField, "request"},
		{"lower-case method", strings.Replace(ok, "GET", "get", 1), ReasonBadField, "request"},
		{"not a protocol", strings.Replace(ok, "HTTP/1.1", "FTP", 1), ReasonBadField, "request"},
	})
}

func TestParseNginxJSONMalformed(t *testing.T) {
	src := rules.Source{Format: "nginx-json", Fields: rules.JSONFields{Client: "client_id"}}
	runGWMalformed(t, src, []gwMalformed{
		{"invalid json", `{"time_local":"14/Mar/2024:09:15:27 +0100"`, ReasonBadJSON, ""},
		{"not an object", `["14/Mar/2024:09:15:27 +0100"]`, ReasonBadFormat, ""},
		{"no time", `{"remote_addr":"10.0.0.2","request":"GET / HTTP/1.1"}`, ReasonNoTime, "time"},
		{"bad time", `{"time_local":"14/Mar/2024:09:15:27"}`, ReasonBadTime, "time"},
		{"bad iso time", `{"time_iso8601":"2024-03-14T25:15:27+01:00"}`, ReasonBadTime, "time"},
		{"bad status", `{"time_local":"14/Mar/2024:09:15:27 +0100","status":"OK"}`, ReasonBadField, "status"},
		{"status object", `{"time_local":"14/Mar/2024:09:15:27 +0100","status":{}}`, ReasonBadField, "status"},
		{"client object", `{"time_local":"14/Mar/2024:09:15:27 +0100","client_id":{"id":"a"}}`, ReasonBadField, "client"},
		{"request array", `{"time_local":"14/Mar/2024:09:15:27 +0100","request":["GET"]}`, ReasonBadField, "request"},
		{"xff object", `{"time_local":"14/Mar/2024:09:15:27 +0100","status":"200","http_x_forwarded_for":{}}`, ReasonBadField, "ip"},
	})
}

func TestNewParserGateway(t *testing.T) {
	tests := []struct {
		name    string
		src     rules.Source
		wantErr string
	}{
		{"nginx", rules.Source{Name: "n", Format: "nginx"}, ""},
		{"nginx-json", rules.Source{Name: "n", Format: "nginx-json"}, ""},
		{"nginx-json time layout", rules.Source{Name: "n", Format: "nginx-json", Fields: rules.JSONFields{Time: "t"}, TimeFormat: "2006-01-02 15:04:05"}, ""},
		{"nginx-json bad time format", rules.Source{Name: "n", Format: "nginx-json", Fields: rules.JSONFields{Time: "t"}, TimeFormat: "epoch_fortnights"}, "time_format"},
		{"nginx-json empty path key", rules.Source{Name: "n", Format: "nginx-json", Fields: rules.JSONFields{Client: "a..b"}}, "fields.client"},
		{"nginx-json bad zone", rules.Source{Name: "n", Format: "nginx-json", TimeZone: "Mars/Olympus"}, "timezone"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := NewParser(tt.src)
			got := ""
			if err != nil {
				got = err.Error()
			}
			if tt.wantErr == "" && err != nil {
				t.Fatalf("NewParser: %v", err)
			}
			if !strings.Contains(got, tt.wantErr) || (tt.wantErr != "" && p != nil) {
				t.Errorf("NewParser error = %q, want it to contain %q", got, tt.wantErr)
			}
		})
	}
}

func FuzzParseNginx(f *testing.F) {
	fuzzGateway(f, rules.Source{Format: "nginx"})
}

func FuzzParseNginxJSON(f *testing.F) {
	fuzzGateway(f, rules.Source{Format: "nginx-json", Fields: rules.JSONFields{Client: "client_id"}})
}

// TestParseGatewayNoRetain checks that events keep no reference to the
// line or to a parser's buffers: the next line must not change them.
func TestParseGatewayNoRetain(t *testing.T) {
	tests := []struct {
		name        string
		src         rules.Source
		line, other string
	}{
		{"nginx", rules.Source{Format: "nginx"},
			`10.0.0.2 - jdoe [14/Mar/2024:09:16:01 +0100] "GET /fhir/Patient/123?a=1 HTTP/1.1" 200 1 "-" "x" "198.51.100.23"`,
			`10.0.0.3 - zzzz [14/Mar/2024:09:16:02 +0100] "PUT /zzzz/Zzzzzzz/999?b=2 HTTP/1.1" 201 1 "-" "x" "203.0.113.99"`},
		{"nginx-json", rules.Source{Format: "nginx-json", Fields: rules.JSONFields{Client: "client_id"}},
			`{"time_local":"14/Mar/2024:09:15:27 +0100","remote_user":"u\"1","request":"GET /fhir/Patient/123?a=1 HTTP/1.1","status":"200","client_id":"lab\u002dapp"}`,
			`{"time_local":"14/Mar/2024:09:15:28 +0100","remote_user":"v\"2","request":"PUT /zzzz/Zzzzzzz/999?b=2 HTTP/1.1","status":"201","client_id":"zzz\u002dzzz"}`},
		{"hapi-fhir", rules.Source{Format: "hapi-fhir", Template: hapiPublicTemplate},
			`2024-01-02 10:11:12.345 [q] INFO  a - Path[/r4] Source[198.51.100.23] Operation[read  Patient/123] UA[x] Params[?a=1] ResponseEncoding[]`,
			`2024-01-02 10:11:13.345 [q] INFO  a - Path[/r4] Source[203.0.113.99] Operation[update  Zzzzzzz/999] UA[x] Params[?b=2] ResponseEncoding[]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newTestGateway(t, tt.src)
			line := []byte(tt.line)
			evs, err := p.Parse(line, Position{Line: 1}, nil)
			if err != nil || len(evs) != 1 {
				t.Fatalf("Parse = %d events, %v", len(evs), err)
			}
			flat := func(e Event) string {
				return strings.Join([]string{e.Method, e.Path, e.Query, e.Client, e.Subject, e.Type, e.IP.String()}, "|")
			}
			want := flat(evs[0]) // a copy, not sharing the line's memory
			if evs[0].Path == "" {
				t.Fatalf("no path in %q", tt.line)
			}
			for i := range line {
				line[i] = 'x'
			}
			if _, err := p.Parse([]byte(tt.other), Position{Line: 2}, nil); err != nil {
				t.Fatal(err)
			}
			if got := flat(evs[0]); got != want {
				t.Errorf("event after reuse = %q, want %q", got, want)
			}
		})
	}
}

// TestParseNginxJSONCountry checks fields.country, before the geoip
// module's default key: a code or a name becomes the code, anything else
// is dropped with the call kept.
func TestParseNginxJSONCountry(t *testing.T) {
	const head = `"time_local":"14/Mar/2024:09:15:27 +0100","request":"GET /fhir/Patient/1 HTTP/1.1","status":"200","remote_addr":"203.0.113.9"`
	tests := []struct {
		name   string
		fields rules.JSONFields
		rest   string
		want   string
		drop   Fields
	}{
		{"default key", rules.JSONFields{}, `"geoip_country_code":"FR"`, "FR", 0},
		{"configured key", rules.JSONFields{Country: "geo.country"}, `"geo":{"country":"br"},"geoip_country_code":"FR"`, "BR", 0},
		{"configured key empty, default used", rules.JSONFields{Country: "geo.country"}, `"geo":{"country":""},"geoip_country_code":"FR"`, "FR", 0},
		{"a name", rules.JSONFields{Country: "cf_ipcountry_name"}, `"cf_ipcountry_name":"Kazakhstan"`, "KZ", 0},
		{"unknown code", rules.JSONFields{Country: "cc"}, `"cc":"XX"`, "", FieldCountry},
		{"placeholder", rules.JSONFields{Country: "cc"}, `"cc":"-"`, "", 0},
		{"a number", rules.JSONFields{Country: "cc"}, `"cc":840`, "", FieldCountry},
		{"absent", rules.JSONFields{Country: "cc"}, `"other":1`, "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newTestGateway(t, rules.Source{Format: "nginx-json", Fields: tt.fields})
			line := `{` + head + `,` + tt.rest + `}`
			evs, err := p.Parse([]byte(line), Position{Line: 1}, nil)
			if err != nil || len(evs) != 1 {
				t.Fatalf("Parse(%s) = %d events, %v", line, len(evs), err)
			}
			if evs[0].Country != tt.want || evs[0].Dropped != tt.drop {
				t.Errorf("country %q dropped %b, want %q %b", evs[0].Country, evs[0].Dropped, tt.want, tt.drop)
			}
		})
	}
	p := newTestGateway(t, rules.Source{Format: "nginx-json", Fields: rules.JSONFields{Country: "cc"}})
	checkParseError(t, p, `{`+head+`,"cc":{"iso":"US"}}`, Position{Source: "gw", Line: 3}, nil, ReasonBadField, "country")
}

// TestParseNginxJSONDroppedIP checks that an address that names none
// keeps the call and marks the IP dropped, while an absent one, a
// placeholder or a Unix socket peer drops nothing.
func TestParseNginxJSONDroppedIP(t *testing.T) {
	const head = `"time_local":"14/Mar/2024:09:15:27 +0100","request":"GET /fhir/Patient/1 HTTP/1.1","status":"200"`
	tests := []struct {
		rest, ip string
		drop     Fields
	}{
		{`"remote_addr":"203.0.113.9"`, "203.0.113.9", 0},
		{`"remote_addr":"10.0.0.2","http_x_forwarded_for":"198.51.100.23"`, "198.51.100.23", 0},
		{`"remote_addr":"unix:"`, "", 0},
		{`"remote_addr":"-","http_x_forwarded_for":"-"`, "", 0},
		{`"remote_addr":"unix:","http_x_forwarded_for":"garbage"`, "", FieldIP},
		{`"remote_addr":"not an address"`, "", FieldIP},
		{`"remote_addr":"10.0.0.2","http_x_forwarded_for":"unknown"`, "10.0.0.2", 0},
	}
	for _, tt := range tests {
		t.Run(tt.rest, func(t *testing.T) {
			p := newTestGateway(t, rules.Source{Format: "nginx-json"})
			evs, err := p.Parse([]byte(`{`+head+`,`+tt.rest+`}`), Position{Line: 1}, nil)
			if err != nil || len(evs) != 1 {
				t.Fatalf("Parse = %d events, %v", len(evs), err)
			}
			ip := ""
			if evs[0].IP.IsValid() {
				ip = evs[0].IP.String()
			}
			if ip != tt.ip || evs[0].Dropped != tt.drop {
				t.Errorf("ip %q dropped %b, want %q %b", ip, evs[0].Dropped, tt.ip, tt.drop)
			}
		})
	}
}

// TestParseNginxRefusedRequestLine: what nginx logs of a request line it
// refused as not HTTP (a TLS handshake on a plain port, an SSH banner, a
// target with a space, answered 400; a timeout, 408; a target too long,
// 414) is no call: ignored as no_request, in the text log and in JSON. The
// same bytes answered 200 say the log is not what the format expects.
func TestParseNginxRefusedRequestLine(t *testing.T) {
	text := newTestParser(t, rules.Source{Format: "nginx"})
	js := newTestParser(t, rules.Source{Format: "nginx-json", Fields: rules.JSONFields{Client: "client_id"}})
	pos := Position{Source: "gw", Line: 1}
	for _, c := range []struct {
		name, request, status string
		want                  error // nil: malformed in the text log, an event in JSON
	}{
		{"tls handshake", `\x16\x03\x01\x00\xF7\x01\x00\x00\xF3\x03\x03`, "400", SkipNoRequest},
		{"ssh banner", `SSH-2.0-Go`, "400", SkipNoRequest},
		{"space in target", `GET /a b HTTP/1.1`, "400", SkipNoRequest},
		{"timeout", `-`, "408", SkipNoRequest},
		{"too long, cut", `GET /a\x22 b c`, "414", SkipNoRequest},
		{"junk served", `\x16\x03\x01`, "200", nil},
		{"junk forbidden", `\x16\x03\x01`, "403", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			line := `203.0.113.5 - - [14/Mar/2024:09:15:27 +0000] "` + c.request + `" ` + c.status + ` 157 "-" "-"`
			_, err := text.Parse([]byte(line), pos, nil)
			var pe *ParseError
			switch {
			case c.want != nil && err != c.want:
				t.Errorf("text: %v, want %v", err, c.want)
			case c.want == nil && c.request != "-" && !errors.As(err, &pe):
				t.Errorf("text: %v, want a malformed line", err)
			}
			rec := `{"time_iso8601":"2024-03-14T09:15:27+00:00","remote_addr":"203.0.113.5","request":"` +
				strings.ReplaceAll(c.request, `\x`, `\u00`) + `","status":"` + c.status + `"}`
			evs, err := js.Parse([]byte(rec), pos, nil)
			switch {
			case c.want != nil && err != c.want:
				t.Errorf("json: %v, want %v", err, c.want)
			case c.want == nil && (err != nil || len(evs) != 1):
				t.Errorf("json: %d events, %v; want the record as an event", len(evs), err)
			}
		})
	}
	for _, rec := range []string{
		`{"time_iso8601":"2024-03-14T09:15:27+00:00","remote_addr":"203.0.113.5","request":"","status":"400"}`,
		`{"time_iso8601":"2024-03-14T09:15:27+00:00","remote_addr":"203.0.113.5","request":"-","status":"200"}`,
	} {
		if _, err := js.Parse([]byte(rec), pos, nil); err != SkipNoRequest {
			t.Errorf("%s: %v, want no_request", rec, err)
		}
	}
}

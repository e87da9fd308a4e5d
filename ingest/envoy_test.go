package ingest

import (
	"strings"
	"testing"
	"time"

	"github.com/scopewatch/scopewatch/rules"
)

// envoyJSONSource reads jwt_authn claims put under "jwt" by the json_format.
var envoyJSONSource = rules.Source{Format: "envoy-json", Fields: rules.JSONFields{
	Client: "jwt.client_id", Scopes: "jwt.scope", Subject: "jwt.sub",
}}

func TestParseEnvoyGolden(t *testing.T) {
	runGWGolden(t, rules.Source{Format: "envoy"})
}

func TestParseEnvoyJSONGolden(t *testing.T) {
	runGWGolden(t, envoyJSONSource)
}

func TestParseEnvoyMalformed(t *testing.T) {
	const ok = `[2019-04-08T16:50:12.533Z] "GET /fhir/Observation HTTP/1.1" 200 - 0 1234 12 11 "203.0.113.9" "curl/8" "id" "api.example.org" "10.0.0.5:8080"`
	runGWMalformed(t, rules.Source{Format: "envoy"}, []gwMalformed{
		{"no time", strings.TrimPrefix(ok, "[2019-04-08T16:50:12.533Z] "), ReasonBadFormat, ""},
		{"unclosed time", "[2019-04-08T16:50:12.533Z", ReasonBadFormat, ""},
		{"bad time", strings.Replace(ok, "04-08T16", "04-31T16", 1), ReasonBadTime, "time"},
		{"time without T", strings.Replace(ok, "04-08T16", "04-08_16", 1), ReasonBadTime, "time"},
		{"unquoted request", `[2019-04-08T16:50:12.533Z] GET /fhir 200`, ReasonBadFormat, "request"},
		{"word status", strings.Replace(ok, " 200 ", " OK ", 1), ReasonBadField, "status"},
		{"truncated", `[2019-04-08T16:50:12.533Z] "GET /fhir/Observation HTTP/1.1" 200 - 0 1234`, ReasonBadFormat, ""},
		{"unterminated xff", `[2019-04-08T16:50:12.533Z] "GET /fhir HTTP/1.1" 200 - 0 1 2 3 "203.0.113.9`, ReasonBadFormat, ""},
		{"bad request", strings.Replace(ok, "GET /fhir/Observation HTTP/1.1", "GET", 1), ReasonBadField, "request"},
		{"header, bad access line", "[2024-03-14 09:00:01.234][15][info][envoy.access] " + strings.Replace(ok, " 200 ", " OK ", 1), ReasonBadField, "status"},
		{"header, bad start time", "[2024-03-14 09:00:01.234][15][info][envoy.access] [2019-04-31T16:50:12.533Z] \"GET / HTTP/1.1\" 200", ReasonBadTime, "time"},
		{"unknown tag", "ENVOY " + ok, ReasonBadFormat, ""},
		{"tag without a space", "ACCESS" + ok, ReasonBadFormat, ""},
		{"tag alone", "access:", ReasonBadFormat, ""},
		{"header of one field", "[2024-03-14 09:00:01.234][15] " + ok, ReasonBadFormat, "request"},
		{"unclosed header", "[2024-03-14 09:00:01.234][15][info", ReasonBadFormat, "request"},
	})
}

// TestParseEnvoyPrefixes checks the prefixes before an access-log line:
// Envoy's application-log header (with and without the source location)
// and a tag, and that the server's own messages behind the header are
// another logger's.
func TestParseEnvoyPrefixes(t *testing.T) {
	const access = `[2024-03-14T09:00:01.234Z] "GET /fhir/Patient?name=smith HTTP/1.1" 200 - 0 5120 18 17 "198.51.100.23,10.0.0.2" "portal/5" "id" "fhir.example.org" "10.0.0.5:8080"`
	tests := []struct {
		name, line string
		want       error // nil for the event of access
	}{
		{"none", access, nil},
		{"header", "[2024-03-14 09:00:01.234][15][info][envoy.access] " + access, nil},
		{"header with source", "[2024-03-14 09:00:01.234][15][info][envoy.access] [source/common/access_log/access_log_impl.cc:91] " + access, nil},
		{"istio header", "[2024-03-14 09:00:01.234][28][debug][http] " + access, nil},
		{"header with zone", "[2024-03-14T09:00:01.234+01:00][28][info][envoy.access_loggers]  " + access, nil},
		{"ACCESS", "ACCESS " + access, nil},
		{"access:", "access: " + access, nil},
		{"Access_Log:", "Access_Log:  " + access, nil},
		{"access-log", "access-log " + access, nil},
		{"main loop", "[2024-03-14 09:00:00.012][1][info][main] [source/server/server.cc:932] starting main dispatch loop", SkipOtherLogger},
		{"old default", "[2019-04-08 16:50:12.533][1][info][main] starting main dispatch loop", SkipOtherLogger},
		{"stream message", "[2024-03-14 09:00:03.456][28][debug][http] [source/common/http/conn_manager_impl.cc:329] [C12][S1] request headers complete (end_stream=true):", SkipOtherLogger},
		{"no source location, bracketed message", "[2024-03-14 09:00:03.456][28][debug][pool] [C7] connection released", SkipOtherLogger},
		{"empty message", "[2024-03-14 09:00:03.456][28][debug][pool]", SkipOtherLogger},
		{"tcp behind header", `[2024-03-14 09:00:07.000][15][info][envoy.access] [2024-03-14T09:00:07.000Z] "- - -" 0 - 517 3826 1501 - "-" "-" "-" "-" "10.0.0.9:5432"`, SkipNoRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newTestGateway(t, rules.Source{Format: "envoy"})
			evs, err := p.Parse([]byte(tt.line), Position{Line: 1}, nil)
			if err != tt.want {
				t.Fatalf("Parse(%q) = %d events, %v, want %v", tt.line, len(evs), err, tt.want)
			}
			if tt.want != nil {
				return
			}
			if len(evs) != 1 {
				t.Fatalf("Parse(%q) = %d events", tt.line, len(evs))
			}
			e := evs[0]
			if e.Time.Format(time.RFC3339Nano) != "2024-03-14T09:00:01.234Z" || e.Path != "/fhir/Patient" || e.IP.String() != "198.51.100.23" || e.Status != 200 {
				t.Errorf("event %+v", e)
			}
		})
	}
}

// TestParseEnvoyDroppedIP checks that an X-Forwarded-For value without a
// readable address keeps the event and marks the address dropped, while
// an absent one ("-") drops nothing.
func TestParseEnvoyDroppedIP(t *testing.T) {
	tests := []struct {
		xff, ip string
		want    Fields
	}{
		{"203.0.113.9", "203.0.113.9", 0},
		{"203.0.113.9, 10.0.0.2", "203.0.113.9", 0},
		{"-", "", 0},
		{"", "", 0},
		{"unknown", "", FieldIP},
		{"garbage, more garbage", "", FieldIP},
	}
	for _, tt := range tests {
		t.Run(tt.xff, func(t *testing.T) {
			line := `[2019-04-08T16:50:12.533Z] "GET /fhir/Observation HTTP/1.1" 200 - 0 1234 12 11 "` + tt.xff + `" "curl/8" "id" "api.example.org" "10.0.0.5:8080"`
			evs, err := newTestGateway(t, rules.Source{Format: "envoy"}).Parse([]byte(line), Position{Line: 1}, nil)
			if err != nil || len(evs) != 1 {
				t.Fatalf("Parse(%q) = %d events, %v", line, len(evs), err)
			}
			ip := ""
			if evs[0].IP.IsValid() {
				ip = evs[0].IP.String()
			}
			if ip != tt.ip || evs[0].Dropped != tt.want {
				t.Errorf("ip %q dropped %b, want %q %b", ip, evs[0].Dropped, tt.ip, tt.want)
			}
		})
	}
}

func TestParseEnvoyJSONMalformed(t *testing.T) {
	runGWMalformed(t, envoyJSONSource, []gwMalformed{
		{"invalid json", `{"start_time":"2024-03-14T09:19:20.123Z"`, ReasonBadJSON, ""},
		{"no time", `{"method":"GET","path":"/fhir/Patient/77"}`, ReasonNoTime, "time"},
		{"bad time", `{"start_time":"2024-03-14"}`, ReasonBadTime, "time"},
		{"bad status", `{"start_time":"2024-03-14T09:19:20Z","response_code":"2xx"}`, ReasonBadField, "status"},
		{"scopes object", `{"start_time":"2024-03-14T09:19:20Z","jwt":{"scope":{}}}`, ReasonBadField, "scopes"},
		{"scopes numbers", `{"start_time":"2024-03-14T09:19:20Z","jwt":{"scope":[1]}}`, ReasonBadField, "scopes"},
		{"client array", `{"start_time":"2024-03-14T09:19:20Z","jwt":{"client_id":["a"]}}`, ReasonBadField, "client"},
		{"subject object", `{"start_time":"2024-03-14T09:19:20Z","jwt":{"sub":{}}}`, ReasonBadField, "subject"},
		{"method number array", `{"start_time":"2024-03-14T09:19:20Z","method":[1]}`, ReasonBadField, "method"},
		{"path object", `{"start_time":"2024-03-14T09:19:20Z","path":{}}`, ReasonBadField, "path"},
	})
}

func FuzzParseEnvoy(f *testing.F) {
	fuzzGateway(f, rules.Source{Format: "envoy"})
}

func FuzzParseEnvoyJSON(f *testing.F) {
	fuzzGateway(f, envoyJSONSource)
}

// TestParseEnvoyIstioRemote: Istio's default text format ends with the
// downstream addresses. A request without X-Forwarded-For (a client
// straight at the ingress gateway) gets %DOWNSTREAM_REMOTE_ADDRESS%, as
// envoy-json gets downstream_remote_address; with the header, the
// header's client stands, whatever the peer; Envoy's own default, which
// ends with the upstream host, has no peer.
func TestParseEnvoyIstioRemote(t *testing.T) {
	p := newTestParser(t, rules.Source{Format: "envoy"})
	const head = `[2024-03-14T09:19:20.123Z] "GET /fhir/Patient/77 HTTP/1.1" 200 - via_upstream - "-" 0 2210 23 21 `
	for _, c := range []struct{ name, line, want string }{
		{"istio, no xff", head + `"-" "curl/8" "0f9e" "fhir.example.org" "10.20.0.14:8080" outbound|8080||hapi.svc 10.20.0.9:41234 10.20.0.14:8080 203.0.113.77:51234 - default`, "203.0.113.77"},
		{"istio, xff, private peer", head + `"198.51.100.7" "curl/8" "0f9e" "fhir.example.org" "10.20.0.14:8080" outbound|8080||hapi.svc 10.20.0.9:41234 10.20.0.14:8080 10.0.0.2:51234 - default`, "198.51.100.7"},
		{"istio, xff, public peer", head + `"198.51.100.7" "curl/8" "0f9e" "fhir.example.org" "10.20.0.14:8080" outbound|8080||hapi.svc 10.20.0.9:41234 10.20.0.14:8080 35.191.10.20:55555 - default`, "198.51.100.7"},
		{"istio, ipv6 peer", head + `"-" "curl/8" "0f9e" "fhir.example.org" "10.20.0.14:8080" outbound|8080||hapi.svc 10.20.0.9:41234 10.20.0.14:8080 [2001:db8::7]:51234 - default`, "2001:db8::7"},
		{"envoy default", `[2024-03-14T09:19:20.123Z] "GET /fhir/Patient/77 HTTP/1.1" 200 - 0 2210 23 21 "-" "curl/8" "0f9e" "fhir.example.org" "10.20.0.14:8080"`, ""},
	} {
		evs, err := p.Parse([]byte(c.line), Position{Source: "envoy", Line: 1}, nil)
		if err != nil || len(evs) != 1 {
			t.Errorf("%s: %d events, %v", c.name, len(evs), err)
			continue
		}
		got := ""
		if evs[0].IP.IsValid() {
			got = evs[0].IP.String()
		}
		if got != c.want || evs[0].Path != "/fhir/Patient/77" {
			t.Errorf("%s: ip %q path %q, want %q", c.name, got, evs[0].Path, c.want)
		}
	}
}

// TestParseEnvoyGatewayJSON: Envoy Gateway's default JSON access log
// keys the path as x-envoy-origin-path.
func TestParseEnvoyGatewayJSON(t *testing.T) {
	p := newTestParser(t, rules.Source{Format: "envoy-json"})
	line := `{"start_time":"2024-03-14T09:19:20.123Z","method":"GET","x-envoy-origin-path":"/fhir/Patient/2","protocol":"HTTP/1.1",` +
		`"response_code":"200","x-forwarded-for":"203.0.113.9","user-agent":"curl/8","upstream_host":"10.0.0.9:8080","downstream_remote_address":"10.0.0.3:5555"}`
	evs, err := p.Parse([]byte(line), Position{Source: "envoy", Line: 1}, nil)
	if err != nil || len(evs) != 1 || evs[0].Path != "/fhir/Patient/2" || evs[0].Method != "GET" || evs[0].IP.String() != "203.0.113.9" {
		t.Errorf("%+v, %v; want GET /fhir/Patient/2 from 203.0.113.9", evs, err)
	}
}

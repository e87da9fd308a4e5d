package ingest

import (
	"strings"
	"testing"

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
		{"envoy application log", "[2019-04-08 16:50:12.533][1][info][main] starting main dispatch loop", ReasonBadFormat, "request"},
		{"unquoted request", `[2019-04-08T16:50:12.533Z] GET /fhir 200`, ReasonBadFormat, "request"},
		{"word status", strings.Replace(ok, " 200 ", " OK ", 1), ReasonBadField, "status"},
		{"truncated", `[2019-04-08T16:50:12.533Z] "GET /fhir/Observation HTTP/1.1" 200 - 0 1234`, ReasonBadFormat, ""},
		{"unterminated xff", `[2019-04-08T16:50:12.533Z] "GET /fhir HTTP/1.1" 200 - 0 1 2 3 "203.0.113.9`, ReasonBadFormat, ""},
		{"bad request", strings.Replace(ok, "GET /fhir/Observation HTTP/1.1", "GET", 1), ReasonBadField, "request"},
	})
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

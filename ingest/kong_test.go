package ingest

import (
	"testing"

	"github.com/scopewatch/scopewatch/rules"
)

func TestParseKongGolden(t *testing.T) {
	runGWGolden(t, rules.Source{Format: "kong"})
}

func TestParseKongMalformed(t *testing.T) {
	runGWMalformed(t, rules.Source{Format: "kong"}, []gwMalformed{
		{"invalid json", `{"request":{"method":"GET"}`, ReasonBadJSON, ""},
		{"array", `[{"started_at":1710407727123}]`, ReasonBadFormat, ""},
		{"no started_at", `{"request":{"method":"GET","uri":"/a"},"response":{"status":200}}`, ReasonNoTime, "time"},
		{"started_at string", `{"started_at":"yesterday"}`, ReasonBadTime, "time"},
		{"started_at object", `{"started_at":{}}`, ReasonBadTime, "time"},
		{"status word", `{"started_at":1710407727123,"response":{"status":"ok"}}`, ReasonBadField, "status"},
		{"status bool", `{"started_at":1710407727123,"response":{"status":true}}`, ReasonBadField, "status"},
		{"consumer username object", `{"started_at":1710407727123,"consumer":{"username":{}}}`, ReasonBadField, "client"},
		{"uri array", `{"started_at":1710407727123,"request":{"uri":[]}}`, ReasonBadField, "path"},
		{"client_ip object", `{"started_at":1710407727123,"request":{"method":"GET"},"client_ip":{}}`, ReasonBadField, "ip"},
	})
}

func FuzzParseKong(f *testing.F) {
	fuzzGateway(f, rules.Source{Format: "kong"})
}

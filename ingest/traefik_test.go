package ingest

import (
	"testing"

	"github.com/scopewatch/scopewatch/rules"
)

// traefikSource reads the client id from a header the access log keeps.
var traefikSource = rules.Source{Format: "traefik", Fields: rules.JSONFields{Client: "request_X-Client-Id"}}

func TestParseTraefikGolden(t *testing.T) {
	runGWGolden(t, traefikSource)
}

func TestParseTraefikMalformed(t *testing.T) {
	runGWMalformed(t, traefikSource, []gwMalformed{
		{"invalid json", `{"RequestMethod":"GET",`, ReasonBadJSON, ""},
		{"no time", `{"RequestMethod":"GET","RequestPath":"/a","DownstreamStatus":200}`, ReasonNoTime, "time"},
		{"bad StartUTC", `{"StartUTC":"2024-03-14T25:15:31Z"}`, ReasonBadTime, "time"},
		{"StartUTC number", `{"StartUTC":1710407727}`, ReasonBadTime, "time"},
		{"bad status", `{"StartUTC":"2024-03-14T09:15:31Z","DownstreamStatus":"OK"}`, ReasonBadField, "status"},
		{"status too long", `{"StartUTC":"2024-03-14T09:15:31Z","DownstreamStatus":20000}`, ReasonBadField, "status"},
		{"client header array", `{"StartUTC":"2024-03-14T09:15:31Z","request_X-Client-Id":["a"]}`, ReasonBadField, "client"},
		{"username object", `{"StartUTC":"2024-03-14T09:15:31Z","ClientUsername":{}}`, ReasonBadField, "client"},
		{"path object", `{"StartUTC":"2024-03-14T09:15:31Z","RequestPath":{}}`, ReasonBadField, "path"},
	})
}

func FuzzParseTraefik(f *testing.F) {
	fuzzGateway(f, traefikSource)
}

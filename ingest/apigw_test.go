package ingest

import (
	"testing"

	"github.com/scopewatch/scopewatch/rules"
)

func TestParseAPIGWGolden(t *testing.T) {
	runGWGolden(t, rules.Source{Format: "apigw"})
}

func TestParseAPIGWMalformed(t *testing.T) {
	runGWMalformed(t, rules.Source{Format: "apigw"}, []gwMalformed{
		{"invalid json", `{"requestId":"x"`, ReasonBadJSON, ""},
		{"no time", `{"requestId":"x","ip":"192.0.2.1","httpMethod":"GET","resourcePath":"/pets","status":"200"}`, ReasonNoTime, "time"},
		{"iso requestTime", `{"requestTime":"2024-03-14T09:15:33Z"}`, ReasonBadTime, "time"},
		{"bad epoch", `{"requestTimeEpoch":"soon"}`, ReasonBadTime, "time"},
		{"bad status", `{"requestTime":"14/Mar/2024:09:15:27 +0000","status":"OK"}`, ReasonBadField, "status"},
		{"claims client object", `{"requestTime":"14/Mar/2024:09:15:27 +0000","authorizer":{"claims":{"client_id":{}}}}`, ReasonBadField, "client"},
		{"scope object", `{"requestTime":"14/Mar/2024:09:15:27 +0000","authorizer.claims.scope":{}}`, ReasonBadField, "scopes"},
		{"routeKey number array", `{"requestTime":"14/Mar/2024:09:15:27 +0000","routeKey":[1]}`, ReasonBadField, "request"},
	})
}

func FuzzParseAPIGW(f *testing.F) {
	fuzzGateway(f, rules.Source{Format: "apigw"})
}

package ingest

import (
	"strings"
	"testing"
)

func TestParseAuth0Golden(t *testing.T) {
	for _, path := range fixtures(t, "auth0") {
		t.Run(caseName(path), func(t *testing.T) {
			got := parseFile(t, newTestIdP(t, "auth0"), "auth0", path)
			checkGolden(t, got, strings.TrimSuffix(path, ".log")+".golden.json")
		})
	}
}

func TestParseAuth0Malformed(t *testing.T) {
	const head = `"type":"seccft","client_id":"q9Tz4LmN2bVc7XkR5sWd8FgJ3hYp6Ae1"`
	const at = `"date":"2024-03-14T09:15:27.801Z"`
	checkMalformed(t, "auth0", []idpBadLine{
		{"bad json", `{"log_id":"900","data":{` + head + `,` + at + `}`, ReasonBadJSON, ""},
		{"bad json in array", `[{` + head + `,` + at + `},{"type":}]`, ReasonBadJSON, ""},
		{"trailing data", `{` + head + `,` + at + `}]`, ReasonBadJSON, ""},
		{"not an object", `"seccft"`, ReasonBadFormat, ""},
		{"impossible date", `{"data":{` + head + `,"date":"2023-02-29T09:15:27.801Z"}}`, ReasonBadTime, "date"},
		{"bad time", `{` + head + `,"date":"2024-03-14 at noon"}`, ReasonBadTime, "date"},
		{"time is a number", `{` + head + `,"date":1710407727801}`, ReasonBadTime, "date"},
		{"no time", `{` + head + `}`, ReasonNoTime, "date"},
		{"ignored type still needs a time", `{"type":"sapi","date":"2024-13-01T00:00:00Z"}`, ReasonBadTime, "date"},
		{"no type", `{` + at + `,"client_id":"x"}`, ReasonNoType, "type"},
		{"type not a string", `{"type":1,` + at + `}`, ReasonBadField, "type"},
		{"no client", `{"type":"seacft",` + at + `,"client_id":""}`, ReasonNoClient, "client_id"},
		{"client not a string", `{"type":"seacft",` + at + `,"client_id":{}}`, ReasonBadField, "client_id"},
		{"user not a string", `{` + head + `,` + at + `,"user_id":false}`, ReasonBadField, "user_id"},
		{"scope an object", `{` + head + `,` + at + `,"scope":{"s":"openid"}}`, ReasonBadField, "scope"},
		{"scope array of numbers", `{` + head + `,` + at + `,"scope":["openid",7]}`, ReasonBadField, "scope"},
		{"qs scope not a string", `{` + head + `,` + at + `,"details":{"qs":{"scope":["openid"]}}}`, ReasonBadField, "details.qs.scope"},
		{"bad ip", `{` + head + `,` + at + `,"ip":"203.0.113"}`, ReasonBadField, "ip"},
		{"ip a number", `{` + head + `,` + at + `,"ip":3405803826}`, ReasonBadField, "ip"},
		{"country not a string", `{` + head + `,` + at + `,"location_info":{"country_code":49}}`, ReasonBadField, "location_info.country_code"},
		{"error message not a string", `{"type":"f",` + at + `,"details":{"error":{"message":7}}}`, ReasonBadField, "details.error.message"},
		{"description not a string", `{"type":"f",` + at + `,"description":["x"]}`, ReasonBadField, "description"},
		{"bad element after good one", `[{` + head + `,` + at + `},{"data":{` + head + `,"date":"2024-04-31T00:00:00Z"}}]`, ReasonBadTime, "date"},
	})
}

func FuzzParseAuth0(f *testing.F) { fuzzIdP(f, "auth0") }

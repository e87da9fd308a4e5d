package ingest

import (
	"strings"
	"testing"
)

func TestParseEntraGolden(t *testing.T) {
	for _, path := range fixtures(t, "entra") {
		t.Run(caseName(path), func(t *testing.T) {
			got := parseFile(t, newTestIdP(t, "entra"), "entra", path)
			checkGolden(t, got, strings.TrimSuffix(path, ".log")+".golden.json")
		})
	}
}

func TestParseEntraMalformed(t *testing.T) {
	const head = `"category":"SignInLogs","resultType":"0"`
	const at = `"time":"2024-03-14T09:15:27.8013406Z"`
	const app = `"properties":{"appId":"e4b7c2d9-6a1f-4c8e-b3d5-7f9a0b1c2d3e"}`
	checkMalformed(t, "entra", []idpBadLine{
		{"bad json", `{` + head + `,` + at, ReasonBadJSON, ""},
		{"bad json in records", `{"records":[{` + head + `,` + at + `},{"category":]}`, ReasonBadJSON, ""},
		{"not an object", `true`, ReasonBadFormat, ""},
		{"records not an array", `{"records":"none"}`, ReasonBadField, "records"},
		{"impossible date", `{` + head + `,"time":"2023-06-31T09:15:27.8013406Z",` + app + `}`, ReasonBadTime, "time"},
		{"bad time", `{` + head + `,"time":"Thu Mar 14 09:15:27 2024",` + app + `}`, ReasonBadTime, "time"},
		{"bad created time", `{` + head + `,"properties":{"createdDateTime":"2024-03-14T25:00:00Z"}}`, ReasonBadTime, "properties.createdDateTime"},
		{"time is a number", `{` + head + `,"time":1710407727,` + app + `}`, ReasonBadTime, "time"},
		{"no time", `{` + head + `,` + app + `}`, ReasonNoTime, "time"},
		{"no category", `{"resultType":"0",` + at + `,` + app + `}`, ReasonNoType, "category"},
		{"category not a string", `{"category":["SignInLogs"],` + at + `}`, ReasonBadField, "category"},
		{"result an object", `{"category":"SignInLogs","resultType":{},` + at + `,` + app + `}`, ReasonBadField, "resultType"},
		{"no client", `{` + head + `,` + at + `,"properties":{"appId":null}}`, ReasonNoClient, "properties.appId"},
		{"client not a string", `{` + head + `,` + at + `,"properties":{"appId":1}}`, ReasonBadField, "properties.appId"},
		{"user not a string", `{` + head + `,` + at + `,"properties":{"appId":"a","userId":{}}}`, ReasonBadField, "properties.userId"},
		{"bad caller ip", `{` + head + `,` + at + `,` + app + `,"callerIpAddress":"198.51.100"}`, ReasonBadField, "callerIpAddress"},
		{"bad ip", `{` + head + `,` + at + `,"properties":{"appId":"a","ipAddress":"x"}}`, ReasonBadField, "properties.ipAddress"},
		{"country not a string", `{` + head + `,` + at + `,"properties":{"appId":"a","location":{"countryOrRegion":1}}}`, ReasonBadField, "properties.location.countryOrRegion"},
		{"bad record after good one", `{"records":[{` + head + `,` + at + `,` + app + `},{` + head + `,"time":"2024-04-31T00:00:00Z",` + app + `}]}`, ReasonBadTime, "time"},
	})
}

func FuzzParseEntra(f *testing.F) { fuzzIdP(f, "entra") }

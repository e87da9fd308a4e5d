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
		{"bad record after good one", `{"records":[{` + head + `,` + at + `,` + app + `},{` + head + `,"time":"2024-04-31T00:00:00Z",` + app + `}]}`, ReasonBadTime, "time"},
	})
}

// TestParseEntraDropped checks that an address or a country that cannot
// be read is left empty and marked dropped, and the sign-in kept, as for
// the other identity providers.
func TestParseEntraDropped(t *testing.T) {
	const head = `"category":"SignInLogs","resultType":"0","time":"2024-03-14T09:15:27.8013406Z"`
	tests := []struct {
		name, caller, props string
		wantIP, wantCtry    string
		want                Fields
	}{
		{"readable", `"203.0.113.50"`, `"location":{"countryOrRegion":"DE"}`, "203.0.113.50", "DE", 0},
		{"the record's address", `""`, `"ipAddress":"2001:db8::17"`, "2001:db8::17", "", 0},
		{"absent", `null`, `"location":{}`, "", "", 0},
		{"caller truncated", `"198.51.100"`, `"location":{"countryOrRegion":"US"}`, "", "US", FieldIP},
		{"record's garbage", `""`, `"ipAddress":"x"`, "", "", FieldIP},
		{"placeholder", `"0.0.0.0"`, ``, "", "", FieldIP},
		{"address a number", `7`, ``, "", "", FieldIP},
		{"country a number", `"203.0.113.50"`, `"location":{"countryOrRegion":1}`, "203.0.113.50", "", FieldCountry},
		{"country unknown", `"203.0.113.50"`, `"location":{"countryOrRegion":"Atlantis"}`, "203.0.113.50", "", FieldCountry},
		{"country by name", `"203.0.113.50"`, `"location":{"countryOrRegion":"Germany"}`, "203.0.113.50", "DE", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			props := `"appId":"e4b7c2d9"`
			if tt.props != "" {
				props += "," + tt.props
			}
			line := `{` + head + `,"callerIpAddress":` + tt.caller + `,"properties":{` + props + `}}`
			evs, err := newTestIdP(t, "entra").Parse([]byte(line), Position{Line: 1}, nil)
			if err != nil || len(evs) == 0 {
				t.Fatalf("Parse(%s) = %d events, %v", line, len(evs), err)
			}
			for _, e := range evs {
				ip := ""
				if e.IP.IsValid() {
					ip = e.IP.String()
				}
				if ip != tt.wantIP || e.Country != tt.wantCtry || e.Dropped != tt.want {
					t.Errorf("%s: ip %q country %q dropped %b, want %q %q %b", line, ip, e.Country, e.Dropped, tt.wantIP, tt.wantCtry, tt.want)
				}
			}
		})
	}
}

func FuzzParseEntra(f *testing.F) { fuzzIdP(f, "entra") }

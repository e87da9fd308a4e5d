package ingest

import (
	"fmt"
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
		{"error message not a string", `{"type":"f",` + at + `,"details":{"error":{"message":7}}}`, ReasonBadField, "details.error.message"},
		{"oauthError not a string", `{"type":"f",` + at + `,"details":{"error":{"oauthError":["invalid_scope"],"message":"x"}}}`, ReasonBadField, "details.error.oauthError"},
		{"prompts an object", `{` + head + `,` + at + `,"details":{"prompts":{"name":"consent"}}}`, ReasonBadField, "details.prompts"},
		{"grantInfo scope an object", `{` + head + `,` + at + `,"details":{"prompts":[{"name":"consent","grantInfo":{"scope":{"openid":true}}}]}}`, ReasonBadField, "details.prompts.grantInfo.scope"},
		{"grantInfo scope numbers", `{"type":"f",` + at + `,"details":{"prompts":[{"grantInfo":{"scope":[1]}}]}}`, ReasonBadField, "details.prompts.grantInfo.scope"},
		{"description not a string", `{"type":"f",` + at + `,"description":["x"]}`, ReasonBadField, "description"},
		{"bad element after good one", `[{` + head + `,` + at + `},{"data":{` + head + `,"date":"2024-04-31T00:00:00Z"}}]`, ReasonBadTime, "date"},
	})
}

func FuzzParseAuth0(f *testing.F) { fuzzIdP(f, "auth0") }

// TestParseAuth0Reason checks that the OAuth error code is the reason,
// before the human message and the description.
func TestParseAuth0Reason(t *testing.T) {
	const head = `"type":"feccft","date":"2024-03-14T09:15:27.801Z","client_id":"c1","description":"Unauthorized"`
	tests := []struct{ name, details, want string }{
		{"oauthError", `{"error":{"message":"Client has not been granted scopes: a","oauthError":"invalid_scope","type":"request-error"}}`, "invalid_scope"},
		{"oauthError alone", `{"error":{"oauthError":"unauthorized_client"}}`, "unauthorized_client"},
		{"empty oauthError", `{"error":{"oauthError":"","message":"Wrong email or password."}}`, "Wrong email or password."},
		{"message", `{"error":{"message":"Wrong email or password."}}`, "Wrong email or password."},
		{"string", `{"error":"access_denied"}`, "access_denied"},
		{"object without either", `{"error":{"type":"request-error"}}`, "Unauthorized"},
		{"no error", `{}`, "Unauthorized"},
		{"no details", `null`, "Unauthorized"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			line := `{` + head + `,"details":` + tt.details + `}`
			evs, err := newTestIdP(t, "auth0").Parse([]byte(line), Position{Line: 1}, nil)
			if err != nil || len(evs) != 1 {
				t.Fatalf("Parse(%s) = %d events, %v", line, len(evs), err)
			}
			if evs[0].Reason != tt.want {
				t.Errorf("reason %q, want %q", evs[0].Reason, tt.want)
			}
		})
	}
}

// TestParseAuth0Requested checks that consent scopes count as asked for,
// merged with the query's and the failure's own, without duplicates.
func TestParseAuth0Requested(t *testing.T) {
	const at = `"date":"2024-03-14T09:15:27.801Z","client_id":"c1"`
	tests := []struct{ name, line, want, granted string }{
		{"grant, consent string", `{"type":"s",` + at + `,"scope":"openid profile","details":{"prompts":[{"name":"login"},{"name":"consent","grantInfo":{"scope":"openid profile patient/*.rs"}}]}}`, "openid profile patient/*.rs", "openid profile"},
		{"grant, consent array", `{"type":"s",` + at + `,"details":{"prompts":[{"name":"consent","grantInfo":{"scope":["openid","user/*.rs"]}}]}}`, "openid user/*.rs", ""},
		{"grant, query and consent", `{"type":"s",` + at + `,"details":{"qs":{"scope":"openid offline_access"},"prompts":[{"grantInfo":{"scope":"openid profile"}}]}}`, "openid offline_access profile", ""},
		{"deny, scope and consent", `{"type":"f",` + at + `,"scope":["openid","patient/*.cruds"],"details":{"prompts":[{"grantInfo":{"scope":"patient/*.cruds openid launch"}}]}}`, "openid patient/*.cruds launch", ""},
		{"deny, query and consent", `{"type":"f",` + at + `,"scope":"ignored","details":{"qs":{"scope":"openid"},"prompts":[{"grantInfo":{"scope":"openid"}}]}}`, "openid", ""},
		{"two consents", `{"type":"s",` + at + `,"details":{"prompts":[{"grantInfo":{"scope":"a b"}},{"grantInfo":{"scope":"b c"}},"x",{"grantInfo":null}]}}`, "a b c", ""},
		{"empty consent", `{"type":"s",` + at + `,"details":{"qs":{"scope":"openid"},"prompts":[{"grantInfo":{"scope":""}},{"grantInfo":{"scope":[]}}]}}`, "openid", ""},
		{"no prompts", `{"type":"s",` + at + `,"details":{"prompts":[]}}`, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newTestIdP(t, "auth0")
			for range 2 { // the second parse reads the merged list from the cache
				evs, err := p.Parse([]byte(tt.line), Position{Line: 1}, nil)
				if err != nil || len(evs) != 1 {
					t.Fatalf("Parse(%s) = %d events, %v", tt.line, len(evs), err)
				}
				if got := strings.Join(evs[0].Requested, " "); got != tt.want {
					t.Errorf("requested %q, want %q", got, tt.want)
				}
				if got := strings.Join(evs[0].Granted, " "); got != tt.granted {
					t.Errorf("granted %q, want %q", got, tt.granted)
				}
				if r := evs[0].Requested; len(r) != cap(r) {
					t.Errorf("requested has len %d cap %d: an append would write into a shared list", len(r), cap(r))
				}
			}
		})
	}
	p := newTestIdP(t, "auth0")
	line := []byte(tests[2].line)
	dst := make([]Event, 0, 1)
	if n := testing.AllocsPerRun(100, func() { p.Parse(line, Position{Line: 1}, dst[:0]) }); n != 0 {
		t.Errorf("a repeated merge costs %v allocations", n)
	}
}

// TestParseAuth0LongUnion checks the merge of long requested and
// prompted lists, and of many prompts (a line under the default
// max_line_bytes took 20–49 s when each scope was looked for in the whole
// list and the list was copied for each prompt; it takes milliseconds).
func TestParseAuth0LongUnion(t *testing.T) {
	const head = `{"type":"feacft","date":"2024-03-14T09:15:27.801Z","client_id":"c1","details":{`
	const n = 1 << 15
	var qs, granted, wantLists, prompts, wantPrompts strings.Builder
	for i := range n {
		fmt.Fprintf(&qs, "a%d ", i)
		fmt.Fprintf(&granted, "a%d b%d ", i, i)
		fmt.Fprintf(&wantLists, "a%d ", i)
	}
	for i := range n {
		fmt.Fprintf(&wantLists, "b%d ", i)
	}
	for i := range n / 2 {
		if i > 0 {
			prompts.WriteByte(',')
		}
		fmt.Fprintf(&prompts, `{"grantInfo":{"scope":"b%d a%d"}}`, i, i)
		fmt.Fprintf(&wantPrompts, "b%d a%d ", i, i)
	}
	tests := []struct{ name, line, want string }{
		{"long lists", head + `"qs":{"scope":"` + qs.String() + `"},"prompts":[{"grantInfo":{"scope":"` + granted.String() + `"}}]}}`, wantLists.String()},
		{"many prompts", head + `"prompts":[` + prompts.String() + `]}}`, wantPrompts.String()},
	}
	p := newTestIdP(t, "auth0")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs, err := p.Parse([]byte(tt.line), Position{Line: 1}, nil)
			if err != nil || len(evs) != 1 {
				t.Fatalf("Parse = %d events, %v", len(evs), err)
			}
			if got := strings.Join(evs[0].Requested, " ") + " "; got != tt.want {
				t.Errorf("requested %d scopes, not the %d of both lists in order", len(evs[0].Requested), strings.Count(tt.want, " "))
			}
		})
	}
}

// TestParseAuth0UnionKeys checks that the cache of merged lists tells
// apart unions whose scopes, run together, read alike.
func TestParseAuth0UnionKeys(t *testing.T) {
	const head = `{"type":"feacft","date":"2024-03-14T09:15:27.801Z","client_id":"c1","details":{`
	tests := []struct{ qs, prompt, want string }{
		{`p \u0000x`, `y`, "p|\x00x|y"},
		{`p`, `x \u0000y`, "p|x|\x00y"},
	}
	p := newTestIdP(t, "auth0")
	for _, tt := range tests {
		line := head + `"qs":{"scope":"` + tt.qs + `"},"prompts":[{"grantInfo":{"scope":"` + tt.prompt + `"}}]}}`
		evs, err := p.Parse([]byte(line), Position{Line: 1}, nil)
		if err != nil || len(evs) != 1 {
			t.Fatalf("Parse(%s) = %d events, %v", line, len(evs), err)
		}
		if got := strings.Join(evs[0].Requested, "|"); got != tt.want {
			t.Errorf("Parse(%s): requested %q, want %q", line, got, tt.want)
		}
	}
}

// TestParseAuth0Dropped checks that an unreadable ip or country code
// leaves the field empty, marks it dropped and keeps the event.
func TestParseAuth0Dropped(t *testing.T) {
	const head = `"type":"seccft","date":"2024-03-14T09:15:27.801Z","client_id":"c1"`
	tests := []struct {
		name, rest       string
		wantIP, wantCtry string
		want             Fields
	}{
		{"readable", `"ip":"203.0.113.50","location_info":{"country_code":"DE"}`, "203.0.113.50", "DE", 0},
		{"ipv6", `"ip":"2001:db8::17"`, "2001:db8::17", "", 0},
		{"absent", `"ip":null,"location_info":{}`, "", "", 0},
		{"empty", `"ip":"","location_info":{"country_code":""}`, "", "", 0},
		{"bad ip", `"ip":"203.0.113"`, "", "", FieldIP},
		{"placeholder ip", `"ip":"-"`, "", "", FieldIP},
		{"unspecified ip", `"ip":"::"`, "", "", FieldIP},
		{"ip a number", `"ip":3405803826`, "", "", FieldIP},
		{"country a name", `"location_info":{"country_code":"Germany"}`, "", "", FieldCountry},
		{"country three letters", `"location_info":{"country_code":"DEU"}`, "", "", FieldCountry},
		{"country unassigned", `"location_info":{"country_code":"QZ"}`, "", "", FieldCountry},
		{"country lower-case", `"location_info":{"country_code":"br"}`, "", "BR", 0},
		{"country a number", `"location_info":{"country_code":49}`, "", "", FieldCountry},
		{"both", `"ip":"garbage","location_info":{"country_code":"??"}`, "", "", FieldIP | FieldCountry},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, line := range []string{`{` + head + `,` + tt.rest + `}`, `{"log_id":"9","data":{` + head + `,` + tt.rest + `}}`} {
				evs, err := newTestIdP(t, "auth0").Parse([]byte(line), Position{Line: 1}, nil)
				if err != nil || len(evs) != 1 {
					t.Fatalf("Parse(%s) = %d events, %v", line, len(evs), err)
				}
				e := evs[0]
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

// TestAuth0Kinds: every token exchange Auth0 logs is a grant, its failure
// a denial; other codes are no event.
func TestAuth0Kinds(t *testing.T) {
	for code, want := range map[string]Kind{
		"seacft": KindGrant, "sertft": KindGrant, "seccft": KindGrant, "sepft": KindGrant, "s": KindGrant,
		"sede": KindGrant, "sens": KindGrant, "seoobft": KindGrant, "seotpft": KindGrant, "sepotpft": KindGrant,
		"sercft": KindGrant, "ciba_exchange_succeeded": KindGrant,
		"feacft": KindDeny, "fertft": KindDeny, "feccft": KindDeny, "fepft": KindDeny, "f": KindDeny,
		"fp": KindDeny, "fu": KindDeny, "fcoa": KindDeny, "fede": KindDeny, "fens": KindDeny,
		"feoobft": KindDeny, "feotpft": KindDeny, "fepotpft": KindDeny, "fercft": KindDeny,
		"ciba_exchange_failed": KindDeny,
		"slo":                  KindUnknown, "ss": KindUnknown, "fdeaz": KindUnknown, "cs": KindUnknown,
	} {
		if got := auth0Kind([]byte(code)); got != want {
			t.Errorf("auth0Kind(%q) = %v, want %v", code, got, want)
		}
	}
	// A device-code exchange, as a log stream delivers it.
	p := newTestIdP(t, "auth0")
	line := `{"log_id":"900","data":{"date":"2024-03-14T09:15:27.801Z","type":"sede","client_id":"dev1",` +
		`"scope":"openid offline_access","ip":"203.0.113.8","user_id":"auth0|u1"}}`
	evs, err := p.Parse([]byte(line), Position{Source: "auth0", Line: 1}, nil)
	if err != nil || len(evs) != 1 || evs[0].Kind != KindGrant || evs[0].Client != "dev1" || len(evs[0].Granted) != 2 {
		t.Errorf("sede: %+v, %v; want a grant of two scopes to dev1", evs, err)
	}
}

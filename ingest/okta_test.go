package ingest

import (
	"os"
	"strings"
	"testing"

	"github.com/scopewatch/scopewatch/rules"
)

// newTestIdP returns the parser of an identity-provider format.
func newTestIdP(t testing.TB, format string) Parser {
	t.Helper()
	p, err := NewParser(rules.Source{Name: format, Format: format})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// idpBadLine is a line that must be rejected with a reason and field.
type idpBadLine struct {
	name       string
	line       string
	wantReason string
	wantField  string
}

// checkMalformed parses each case with a fresh parser of format and checks
// the *ParseError it must produce.
func checkMalformed(t *testing.T, format string, tests []idpBadLine) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newTestIdP(t, format)
			checkParseError(t, p, tt.line, Position{Source: format + "-prod", Line: 42, Offset: 4096}, []Event{{Type: "earlier"}}, tt.wantReason, tt.wantField)
		})
	}
}

// fuzzIdP seeds f with every line of the fixtures of format and checks
// the invariants every identity-provider parser keeps.
func fuzzIdP(f *testing.F, format string) {
	for _, path := range fixturesF(f, format) {
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		for _, line := range strings.Split(string(data), "\n") {
			f.Add([]byte(line))
		}
	}
	p := newTestIdP(f, format)
	f.Fuzz(func(t *testing.T, line []byte) {
		pos := Position{Source: "fuzz", Line: 7}
		evs, err := p.Parse(line, pos, nil)
		if !checkOutcome(t, line, evs, err) {
			return
		}
		for _, e := range evs {
			if e.Kind != KindGrant && e.Kind != KindDeny {
				t.Fatalf("Parse(%q): kind %v", line, e.Kind)
			}
			if e.Kind == KindGrant && e.Client == "" {
				t.Fatalf("Parse(%q): grant without client", line)
			}
			if e.Time.IsZero() || e.Type == "" || e.Source != "fuzz" || e.Pos != pos {
				t.Fatalf("Parse(%q): event without time, type or position: %+v", line, e)
			}
			if e.Country != "" && len(e.Country) != 2 {
				t.Fatalf("Parse(%q): country %q", line, e.Country)
			}
			for _, s := range append(e.Granted, e.Requested...) {
				if s == "" {
					t.Fatalf("Parse(%q): empty scope", line)
				}
			}
		}
	})
}

func TestParseOktaGolden(t *testing.T) {
	for _, path := range fixtures(t, "okta") {
		t.Run(caseName(path), func(t *testing.T) {
			got := parseFile(t, newTestIdP(t, "okta"), "okta", path)
			checkGolden(t, got, strings.TrimSuffix(path, ".log")+".golden.json")
		})
	}
}

func TestParseOktaMalformed(t *testing.T) {
	const grant = `"eventType":"app.oauth2.as.token.grant.access_token","outcome":{"result":"SUCCESS"}`
	const actor = `"actor":{"id":"0oa8f3kq2mWvXbRtA5d7","type":"PublicClientApp"}`
	const at = `"published":"2024-03-14T09:15:27.801Z"`
	checkMalformed(t, "okta", []idpBadLine{
		{"bad json", `{` + grant + `,` + at, ReasonBadJSON, ""},
		{"bad json in array", `[{` + grant + `,` + at + `,` + actor + `},{"eventType":]`, ReasonBadJSON, ""},
		{"trailing data", `{` + grant + `,` + at + `,` + actor + `} {}`, ReasonBadJSON, ""},
		{"not an object", `42`, ReasonBadFormat, ""},
		{"impossible date", `{"eventType":"user.session.start","published":"2017-09-31T22:23:07.777Z"}`, ReasonBadTime, "published"},
		{"bad time", `{` + grant + `,"published":"14/Mar/2024:09:15:27 +0000",` + actor + `}`, ReasonBadTime, "published"},
		{"time is a number", `{` + grant + `,"published":1710407727801,` + actor + `}`, ReasonBadTime, "published"},
		{"no time", `{` + grant + `,` + actor + `}`, ReasonNoTime, "published"},
		{"no event type", `{` + at + `,` + actor + `}`, ReasonNoType, "eventType"},
		{"event type not a string", `{"eventType":["app.oauth2.as.token.grant"],` + at + `}`, ReasonBadField, "eventType"},
		{"outcome not a string", `{"eventType":"app.oauth2.token.grant","outcome":{"result":1},` + at + `}`, ReasonBadField, "outcome.result"},
		{"no client", `{` + grant + `,` + at + `,"actor":{"id":"00u1","type":"User"}}`, ReasonNoClient, "client.id"},
		{"client id not a string", `{` + grant + `,` + at + `,"actor":{"id":7,"type":"PublicClientApp"}}`, ReasonBadField, "actor.id"},
		{"scopes not a string", `{` + grant + `,` + at + `,` + actor + `,"debugContext":{"debugData":{"requestedScopes":["openid"]}}}`, ReasonBadField, "debugContext.debugData.requestedScopes"},
		{"granted not a string", `{` + grant + `,` + at + `,` + actor + `,"debugContext":{"debugData":{"grantedScopes":{}}}}`, ReasonBadField, "debugContext.debugData.grantedScopes"},
		{"bad ip", `{` + grant + `,` + at + `,` + actor + `,"client":{"ipAddress":"198.51.100.300"}}`, ReasonBadField, "client.ipAddress"},
		{"bad ip chain", `{` + grant + `,` + at + `,` + actor + `,"request":{"ipChain":[{"ip":"nowhere"}]}}`, ReasonBadField, "request.ipChain"},
		{"ip chain not an array", `{` + grant + `,` + at + `,` + actor + `,"request":{"ipChain":"198.51.100.1"}}`, ReasonBadField, "request.ipChain"},
		{"target not an array", `{` + grant + `,` + at + `,` + actor + `,"target":{"id":"00u1","type":"User"}}`, ReasonBadField, "target"},
		{"user id not a string", `{` + grant + `,` + at + `,` + actor + `,"target":[{"id":1,"type":"User"}]}`, ReasonBadField, "target"},
		{"country not a string", `{` + grant + `,` + at + `,` + actor + `,"client":{"geographicalContext":{"country":1}}}`, ReasonBadField, "client.geographicalContext.country"},
		{"reason not a string", `{"eventType":"app.oauth2.as.token.grant","outcome":{"result":"FAILURE","reason":{}},` + at + `}`, ReasonBadField, "outcome.reason"},
		{"bad element after good one", `[{` + grant + `,` + at + `,` + actor + `},{` + grant + `,"published":"2024-03-32T00:00:00Z",` + actor + `}]`, ReasonBadTime, "published"},
	})
}

// TestParseOktaScopes checks that only commas separate Okta scopes.
func TestParseOktaScopes(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"openid, profile, email", []string{"openid", "profile", "email"}},
		{"openid,profile", []string{"openid", "profile"}},
		{"  openid ,  , offline_access  ", []string{"openid", "offline_access"}},
		{"patient/Observation.rs?category=a|b c", []string{"patient/Observation.rs?category=a|b c"}},
		{"", nil},
		{" , ", nil},
	}
	p := newTestIdP(t, "okta").(*unwrapping).inner.(*oktaParser)
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got := p.scopeList([]byte(tt.in))
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") || len(got) != len(tt.want) {
				t.Errorf("scopeList(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestCountryCode(t *testing.T) {
	tests := []struct{ in, want string }{
		{"United States", "US"},
		{"Germany", "DE"},
		{"United Kingdom", "GB"},
		{"DE", "DE"},
		{"ca", "ca"},
		{"Bhutan", ""},
		{"", ""},
		{"U1", ""},
	}
	var strs interner
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := countryCode([]byte(tt.in), &strs); got != tt.want {
				t.Errorf("countryCode(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// TestParseOktaNoRetain checks that events keep no reference to the line
// or to the parser's buffers.
func TestParseOktaNoRetain(t *testing.T) {
	p := newTestIdP(t, "okta")
	line := []byte(`{"eventType":"app.oauth2.as.token.grant.access_token","published":"2024-03-14T09:15:27.801Z","outcome":{"result":"SUCCESS"},"actor":{"id":"0oa\u0038x","type":"PublicClientApp"},"target":[{"id":"00u\"1","type":"User"}],"debugContext":{"debugData":{"grantedScopes":"openid, pat\u0069ent/*.rs"}}}`)
	evs, err := p.Parse(line, Position{Line: 1}, nil)
	if err != nil || len(evs) != 1 {
		t.Fatalf("Parse = %d events, %v", len(evs), err)
	}
	for i := range line {
		line[i] = 'x'
	}
	other := `{"eventType":"app.oauth2.as.token.grant.access_token","published":"2024-03-14T09:15:27.801Z","outcome":{"result":"SUCCESS"},"actor":{"id":"zzz\u0038z","type":"PublicClientApp"},"target":[{"id":"zz\"z","type":"User"}],"debugContext":{"debugData":{"grantedScopes":"zzzzzz, zzz\u0069zzzzzz"}}}`
	if _, err := p.Parse([]byte(other), Position{Line: 2}, nil); err != nil {
		t.Fatal(err)
	}
	e := evs[0]
	got := e.Client + "|" + e.Subject + "|" + strings.Join(e.Granted, ",")
	if want := `0oa8x|00u"1|openid,patient/*.rs`; got != want {
		t.Errorf("event after reuse = %q, want %q", got, want)
	}
}

func FuzzParseOkta(f *testing.F) { fuzzIdP(f, "okta") }

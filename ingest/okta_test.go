package ingest

import (
	"errors"
	"fmt"
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
		{"service app id not a string", `{` + grant + `,` + at + `,"actor":{"id":["0oa1"],"type":"PublicClientAppEntity"}}`, ReasonBadField, "actor.id"},
		{"service app without an id", `{` + grant + `,` + at + `,"actor":{"id":"","type":"PublicClientAppEntity"},"client":{"id":null}}`, ReasonNoClient, "client.id"},
		{"client.id not a string", `{` + grant + `,` + at + `,"actor":{"id":"00u1","type":"User"},"client":{"id":{}}}`, ReasonBadField, "client.id"},
		{"scopes not a string", `{` + grant + `,` + at + `,` + actor + `,"debugContext":{"debugData":{"requestedScopes":["openid"]}}}`, ReasonBadField, "debugContext.debugData.requestedScopes"},
		{"granted not a string", `{` + grant + `,` + at + `,` + actor + `,"debugContext":{"debugData":{"grantedScopes":{}}}}`, ReasonBadField, "debugContext.debugData.grantedScopes"},
		{"target not an array", `{` + grant + `,` + at + `,` + actor + `,"target":{"id":"00u1","type":"User"}}`, ReasonBadField, "target"},
		{"user id not a string", `{` + grant + `,` + at + `,` + actor + `,"target":[{"id":1,"type":"User"}]}`, ReasonBadField, "target"},
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

// TestParseOktaClient checks where the client of an event comes from:
// actor.id for every app actor, client.id for other actors or an app
// actor without an id.
func TestParseOktaClient(t *testing.T) {
	const head = `"eventType":"app.oauth2.token.grant.access_token","published":"2024-03-14T09:15:27.801Z","outcome":{"result":"SUCCESS"}`
	tests := []struct {
		name, actor, client, want string
	}{
		{"public client app", `{"id":"0oaPub","type":"PublicClientApp"}`, `{"id":"0oaOther"}`, "0oaPub"},
		{"service app", `{"id":"0oaSvc","type":"PublicClientAppEntity"}`, `{"id":null}`, "0oaSvc"},
		{"service app without client object", `{"id":"0oaSvc","type":"PublicClientAppEntity"}`, `null`, "0oaSvc"},
		{"app instance", `{"id":"0oaApp","type":"AppInstance"}`, `{"id":null}`, "0oaApp"},
		{"app actor without id", `{"id":null,"type":"PublicClientApp"}`, `{"id":"0oaFromClient"}`, "0oaFromClient"},
		{"user actor", `{"id":"00uUser","type":"User"}`, `{"id":"0oaFromClient"}`, "0oaFromClient"},
		{"no actor", `null`, `{"id":"0oaFromClient"}`, "0oaFromClient"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			line := `{` + head + `,"actor":` + tt.actor + `,"client":` + tt.client + `}`
			evs, err := newTestIdP(t, "okta").Parse([]byte(line), Position{Line: 1}, nil)
			if err != nil || len(evs) != 1 {
				t.Fatalf("Parse(%s) = %d events, %v", line, len(evs), err)
			}
			if evs[0].Client != tt.want {
				t.Errorf("client = %q, want %q", evs[0].Client, tt.want)
			}
		})
	}
}

// TestParseOktaDropped checks that an unreadable client address or
// country leaves the field empty, marks it dropped and keeps the event.
func TestParseOktaDropped(t *testing.T) {
	const head = `"eventType":"app.oauth2.as.token.grant.access_token","published":"2024-03-14T09:15:27.801Z","outcome":{"result":"SUCCESS"},"actor":{"id":"0oa8f3kq2mWvXbRtA5d7","type":"PublicClientApp"}`
	tests := []struct {
		name, rest       string
		wantIP, wantCtry string
		want             Fields
	}{
		{"readable", `"client":{"ipAddress":"198.51.100.23","geographicalContext":{"country":"Syria"}}`, "198.51.100.23", "SY", 0},
		{"absent", `"client":{"ipAddress":null,"geographicalContext":null}`, "", "", 0},
		{"empty", `"client":{"ipAddress":"","geographicalContext":{"country":""}},"request":{"ipChain":[]}`, "", "", 0},
		{"bad ip", `"client":{"ipAddress":"198.51.100.300"}`, "", "", FieldIP},
		{"ip a number", `"client":{"ipAddress":3325256704}`, "", "", FieldIP},
		{"ip unspecified", `"client":{"ipAddress":"0.0.0.0"}`, "", "", FieldIP},
		{"bad ip, good chain", `"client":{"ipAddress":"unknown"},"request":{"ipChain":[{"ip":"203.0.113.9"},{"ip":"10.0.0.1"}]}`, "203.0.113.9", "", 0},
		{"no ip, good chain", `"request":{"ipChain":[{"ip":null},{"ip":"2001:db8::7"}]}`, "2001:db8::7", "", 0},
		{"bad chain", `"request":{"ipChain":[{"ip":"nowhere"}]}`, "", "", FieldIP},
		{"chain not an array", `"request":{"ipChain":"198.51.100.1"}`, "", "", FieldIP},
		{"chain of strings", `"request":{"ipChain":["198.51.100.1"]}`, "", "", FieldIP},
		{"chain ip not a string", `"request":{"ipChain":[{"ip":7}]}`, "", "", FieldIP},
		{"bad chain entry, then a good one", `"request":{"ipChain":[{"ip":"x"},{"ip":"203.0.113.10"}]}`, "203.0.113.10", "", 0},
		{"unknown country", `"client":{"ipAddress":"203.0.113.9","geographicalContext":{"country":"Atlantis"}}`, "203.0.113.9", "", FieldCountry},
		{"country not a string", `"client":{"geographicalContext":{"country":1}}`, "", "", FieldCountry},
		{"country code", `"client":{"geographicalContext":{"country":"ca"}}`, "", "CA", 0},
		{"unassigned code", `"client":{"geographicalContext":{"country":"QQ"}}`, "", "", FieldCountry},
		{"both", `"client":{"ipAddress":"-","geographicalContext":{"country":"Ruritania"}}`, "", "", FieldIP | FieldCountry},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			line := `{` + head + `,` + tt.rest + `}`
			evs, err := newTestIdP(t, "okta").Parse([]byte(line), Position{Line: 1}, nil)
			if err != nil || len(evs) != 1 {
				t.Fatalf("Parse(%s) = %d events, %v", line, len(evs), err)
			}
			e := evs[0]
			ip := ""
			if e.IP.IsValid() {
				ip = e.IP.String()
			}
			if ip != tt.wantIP || e.Country != tt.wantCtry || e.Dropped != tt.want {
				t.Errorf("ip %q country %q dropped %b, want %q %q %b", ip, e.Country, e.Dropped, tt.wantIP, tt.wantCtry, tt.want)
			}
		})
	}
}

// TestParseOktaArrayPerRecord checks that a malformed record of a page
// loses only itself: the grants of the other clients are returned, and
// the error names the record.
func TestParseOktaArrayPerRecord(t *testing.T) {
	const rec = `{"eventType":"app.oauth2.as.token.grant.access_token","published":"%s","outcome":{"result":"SUCCESS"},"actor":{"id":"%s","type":"PublicClientAppEntity"}}`
	page := "[" + fmt.Sprintf(rec, "2024-03-14T09:00:00Z", "0oaA") + "," +
		fmt.Sprintf(rec, "2024-03-14T25:00:00Z", "0oaB") + "," +
		fmt.Sprintf(rec, "2024-03-14T09:00:02Z", "0oaC") + "," +
		`{"eventType":"user.session.start","published":"2024-03-14T09:00:03Z"}` + "," +
		fmt.Sprintf(rec, "2024-03-14T09:00:04Z", "") + "," +
		fmt.Sprintf(rec, "2024-03-14T09:00:05Z", "0oaD") + "]"
	evs, err := newTestIdP(t, "okta").Parse([]byte(page), Position{Source: "okta", Line: 3}, []Event{{Type: "earlier"}})
	var pe *ParseError
	if !errors.As(err, &pe) {
		t.Fatalf("Parse = %v, want a *ParseError", err)
	}
	if pe.Record != 2 || pe.Records != 2 || pe.Reason != ReasonBadTime || pe.Line != 3 {
		t.Errorf("error %+v, want record 2 of 2 bad_time on line 3", pe)
	}
	var got []string
	for _, e := range evs {
		got = append(got, e.Client)
	}
	if want := []string{"", "0oaA", "0oaC", "0oaD"}; strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("events of clients %q, want %q (the earlier event first)", got, want)
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

// TestParseOktaEventTypes: which event types of the org and custom
// authorization servers are grants or refusals. The implicit flow's
// tokens come from /authorize; scopes a policy denied there are a
// refusal whatever the outcome; the /authorize request itself is no
// event (a refusal it holds is scope_denied's or the token grant's).
func TestParseOktaEventTypes(t *testing.T) {
	p := newTestIdP(t, "okta")
	for _, c := range []struct {
		typ, result string
		want        Kind  // KindUnknown: no event
		skip        error // when no event
	}{
		{"app.oauth2.as.authorize.implicit.access_token", "SUCCESS", KindGrant, nil},
		{"app.oauth2.authorize.implicit.access_token", "SUCCESS", KindGrant, nil},
		{"app.oauth2.as.authorize.implicit.id_token", "SUCCESS", KindGrant, nil},
		{"app.oauth2.authorize.implicit.id_token", "FAILURE", KindDeny, nil},
		{"app.oauth2.as.authorize.code", "SUCCESS", KindGrant, nil},
		{"app.oauth2.as.token.grant.access_token", "SUCCESS", KindGrant, nil},
		{"app.oauth2.as.authorize", "FAILURE", KindUnknown, SkipOtherEvent},
		{"app.oauth2.as.authorize", "SUCCESS", KindUnknown, SkipOtherEvent},
		{"app.oauth2.as.authorize.scope_denied", "FAILURE", KindDeny, nil},
		{"app.oauth2.as.authorize.scope_denied", "SUCCESS", KindDeny, nil},
		{"app.oauth2.as.authorize.scope_denied", "UNKNOWN", KindUnknown, SkipUndecided},
		{"app.oauth2.as.consent.grant", "SUCCESS", KindUnknown, SkipOtherEvent},
		{"user.session.start", "SUCCESS", KindUnknown, SkipOtherEvent},
	} {
		line := `{"published":"2024-03-14T09:15:27.801Z","eventType":"` + c.typ + `",` +
			`"actor":{"id":"0oa1","type":"PublicClientApp"},"client":{"ipAddress":"203.0.113.7"},` +
			`"outcome":{"result":"` + c.result + `","reason":"invalid_scope"},` +
			`"debugContext":{"debugData":{"requestedScopes":"openid, patient/*.read","grantedScopes":"openid"}}}`
		evs, err := p.Parse([]byte(line), Position{Source: "okta", Line: 1}, nil)
		switch {
		case c.want == KindUnknown && (err != c.skip || len(evs) != 0):
			t.Errorf("%s %s: %d events, %v; want %v", c.typ, c.result, len(evs), err, c.skip)
		case c.want != KindUnknown && (err != nil || len(evs) != 1 || evs[0].Kind != c.want):
			t.Errorf("%s %s: %+v, %v; want one event of kind %v", c.typ, c.result, evs, err, c.want)
		case c.want == KindDeny && (evs[0].Reason != "invalid_scope" || len(evs[0].Requested) != 2 || len(evs[0].Granted) != 0):
			t.Errorf("%s %s: refusal %+v, want the requested scopes and the reason", c.typ, c.result, evs[0])
		case c.want == KindGrant && (len(evs[0].Granted) != 1 || evs[0].Client != "0oa1"):
			t.Errorf("%s %s: grant %+v, want the granted scope and the client", c.typ, c.result, evs[0])
		}
	}
}

// TestParseOktaEventHook: an event hook's delivery, as a receiver that
// logs the request body writes it, holds its LogEvents in data.events;
// each counts on its own.
func TestParseOktaEventHook(t *testing.T) {
	p := newTestIdP(t, "okta")
	grant := `{"published":"2024-03-14T09:15:27.801Z","eventType":"app.oauth2.as.token.grant.access_token","actor":{"id":"0oa1","type":"PublicClientApp"},"client":{"ipAddress":"203.0.113.7"},"outcome":{"result":"SUCCESS"},"debugContext":{"debugData":{"grantedScopes":"openid, patient/Observation.rs"}}}`
	other := `{"published":"2024-03-14T09:15:28.801Z","eventType":"user.session.start","outcome":{"result":"SUCCESS"}}`
	line := `{"eventType":"com.okta.event_hook","eventTypeVersion":"1.0","cloudEventsVersion":"0.1","source":"https://example.okta.com/api/v1/eventHooks/who8","eventId":"b5a1","data":{"events":[` +
		grant + `,` + other + `,` + grant + `]},"eventTime":"2024-03-14T09:15:29.000Z","contentType":"application/json"}`
	evs, err := p.Parse([]byte(line), Position{Source: "okta", Line: 1}, nil)
	if err != nil || len(evs) != 2 || evs[0].Client != "0oa1" || len(evs[1].Granted) != 2 {
		t.Errorf("%+v, %v; want the two grants", evs, err)
	}
	empty := `{"eventType":"com.okta.event_hook","data":{"events":[]},"eventTime":"2024-03-14T09:15:29.000Z"}`
	if evs, err := p.Parse([]byte(empty), Position{Source: "okta", Line: 1}, nil); err != SkipOtherEvent || len(evs) != 0 {
		t.Errorf("empty delivery: %+v, %v; want other_event", evs, err)
	}
}

// TestParseOktaChainCountry: without client.geographicalContext (a
// client-credentials grant), the country is that of the address's entry
// in request.ipChain; a client country, even an unknown one, stands.
func TestParseOktaChainCountry(t *testing.T) {
	p := newTestIdP(t, "okta")
	const head = `{"published":"2024-03-14T09:15:27.801Z","eventType":"app.oauth2.as.token.grant.access_token","actor":{"id":"0oa1","type":"PublicClientApp"},"outcome":{"result":"SUCCESS"},`
	for _, c := range []struct{ name, body, want string }{
		{"no client context", `"client":{"ipAddress":null,"geographicalContext":null},"request":{"ipChain":[{"ip":"198.51.100.77","geographicalContext":{"country":"Germany"}}]}}`, "DE"},
		{"client address, no context", `"client":{"ipAddress":"198.51.100.77","geographicalContext":null},"request":{"ipChain":[{"ip":"198.51.100.77","geographicalContext":{"country":"Germany"}}]}}`, "DE"},
		{"another chain entry", `"client":{"ipAddress":"198.51.100.77","geographicalContext":null},"request":{"ipChain":[{"ip":"203.0.113.1","geographicalContext":{"country":"Germany"}}]}}`, ""},
		{"client country", `"client":{"ipAddress":"198.51.100.77","geographicalContext":{"country":"France"}},"request":{"ipChain":[{"ip":"198.51.100.77","geographicalContext":{"country":"Germany"}}]}}`, "FR"},
	} {
		evs, err := p.Parse([]byte(head+c.body), Position{Source: "okta", Line: 1}, nil)
		if err != nil || len(evs) != 1 || evs[0].Country != c.want || evs[0].IP.String() != "198.51.100.77" {
			t.Errorf("%s: %+v, %v; want 198.51.100.77 in %s", c.name, evs, err, c.want)
		}
	}
}

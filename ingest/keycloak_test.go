package ingest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/scopewatch/scopewatch/rules"
)

// newTestKeycloak returns a Keycloak parser whose clock, used only for
// the year of RFC 3164 syslog timestamps, is fixed.
func newTestKeycloak(t testing.TB, zone string) *unwrapping {
	t.Helper()
	p, err := NewParser(rules.Source{Name: "keycloak", Format: "keycloak", TimeZone: zone})
	if err != nil {
		t.Fatal(err)
	}
	u := p.(*unwrapping)
	u.now = func() time.Time { return time.Date(2021, 11, 1, 0, 0, 0, 0, time.UTC) }
	return u
}

func TestParseKeycloakGolden(t *testing.T) {
	for _, path := range fixtures(t, "keycloak") {
		t.Run(caseName(path), func(t *testing.T) {
			got := parseFile(t, newTestKeycloak(t, ""), "keycloak", path)
			checkGolden(t, got, strings.TrimSuffix(path, ".log")+".golden.json")
		})
	}
}

func TestParseKeycloakTimeZone(t *testing.T) {
	if _, err := time.LoadLocation("America/New_York"); err != nil {
		t.Skip("no tzdata:", err)
	}
	p := newTestKeycloak(t, "America/New_York")
	line := `2021-10-22 21:01:45,403 DEBUG [org.keycloak.events] (executor-thread-1) type=CLIENT_LOGIN, realmId=clinic, clientId=billing-svc, userId=u1, ipAddress=192.0.2.77, scope=system/Claim.rs`
	evs, err := p.Parse([]byte(line), Position{Source: "keycloak", Line: 1}, nil)
	if err != nil || len(evs) != 1 {
		t.Fatalf("Parse = %d events, %v", len(evs), err)
	}
	got := evs[0].Time.UTC().Format(time.RFC3339Nano)
	if want := "2021-10-23T01:01:45.403Z"; got != want {
		t.Errorf("time = %s, want %s", got, want)
	}
}

func TestParseKeycloakMalformed(t *testing.T) {
	const prefix = "2021-10-22 21:01:45,403 DEBUG [org.keycloak.events] (executor-thread-1) "
	tests := []struct {
		name       string
		line       string
		wantReason string
		wantField  string
	}{
		{"unterminated double quote", prefix + `type="CODE_TO_TOKEN", clientId="lab-app", scope="openid profile`, ReasonBadSyntax, "scope"},
		{"unterminated single quote", prefix + `type=CODE_TO_TOKEN, clientId=lab-app, scope='openid profile`, ReasonBadSyntax, "scope"},
		{"missing separator", prefix + `type="CODE_TO_TOKEN" clientId="lab-app"`, ReasonBadSyntax, "type"},
		{"junk after quote", prefix + `type="CODE_TO_TOKEN", clientId="lab-app"x, scope="a"`, ReasonBadSyntax, "clientId"},
		{"empty key", prefix + `type="CODE_TO_TOKEN", ="lab-app"`, ReasonBadSyntax, "type"},
		{"bad time", "2021-13-22 21:01:45,403 DEBUG [org.keycloak.events] (executor-thread-1) type=CLIENT_LOGIN, clientId=x", ReasonBadTime, "time"},
		{"bad syslog time", "Feb 30 21:01:45 idp keycloak[1]: type=CLIENT_LOGIN, clientId=x, ipAddress=192.0.2.1", ReasonBadTime, "time"},
		{"no time", "type=CLIENT_LOGIN, realmId=clinic, clientId=billing-svc", ReasonNoTime, "time"},
		{"empty type", prefix + "type=, clientId=billing-svc", ReasonNoType, "type"},
		{"no client", prefix + "type=CLIENT_LOGIN, realmId=clinic, clientId=null, scope=x", ReasonNoClient, "clientId"},
		{"bad ip", prefix + "type=CLIENT_LOGIN, clientId=billing-svc, ipAddress=10.0.0.300", ReasonBadField, "ipAddress"},
		{"invalid json", `{"time":1700000000000,"type":"CODE_TO_TOKEN","clientId":"lab-app"`, ReasonBadJSON, ""},
		{"invalid json array", `[{"time":1700000000000,"type":"CODE_TO_TOKEN","clientId":"lab-app","realmId":"r"},`, ReasonBadJSON, ""},
		{"json event no time", `{"type":"CODE_TO_TOKEN","realmId":"r","clientId":"lab-app"}`, ReasonNoTime, "time"},
		{"json event bad time", `{"time":"yesterday","type":"CODE_TO_TOKEN","realmId":"r","clientId":"lab-app"}`, ReasonBadTime, "time"},
		{"json event time object", `{"time":{},"type":"CODE_TO_TOKEN","realmId":"r","clientId":"lab-app"}`, ReasonBadTime, "time"},
		{"json event no client", `{"time":1700000000000,"type":"REFRESH_TOKEN","realmId":"r","clientId":null}`, ReasonNoClient, "clientId"},
		{"array element no client", `[{"time":1,"type":"LOGIN","realmId":"r","clientId":"a"},{"time":1,"type":"CLIENT_LOGIN","realmId":"r"}]`, ReasonNoClient, "clientId"},
		{"quarkus bad timestamp", `{"timestamp":"2024-03-14 late","loggerName":"org.keycloak.events","message":"type=CLIENT_LOGIN, clientId=x"}`, ReasonBadTime, "timestamp"},
		{"quarkus no timestamp", `{"loggerName":"org.keycloak.events","message":"type=CLIENT_LOGIN, clientId=x"}`, ReasonNoTime, "timestamp"},
		{"quarkus broken message", `{"timestamp":"2024-03-14T09:15:27.801+01:00","loggerName":"org.keycloak.events","message":"type=\"CLIENT_LOGIN, clientId=x"}`, ReasonBadSyntax, "type"},
		{"docker bad inner json", `{"log":"{\"timestamp\":\n","stream":"stdout","time":"2024-03-14T08:15:27.801934512Z"}`, ReasonBadJSON, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newTestKeycloak(t, "")
			checkParseError(t, p, tt.line, Position{Source: "kc-prod", Line: 42, Offset: 4096}, nil, tt.wantReason, tt.wantField)
		})
	}
}

// TestParseKeycloakAppends checks that Parse appends to dst and leaves
// what was there alone, also when a later element of an array fails: the
// good element's event is kept and the bad one is named.
func TestParseKeycloakAppends(t *testing.T) {
	p := newTestKeycloak(t, "")
	dst := []Event{{Type: "earlier"}}
	good := `[{"time":1,"type":"CLIENT_LOGIN","realmId":"r","clientId":"a","details":{"scope":"s1 s2"}}]`
	dst, err := p.Parse([]byte(good), Position{Line: 1}, dst)
	if err != nil || len(dst) != 2 || dst[0].Type != "earlier" {
		t.Fatalf("Parse = %+v, %v", dst, err)
	}
	bad := `[{"time":1,"type":"CLIENT_LOGIN","realmId":"r","clientId":"a"},{"time":1,"type":"CLIENT_LOGIN","realmId":"r"}]`
	got, err := p.Parse([]byte(bad), Position{Line: 2}, dst)
	pe, ok := err.(*ParseError)
	if !ok || len(got) != 3 || got[0].Type != "earlier" || got[2].Client != "a" || pe.Record != 2 || pe.Records != 1 {
		t.Errorf("Parse(bad) = %d events, %v; want 3 (the good element's added) and record 2 malformed", len(got), err)
	}
}

// TestParseKeycloakNoRetain checks that events do not keep references to
// the line or the parser's buffers: the next line must not change them.
func TestParseKeycloakNoRetain(t *testing.T) {
	p := newTestKeycloak(t, "")
	line := []byte(`{"time":1700000000000,"type":"CODE_TO_TOKEN","realmId":"r","clientId":"lab\u002dapp","userId":"u\"1","details":{"scope":"openid pat\u0069ent/*.rs"}}`)
	evs, err := p.Parse(line, Position{Line: 1}, nil)
	if err != nil || len(evs) != 1 {
		t.Fatalf("Parse = %d events, %v", len(evs), err)
	}
	for i := range line {
		line[i] = 'x'
	}
	other := `{"time":1700000000001,"type":"CODE_TO_TOKEN","realmId":"r","clientId":"zzz\u002dzzz","userId":"v\"2","details":{"scope":"zzzzzz zzzzzzzzzzz"}}`
	if _, err := p.Parse([]byte(other), Position{Line: 2}, nil); err != nil {
		t.Fatal(err)
	}
	e := evs[0]
	got := e.Client + "|" + e.Subject + "|" + strings.Join(e.Granted, ",")
	if want := `lab-app|u"1|openid,patient/*.rs`; got != want {
		t.Errorf("event after reuse = %q, want %q", got, want)
	}
}

// TestParseKeycloakEscapedValues checks the escapes of quoted values, and
// reads a value of many of them (a line of the default max_line_bytes took
// 8.7 s when each escape searched again for the closing quote, and takes
// about 30 ms).
func TestParseKeycloakEscapedValues(t *testing.T) {
	const head = `2024-03-14 09:15:27,801 INFO  [org.keycloak.events] (executor-thread-7) type="CLIENT_LOGIN", realmId="r", `
	many := strings.Repeat(`\a`, 1<<19)
	tests := []struct{ name, kv, client string }{
		{"escaped quote", `clientId="a\"b"`, `a"b`},
		{"escaped quote last", `clientId="a\""`, `a"`},
		{"escaped backslash before the quote", `clientId="a\\"`, `a\`},
		{"escapes then more text", `clientId="\a\b c"`, `\a\b c`},
		{"many escapes", `clientId="` + many + `"`, many},
	}
	p := newTestKeycloak(t, "")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs, err := p.Parse([]byte(head+tt.kv), Position{Line: 1}, nil)
			if err != nil || len(evs) != 1 {
				t.Fatalf("Parse = %d events, %v", len(evs), err)
			}
			if evs[0].Client != tt.client {
				t.Errorf("client %.40q (%d bytes), want %.40q (%d bytes)", evs[0].Client, len(evs[0].Client), tt.client, len(tt.client))
			}
		})
	}
	if _, err := p.Parse([]byte(head+`clientId="a\"`), Position{Line: 1}, nil); err == nil {
		t.Errorf("Parse of a value whose only quote is escaped: no error")
	}
}

func FuzzParseKeycloak(f *testing.F) {
	for _, path := range fixturesF(f, "keycloak") {
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		for _, line := range strings.Split(string(data), "\n") {
			f.Add([]byte(line))
		}
	}
	p := newTestKeycloak(f, "")
	f.Fuzz(func(t *testing.T, line []byte) {
		pos := Position{Source: "fuzz", Line: 7}
		evs, err := p.Parse(line, pos, nil)
		if !checkOutcome(t, line, evs, err) {
			return
		}
		for _, e := range evs {
			if e.Kind != KindGrant && e.Kind != KindDeny && e.Kind != KindAdmin {
				t.Fatalf("Parse(%q): kind %v", line, e.Kind)
			}
			if e.Kind == KindGrant && e.Client == "" {
				t.Fatalf("Parse(%q): grant without client", line)
			}
			if e.Time.IsZero() || e.Type == "" {
				t.Fatalf("Parse(%q): event without time or type: %+v", line, e)
			}
			for _, s := range append(e.Granted, e.Requested...) {
				if s == "" || strings.Contains(s, " ") {
					t.Fatalf("Parse(%q): bad scope %q", line, s)
				}
			}
		}
	})
}

// fixturesF lists fixture files for fuzz seeding.
func fixturesF(f *testing.F, format string) []string {
	files, err := filepath.Glob(filepath.Join("..", "testdata", "formats", format, "*.log"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no fixtures for %s: %v", format, err)
	}
	return files
}

// TestParseKeycloakContinuation reads the lines of a stack trace under a
// jboss-logging record as continuations, indented or not, and other text
// as other loggers' lines: ignored for their reason, never malformed.
func TestParseKeycloakContinuation(t *testing.T) {
	p := newTestKeycloak(t, "UTC")
	for _, tc := range []struct {
		line string
		want error
	}{
		{"2021-10-04 09:31:12,402 ERROR [org.keycloak.services.error.KeycloakErrorHandler] (executor-thread-3) Uncaught server error: java.lang.NullPointerException", SkipOtherLogger},
		{"\tat org.keycloak.services.resources.admin.RealmAdminResource.getUsers(RealmAdminResource.java:412)", SkipContinuation},
		{"    at io.quarkus.vertx.core.runtime.VertxCoreRecorder$14.runWith(VertxCoreRecorder.java:576)", SkipContinuation},
		{"Caused by: java.lang.IllegalStateException: session closed", SkipContinuation},
		{"\t... 42 more", SkipContinuation},
		{"\tSuppressed: java.io.IOException: broken pipe", SkipContinuation},
		{"\tCaused by: java.lang.IllegalStateException: behind a tab", SkipContinuation},
		{"the second line of a multi-line message", SkipOtherLogger},
		{"    an indented line of free text", SkipOtherLogger},
	} {
		evs, err := p.Parse([]byte(tc.line), Position{Source: "keycloak", Line: 1}, nil)
		if err != tc.want || len(evs) != 0 {
			t.Errorf("%q: %d events, %v; want none, %v", tc.line, len(evs), err, tc.want)
		}
	}
}

// TestParseKeycloakInvalidScopes: Keycloak refuses a token request for
// scopes the client may not have with error invalid_request and the
// reason "Invalid scopes: …": the refusal is invalid_scope, of those
// scopes, in the text styles and in JSON.
func TestParseKeycloakInvalidScopes(t *testing.T) {
	p := newTestIdP(t, "keycloak")
	for name, line := range map[string]string{
		"quoted":   `2024-03-14 09:15:27,801 WARN  [org.keycloak.events] (executor-thread-1) type="CLIENT_LOGIN_ERROR", realmId="r1", clientId="bulk", userId="null", ipAddress="203.0.113.7", error="invalid_request", reason="Invalid scopes: openid system/*.cruds", grant_type="client_credentials"`,
		"unquoted": `2024-03-14 09:15:27,801 WARN  [org.keycloak.events] (default task-1) type=CLIENT_LOGIN_ERROR, realmId=r1, clientId=bulk, userId=null, ipAddress=203.0.113.7, error=invalid_request, reason=Invalid scopes: openid system/*.cruds, grant_type=client_credentials`,
		"json":     `{"time":1710407727801,"type":"CLIENT_LOGIN_ERROR","realmId":"r1","clientId":"bulk","ipAddress":"203.0.113.7","error":"invalid_request","details":{"reason":"Invalid scopes: openid system/*.cruds","grant_type":"client_credentials"}}`,
	} {
		evs, err := p.Parse([]byte(line), Position{Source: "kc", Line: 1}, nil)
		if err != nil || len(evs) != 1 {
			t.Errorf("%s: %+v, %v", name, evs, err)
			continue
		}
		e := evs[0]
		if e.Kind != KindDeny || e.Reason != "invalid_scope" || strings.Join(e.Requested, " ") != "openid system/*.cruds" || e.Client != "bulk" {
			t.Errorf("%s: %v %q %q %q, want a refusal invalid_scope of openid system/*.cruds by bulk", name, e.Kind, e.Reason, e.Requested, e.Client)
		}
	}
	// Another reason leaves the error as it is.
	line := `2024-03-14 09:15:27,801 WARN  [org.keycloak.events] (executor-thread-1) type="CLIENT_LOGIN_ERROR", clientId="bulk", error="invalid_client_credentials", reason="bad secret"`
	if evs, err := p.Parse([]byte(line), Position{Source: "kc", Line: 1}, nil); err != nil || len(evs) != 1 || evs[0].Reason != "invalid_client_credentials" {
		t.Errorf("other reason: %+v, %v", evs, err)
	}
}

package ingest_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/scopewatch/scopewatch/ingest"
	"github.com/scopewatch/scopewatch/rules"
)

// fixtureLines returns the lines of a format fixture.
func fixtureLines(t *testing.T, name string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "testdata", "formats", name))
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
}

// tally parses lines as src does and counts them.
func tally(t *testing.T, src rules.Source, lines [][]byte) *ingest.Tally {
	t.Helper()
	p, err := ingest.NewParser(src)
	if err != nil {
		t.Fatal(err)
	}
	var tl ingest.Tally
	for i, l := range lines {
		ln := ingest.Line{Text: l, Pos: ingest.Position{Source: src.Name, Line: int64(i + 1)}}
		evs, err := ingest.ParseLine(p, ln, nil)
		skip, pe := ingest.Outcome(err)
		tl.Add(ln, len(evs), skip, pe)
	}
	return &tl
}

func prefixed(prefix string, lines [][]byte) [][]byte {
	out := make([][]byte, len(lines))
	for i, l := range lines {
		out[i] = append([]byte(prefix), l...)
	}
	return out
}

func TestDiagnose(t *testing.T) {
	tests := []struct {
		name  string
		src   rules.Source
		lines [][]byte
		want  []string // all in the diagnosis, in order
	}{
		{"okta read as nginx", rules.Source{Name: "s", Format: "nginx"}, fixtureLines(t, "okta/token_grants.log"),
			[]string{"wrong format? 7 of 7 lines are malformed for format nginx (bad_format 7)",
				"these lines parse as okta (7 of 7 sampled lines yield events): set format: okta"}},
		{"keycloak text read as okta", rules.Source{Name: "s", Format: "okta"}, fixtureLines(t, "keycloak/new_quoted.log"),
			[]string{"malformed for format okta (bad_json 6)", `the lines are not JSON (one starts "2024-03-14 09:15:27,801 …"): is this a text log?`,
				"these lines parse as keycloak", "set format: keycloak"}},
		{"okta ignored by keycloak", rules.Source{Name: "s", Format: "keycloak"}, fixtureLines(t, "okta/token_grants.log"),
			[]string{"these lines parse as okta (7 of 7 sampled lines yield events): set format: okta"}},
		{"okta behind a docker wrapper setting", rules.Source{Name: "s", Format: "keycloak", Wrapper: ingest.WrapDocker}, fixtureLines(t, "okta/token_grants.log"),
			[]string{"(bad_wrapper 7)", "set format: okta and wrapper: auto"}},
		{"keycloak at INFO", rules.Source{Name: "s", Format: "keycloak"}, fixtureLines(t, "keycloak/non_event_lines.log"),
			[]string{"success events are logged at DEBUG: raise the org.keycloak.events category (or --spi-events-listener-jboss-logging-success-level=info)"}},
		{"docker json-file with wrapper none", rules.Source{Name: "s", Format: "keycloak", Wrapper: ingest.WrapNone}, fixtureLines(t, "keycloak/docker_json_file.log"),
			[]string{"unknown wrapper: 3 of 4 sampled lines parse as keycloak once the wrapper layer takes their docker json-file wrapper off, which wrapper: none leaves on: set wrapper: auto"}},
		{"syslog with wrapper docker", rules.Source{Name: "s", Format: "keycloak", Wrapper: ingest.WrapDocker}, fixtureLines(t, "keycloak/syslog_prefix.log"),
			[]string{"wrong format?", "(bad_wrapper 5)", "unknown wrapper:", "syslog header", "set wrapper: auto"}},
		{"prefix no wrapper knows", rules.Source{Name: "s", Format: "okta"}, prefixed("[gw-7] ", fixtureLines(t, "okta/token_grants.log")),
			[]string{"(bad_json 7)", `unknown wrapper: 7 of 7 sampled lines carry a prefix ("[gw-7] ") before what format okta reads`}},
		{"keycloak at INFO, failed logins", rules.Source{Name: "s", Format: "keycloak"}, [][]byte{
			[]byte(`2024-03-14 09:00:00,001 INFO  [io.quarkus] (main) Keycloak 24.0.1 started in 3.2s`),
			[]byte(`2024-03-14 09:15:27,801 WARN  [org.keycloak.events] (executor-thread-1) type="LOGIN_ERROR", realmId="r1", clientId="null", userId="null", ipAddress="203.0.113.7", error="user_not_found"`),
			[]byte(`2024-03-14 09:15:28,801 WARN  [org.keycloak.events] (executor-thread-1) type="LOGOUT_ERROR", realmId="r1", clientId="null", userId="null", ipAddress="203.0.113.7", error="invalid_token"`),
		}, []string{"success events are logged at DEBUG"}},
		{"nothing reads them", rules.Source{Name: "s", Format: "nginx"}, fixtureLines(t, "keycloak/non_event_lines.log"),
			[]string{"wrong format? 16 of 17 lines are malformed for format nginx", "no other format reads them"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := tally(t, tc.src, tc.lines).Diagnose(tc.src)
			rest := got
			for _, w := range tc.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("Diagnose = %q\nwant, in order, %q", got, tc.want)
				}
				rest = rest[i+len(w):]
			}
		})
	}
}

func TestDiagnoseNothingToSay(t *testing.T) {
	src := rules.Source{Name: "s", Format: "okta"}
	if got := tally(t, src, fixtureLines(t, "okta/token_grants.log")).Diagnose(src); got != "" {
		t.Errorf("lines that yield events: Diagnose = %q, want none", got)
	}
	var empty ingest.Tally
	if got := empty.Diagnose(src); got != "" {
		t.Errorf("no lines: Diagnose = %q, want none", got)
	}
}

// TestTallyBounded checks that a Tally keeps at most 20 lines, none
// blank or longer than 16 KiB, however many it counts.
func TestTallyBounded(t *testing.T) {
	src := rules.Source{Name: "s", Format: "okta"}
	lines := [][]byte{bytes.Repeat([]byte("x"), 17<<10), {}, []byte("   ")}
	for range 1000 {
		lines = append(lines, []byte("not json"))
	}
	tl := tally(t, src, lines)
	if tl.Lines != 1003 || tl.MalformedLines() != 1001 || tl.IgnoredLines() != 2 || tl.Ignored[ingest.SkipBlank] != 2 {
		t.Errorf("counts: lines %d, malformed %d, ignored %v", tl.Lines, tl.MalformedLines(), tl.Ignored)
	}
	s := tl.Sample()
	if len(s) != 20 {
		t.Fatalf("sample of %d lines, want 20", len(s))
	}
	for _, l := range s {
		if string(l) != "not json" {
			t.Errorf("sampled %.20q, want only the short non-blank lines", l)
		}
	}
	if got := ingest.Counts(tl.Malformed); got != "bad_json 1001" {
		t.Errorf("Counts = %q", got)
	}
}

func TestExplain(t *testing.T) {
	src := rules.Source{Name: "s", Format: "okta"}
	p, err := ingest.NewParser(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ line, want string }{
		{`2024-03-14 09:15:27,801 INFO  [org.keycloak.events] type="LOGIN"`, "the line is not JSON: is this a text log?"},
		{`{"published": "2024-03-14T09:15:27.801Z", `, ""}, // JSON, cut short: the syntax error says it
	} {
		_, err := p.Parse([]byte(tc.line), ingest.Position{Line: 1}, nil)
		var pe *ingest.ParseError
		if !errors.As(err, &pe) {
			t.Fatalf("Parse(%q) = %v, want a *ParseError", tc.line, err)
		}
		if got := ingest.Explain(pe, []byte(tc.line)); got != tc.want {
			t.Errorf("Explain(%v) = %q, want %q", pe, got, tc.want)
		}
	}
}
